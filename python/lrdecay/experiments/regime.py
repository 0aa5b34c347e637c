"""The pre-registered regime search: where does the paper's premise hold?

The paper explains *why* learning-rate decay helps; that needs a setting where it does help: lrDecay's
final test accuracy above both constant LRs (the large LR it starts from and a small one). This module
trains every setting of a committed grid on *pilot* seeds (never reported), writes one row per run, draws
the regime map, and picks the reproduction's presets by the premise alone (see :data:`CRITERION`). No
claim's verdict is computed here. The grid, seeds and criterion below were committed before the search ran
(``docs/regime/PREREGISTRATION.md``); changing them means a new, separately committed search.

Run it with ``lrdecay regime --out docs/regime`` (resumable: finished runs are read back from
``runs.jsonl`` and skipped).

Sharing: the constant-LR runs do not depend on the stage lengths, and a constant-LR run stopped at epoch
20 is exactly the first 20 epochs of one run for 30 (same seeds, per-epoch data order, no schedule), so
each constant run is trained once for the longest stage option and read at each option's last epoch.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from lrdecay.experiments import prereg as _prereg

__all__ = [
    "PREREGISTRATION",
    "GRID",
    "FIXED",
    "STAGES",
    "PILOT_SEEDS",
    "CONFIRM_SEEDS",
    "CRITERION",
    "COST_LIMIT_S",
    "PREMISE_MARGIN",
    "settings_of",
    "jobs",
    "run_search",
    "select",
    "regime_map",
]

#: The pre-registration this module runs under: the packaged ``preregistered/patterns.toml`` (see
#: :mod:`lrdecay.experiments.prereg`). Every constant below is read from it.
PREREGISTRATION = _prereg.packaged("patterns")

#: The search grid (pre-registered). ``stages`` names a key of :data:`STAGES`; ``preset`` ps10 has a
#: noise group (10% of samples with no pattern and random labels), ps10-clean has none.
GRID: dict[str, list] = PREREGISTRATION.grid

#: Stage options: milestones and total epochs of the lrDecay run.
STAGES: dict[str, dict[str, Any]] = PREREGISTRATION.stages

#: Settings every grid point shares.
FIXED: dict[str, Any] = PREREGISTRATION.fixed

#: Pilot seeds: phase 1 trains every setting on these; never used for a reported verdict.
PILOT_SEEDS = PREREGISTRATION.pilot_seeds
#: Phase 2: the best candidates of phase 1 get these further pilot seeds.
CONFIRM_SEEDS = PREREGISTRATION.confirm_seeds
#: How many phase-1 candidates phase 2 confirms, per preset (quick: within the cost limit; full: any).
N_CONFIRM = int(PREREGISTRATION.criterion["n_confirm"])
#: lrDecay must beat both constant LRs by this much (final test accuracy) on every pilot seed.
PREMISE_MARGIN = float(PREREGISTRATION.criterion["premise_margin"])
#: Seconds per training epoch of 32,000 samples, MLP 3×width + BatchNorm, batch 128, one torch thread,
#: measured on the quiet 2-core development machine (AMD EPYC) before the search, training steps only.
EPOCH_S_PER_32K = {int(w): float(s) for w, s in PREREGISTRATION.criterion["epoch_s_per_32k"].items()}
#: Quick preset cost limit on :func:`cost_s` (the estimated training time of one lrDecay run): the quick
#: reproduction trains ~20 runs of that size on two worker processes (~10 × the cost, plus evaluation,
#: full-batch GD and probes) within its 25-minute budget. An estimate, not the measured wall time, so
#: that the choice does not depend on what else the shared machine was doing during the search.
COST_LIMIT_S = float(PREREGISTRATION.criterion["cost_limit_s"])
#: Settings whose minimum margins are within this of the best are tied; the cheaper is picked.
TIE_TOLERANCE = float(PREREGISTRATION.criterion["tie_tolerance"])


def _seeds_text(seeds) -> str:
    """``10, 11, 12``, or ``10..14`` for a run of more than three consecutive seeds."""
    s = list(seeds)
    if len(s) > 3 and s == list(range(s[0], s[0] + len(s))):
        return f"{s[0]}..{s[-1]}"
    return ", ".join(map(str, s))


CRITERION = f"""\
Premise on seed s: lrDecay's final test accuracy (test set of the preset, at the setting's last epoch)
is at least {PREMISE_MARGIN} above the constant large LR's AND at least {PREMISE_MARGIN} above the constant
small LR's, each at the same epoch. Margin on seed s = lrDecay − max(large, small).
Phase 1: every grid setting on pilot seed {list(PILOT_SEEDS)}.
Phase 2: among settings whose premise holds on the phase-1 seed, the {N_CONFIRM} with the largest margin
within the cost limit, and the {N_CONFIRM} with the largest margin overall, are trained on pilot seeds
{list(CONFIRM_SEEDS)}.
Quick preset = among settings whose premise holds on all three pilot seeds and whose estimated lrDecay
training time (epochs × n_train/32000 × seconds per 32k-sample epoch at that width, measured once) is
<= {COST_LIMIT_S:.0f} s, the largest minimum margin over the three seeds (ties within {TIE_TOLERANCE:g}: the cheaper). Full preset (one GPU) = the same without the cost limit.
If no setting passes, the grid is widened (noise rate, the noise group, data size, width, pattern
amplitude) in a new commit before anything else is run, and the map is reported either way.
No claim's verdict enters the choice; held-out seeds ({'; '.join(f'{p} {_seeds_text(v)}' for p, v in PREREGISTRATION.held_out.items())}) are never used here.
"""


# ---------------------------------------------------------------------------------------- the runs
def settings_of(point: Mapping[str, Any]) -> dict[str, Any]:
    """Base-experiment settings (keys as in ``lrdecay.experiments.base``) of one grid point."""
    s = {**FIXED, **{k: v for k, v in point.items() if k != "stages"}, **STAGES[point["stages"]]}
    return s


def setting_id(point: Mapping[str, Any]) -> str:
    """A readable id of a grid point, e.g. ``w512-n50000-noise0.2-ps10-10-10-10-wd0.0005``."""
    return (f"w{point['width']}-n{point['n_train']}-noise{point['label_noise']}-{point['preset']}-"
            f"{point['stages']}-wd{point['weight_decay']}")


def cost_s(point: Mapping[str, Any]) -> float:
    """Estimated training seconds of the point's lrDecay run on the 2-core machine (one thread)."""
    return STAGES[point["stages"]]["epochs"] * point["n_train"] / 32_000 * EPOCH_S_PER_32K[point["width"]]


def grid_points(grid: Mapping[str, Sequence] = GRID) -> list[dict[str, Any]]:
    """Every combination of the grid, in a fixed order."""
    keys = list(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


def _job_key(job: Mapping[str, Any]) -> str:
    return json.dumps(job, sort_keys=True)


def jobs(points: Iterable[Mapping[str, Any]], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """The distinct training runs for ``points`` × ``seeds``: an lrDecay run per point, and the constant
    runs (large, small) once per point-without-stages, trained for the longest stage option. Held-out
    seeds are refused (:class:`~lrdecay.experiments.prereg.SeedPolicyError`)."""
    PREREGISTRATION.check_search_seeds(seeds)
    out: dict[str, dict] = {}
    for p in points:
        for seed in seeds:
            for sched in ("lrDecay", "large", "small"):
                j = _job(p, sched, seed)
                out.setdefault(_job_key(j), j)
    return list(out.values())


def _job(point: Mapping[str, Any], schedule: str, seed: int) -> dict[str, Any]:
    """One run, self-contained (a worker process needs nothing else): the point's fields, its stages
    (None for the shared constant runs), milestones, epochs, schedule and seed."""
    base = {k: v for k, v in point.items() if k != "stages"}
    if schedule == "lrDecay":
        st = STAGES[point["stages"]]
        return {**base, "stages": point["stages"], "milestones": list(st["milestones"]), "epochs": st["epochs"],
                "schedule": schedule, "seed": seed, "fixed": dict(FIXED)}
    longest = max(v["epochs"] for v in STAGES.values())
    return {**base, "stages": None, "milestones": [], "epochs": longest, "schedule": schedule, "seed": seed,
            "fixed": dict(FIXED)}


def _config(job: Mapping[str, Any]):
    from lrdecay.trainer import TrainConfig

    fx = job["fixed"]
    lr = fx["lr_small"] if job["schedule"] == "small" else fx["lr"]
    return TrainConfig(
        preset=job["preset"], n_train=job["n_train"], n_test=fx["n_test"], label_noise=job["label_noise"],
        probe_groups=fx["probe_groups"], model=fx["model"], width=job["width"], depth=fx["depth"],
        epochs=job["epochs"], batch_size=fx["batch_size"], lr=lr, momentum=fx["momentum"],
        weight_decay=job["weight_decay"], schedule="multistep" if job["schedule"] == "lrDecay" else "constant",
        milestones=list(job["milestones"]), gamma=fx["gamma"], seed=job["seed"], device="cpu",
        eval_every=fx["eval_every"], eval_train=True, plots=False, progress=False,
    )


def train_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """Train one job (one thread) and return its row: per evaluated epoch, test / probe accuracies,
    eval-mode memorized fraction and train accuracy, and the in-epoch memorized fraction."""
    import torch

    torch.set_num_threads(1)
    from lrdecay.trainer import train

    cfg = _config(job)
    t0 = time.perf_counter()
    res = train(cfg)
    wall = time.perf_counter() - t0
    evals: dict[str, dict] = {}
    for r in res.history:
        if "test" not in r:
            continue
        te = r["test"]
        ev = r.get("train_eval", {})
        evals[str(r["epoch"])] = {
            "test_acc": te["test"]["acc"],
            "probe_easy": te.get("probe_easy", {}).get("acc"),
            "probe_complex": te.get("probe_complex", {}).get("acc"),
            "train_acc": r["train_acc"],
            "memorized": r.get("memorized"),
            "memorized_eval": ev.get("memorized"),
            "train_acc_eval": ev.get("acc"),
            "train_acc_clean_eval": ev.get("acc_clean"),
        }
    return {**job, "wall_time": wall, "evals": evals}


# ---------------------------------------------------------------------------------------- driver
def _read_rows(path: str) -> list[dict]:
    rows = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:  # a line cut by a kill: that run is simply redone
                        pass
    return rows


def run_jobs(todo: Sequence[Mapping[str, Any]], rows_path: str, *, workers: int = 2, progress: bool = True) -> None:
    """Train ``todo`` on a pool of ``workers`` processes, appending each finished row to ``rows_path``
    (JSONL, one flushed line per run, so an interrupted search resumes where it stopped)."""
    import multiprocessing as mp

    done = {_job_key({k: v for k, v in r.items() if k not in ("wall_time", "evals")}) for r in _read_rows(rows_path)}
    pending = [j for j in todo if _job_key(j) not in done]
    if not pending:
        return
    # the costliest first, so the pool does not end waiting on one long run
    pending.sort(key=lambda j: -(j["width"] ** 2 * j["n_train"] * j["epochs"]))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pending), desc="regime search", unit="run", disable=None)
    os.makedirs(os.path.dirname(os.path.abspath(rows_path)), exist_ok=True)
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, maxtasksperchild=20) as pool, open(rows_path, "a", encoding="utf-8") as f:
        for row in pool.imap_unordered(train_job, pending):
            f.write(json.dumps(row, sort_keys=True) + "\n")
            f.flush()
            if bar is not None:
                bar.update(1)
            else:
                print(f"regime: {row['schedule']} {row['seed']} w{row['width']} n{row['n_train']} "
                      f"({row['wall_time']:.0f} s)", file=sys.stderr, flush=True)
    if bar is not None:
        bar.close()


def outcomes(rows: Sequence[Mapping[str, Any]], points: Sequence[Mapping[str, Any]], seeds: Sequence[int]) -> list[dict]:
    """Per (grid point, seed): final test accuracy of lrDecay, large and small at the point's last
    epoch, the margin, memorized fractions, and lrDecay's wall time. Missing runs are skipped."""
    index = {_job_key({k: v for k, v in r.items() if k not in ("wall_time", "evals")}): r for r in rows}
    out = []
    for p in points:
        last = str(STAGES[p["stages"]]["epochs"])
        for seed in seeds:
            runs = {s: index.get(_job_key(_job(p, s, seed))) for s in ("lrDecay", "large", "small")}
            if any(r is None or last not in r["evals"] for r in runs.values()):
                continue
            ev = {s: r["evals"][last] for s, r in runs.items()}
            row = {**p, "setting": setting_id(p), "seed": seed, "wall_lrDecay": runs["lrDecay"]["wall_time"]}
            for s in ev:
                for k in ("test_acc", "memorized_eval", "memorized", "probe_complex", "train_acc"):
                    row[f"{k}_{s}"] = ev[s][k]
            row["adv_large"] = row["test_acc_lrDecay"] - row["test_acc_large"]
            row["adv_small"] = row["test_acc_lrDecay"] - row["test_acc_small"]
            row["margin"] = min(row["adv_large"], row["adv_small"])
            row["premise"] = row["margin"] >= PREMISE_MARGIN
            out.append(row)
    return out


def _per_setting(outs: Sequence[Mapping[str, Any]]) -> dict[str, dict]:
    by: dict[str, dict] = {}
    for o in outs:
        s = by.setdefault(o["setting"], {"point": {k: o[k] for k in GRID}, "seeds": [], "margins": [],
                                         "premise": [], "walls": []})
        s["seeds"].append(o["seed"])
        s["margins"].append(o["margin"])
        s["premise"].append(o["premise"])
        s["walls"].append(o["wall_lrDecay"])
    for s in by.values():
        s["min_margin"] = min(s["margins"])
        s["all_premise"] = all(s["premise"])
        s["cost"] = cost_s(s["point"])
        s["wall"] = float(np.mean(s["walls"]))
    return by


def confirm_candidates(outs: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Phase 2's settings: premise on the phase-1 seed(s); the best :data:`N_CONFIRM` within the cost
    limit and the best :data:`N_CONFIRM` overall, by minimum margin."""
    by = _per_setting([o for o in outs if o["seed"] in PILOT_SEEDS])
    ok = [s for s in by.values() if s["all_premise"] and sorted(s["seeds"]) == sorted(PILOT_SEEDS)]
    ok.sort(key=lambda s: (-s["min_margin"], s["cost"]))
    quick = [s for s in ok if s["cost"] <= COST_LIMIT_S][:N_CONFIRM]
    full = ok[:N_CONFIRM]
    chosen: dict[str, dict] = {}
    for s in quick + full:
        chosen.setdefault(setting_id(s["point"]), s["point"])
    return list(chosen.values())


def select(outs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Apply :data:`CRITERION` to the phase 1 + 2 outcomes: ``{"quick": point or None, "full": ...,
    "ranking": [...]}``."""
    seeds = sorted([*PILOT_SEEDS, *CONFIRM_SEEDS])
    by = _per_setting(outs)
    ok = [s for s in by.values() if s["all_premise"] and sorted(s["seeds"]) == seeds]

    def best(cands):
        if not cands:
            return None
        top = max(s["min_margin"] for s in cands)
        tied = [s for s in cands if s["min_margin"] >= top - TIE_TOLERANCE]
        return min(tied, key=lambda s: s["cost"])

    q = best([s for s in ok if s["cost"] <= COST_LIMIT_S])
    f = best(ok)
    ranking = sorted(by.values(), key=lambda s: -s["min_margin"])
    return {
        "criterion": CRITERION,
        "quick": None if q is None else {**q["point"], "min_margin": q["min_margin"], "cost_s": q["cost"],
                                         "wall_s": q["wall"]},
        "full": None if f is None else {**f["point"], "min_margin": f["min_margin"], "cost_s": f["cost"],
                                        "wall_s": f["wall"]},
        "passing_all_pilot_seeds": [setting_id(s["point"]) for s in ok],
        "ranking": [{"setting": setting_id(s["point"]), "seeds": s["seeds"], "margins": s["margins"],
                     "min_margin": s["min_margin"], "cost_s": s["cost"], "wall_s": s["wall"]} for s in ranking],
    }


# ---------------------------------------------------------------------------------------- outputs
def write_table(outs: Sequence[Mapping[str, Any]], path: str) -> str:
    """The per-(setting, seed) outcomes as CSV."""
    import csv

    from lrdecay._atomic import atomic_write

    cols = [*GRID, "setting", "seed", "test_acc_lrDecay", "test_acc_large", "test_acc_small", "adv_large",
            "adv_small", "margin", "premise", "memorized_eval_lrDecay", "memorized_eval_large",
            "memorized_eval_small", "memorized_lrDecay", "memorized_large", "memorized_small",
            "probe_complex_lrDecay", "probe_complex_large", "probe_complex_small", "train_acc_lrDecay",
            "train_acc_large", "train_acc_small", "wall_lrDecay"]
    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for o in outs:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in o.items()})
    return path


def regime_map(outs: Sequence[Mapping[str, Any]], path: str, *, seeds: Sequence[int] = PILOT_SEEDS) -> str:
    """Heatmaps over the grid (mean over ``seeds``): lrDecay's test advantage over the large LR, over
    the small LR, the minimum of both (the premise margin), and lrDecay's eval-mode memorized fraction.

    Rows: width × n_train × weight decay; columns: preset × label noise × stages."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows_keys = list(itertools.product(GRID["width"], GRID["n_train"], GRID["weight_decay"]))
    cols_keys = list(itertools.product(GRID["preset"], GRID["label_noise"], GRID["stages"]))
    metrics = [("adv_large", "lrDecay − large LR (test acc)", "RdBu", True),
               ("adv_small", "lrDecay − small LR (test acc)", "RdBu", True),
               ("margin", "premise margin: min of both", "RdBu", True),
               ("memorized_eval_lrDecay", "lrDecay memorized fraction (eval mode, final)", "viridis", False)]
    fig = Figure(figsize=(16, 9))
    FigureCanvasAgg(fig)
    for m, (key, title, cmap, diverging) in enumerate(metrics):
        grid = np.full((len(rows_keys), len(cols_keys)), np.nan)
        for i, (w, n, wd) in enumerate(rows_keys):
            for j, (pr, nz, st) in enumerate(cols_keys):
                vals = [o[key] for o in outs if o["seed"] in seeds and o["width"] == w and o["n_train"] == n
                        and o["weight_decay"] == wd and o["preset"] == pr and o["label_noise"] == nz
                        and o["stages"] == st and o[key] is not None]
                if vals:
                    grid[i, j] = float(np.mean(vals))
        ax = fig.add_subplot(2, 2, m + 1)
        if diverging:
            lim = max(0.02, float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 0.02)
            im = ax.imshow(grid, cmap=cmap, vmin=-lim, vmax=lim, aspect="auto")
        else:
            im = ax.imshow(grid, cmap=cmap, vmin=0, vmax=1, aspect="auto")
        fig.colorbar(im, ax=ax, shrink=0.8)
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                if np.isfinite(grid[i, j]):
                    mark = "*" if key == "margin" and grid[i, j] >= PREMISE_MARGIN else ""
                    ax.text(j, i, f"{grid[i, j]:+.2f}{mark}" if diverging else f"{grid[i, j]:.2f}",
                            ha="center", va="center", fontsize=6)
        ax.set_xticks(range(len(cols_keys)))
        ax.set_xticklabels([f"{pr}\nnoise {nz}\n{st}" for pr, nz, st in cols_keys], fontsize=6)
        ax.set_yticks(range(len(rows_keys)))
        ax.set_yticklabels([f"w{w} n{n // 1000}k wd{wd:g}" for w, n, wd in rows_keys], fontsize=6)
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"Regime map (mean over pilot seeds {list(seeds)}); * = mean margin ≥ {PREMISE_MARGIN}", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def axis_summary(outs: Sequence[Mapping[str, Any]], seeds: Sequence[int] = PILOT_SEEDS) -> list[dict]:
    """For each value of each grid axis, over the settings holding it (phase-1 seeds): the mean of
    lrDecay's advantage over the large and the small LR, the mean margin, lrDecay's mean eval-mode memorized
    fraction, and how many settings met the premise."""
    rows = []
    sel = [o for o in outs if o["seed"] in seeds]
    for axis, values in GRID.items():
        for v in values:
            group = [o for o in sel if o[axis] == v]
            if not group:
                continue
            rows.append({
                "axis": axis, "value": v, "settings": len(group),
                "adv_large": float(np.mean([o["adv_large"] for o in group])),
                "adv_small": float(np.mean([o["adv_small"] for o in group])),
                "margin": float(np.mean([o["margin"] for o in group])),
                "memorized_eval_lrDecay": float(np.mean([o["memorized_eval_lrDecay"] for o in group])),
                "premise": sum(1 for o in group if o["premise"]),
            })
    return rows


def write_summary(out_dir: str, sel: Mapping[str, Any], outs: Sequence[Mapping[str, Any]]) -> str:
    """``REGIME.md``: what the search found (per-axis effects, the best settings, the picks)."""
    from lrdecay._atomic import atomic_write

    phase1 = [o for o in outs if o["seed"] in PILOT_SEEDS]
    n_pass = sum(1 for o in phase1 if o["premise"])
    lines = [
        "# Regime search — results",
        "",
        "Pre-registration: [PREREGISTRATION.md](PREREGISTRATION.md). Command: `lrdecay regime --out docs/regime`.",
        f"Run under the {PREREGISTRATION.describe()}.",
        f"Phase 1: {len(phase1)} settings on pilot seed {list(PILOT_SEEDS)}; the premise (lrDecay's final test "
        f"accuracy ≥ both constant LRs' + {PREMISE_MARGIN}) held in {n_pass}. Phase 2 confirmed "
        f"{len(sel.get('phase2_candidates', []))} candidates on pilot seeds {list(CONFIRM_SEEDS)}.",
        "",
        "![regime map](regime_map.png)",
        "",
        "## Effect of each axis (phase 1, mean over the settings with that value)",
        "",
        "| axis | value | settings | lrDecay − large | lrDecay − small | margin | lrDecay memorized (eval) | premise met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in axis_summary(outs):
        lines.append(f"| {r['axis']} | {r['value']} | {r['settings']} | {r['adv_large']:+.3f} | {r['adv_small']:+.3f} | "
                     f"{r['margin']:+.3f} | {r['memorized_eval_lrDecay']:.3f} | {r['premise']} |")
    lines += ["", "## Best settings (minimum margin over the pilot seeds each was trained on)", "",
              "| setting | seeds | margins | min margin | est. cost (s) | mean wall (s) |", "|---|---|---|---|---|---|"]
    for r in sel["ranking"][:15]:
        lines.append(f"| `{r['setting']}` | {r['seeds']} | {', '.join(f'{m:+.3f}' for m in r['margins'])} | "
                     f"{r['min_margin']:+.3f} | {r['cost_s']:.0f} | {r['wall_s']:.0f} |")
    lines += ["", "## Picks (by the pre-registered criterion)", ""]
    for name in ("quick", "full"):
        pick = sel.get(name)
        lines.append(f"- **{name}**: " + ("no setting met the premise on every pilot seed" if pick is None else
                     f"`{setting_id(pick)}` (min margin {pick['min_margin']:+.3f} over the three pilot seeds, "
                     f"est. cost {pick['cost_s']:.0f} s per run)"))
    lines.append("")
    path = os.path.join(out_dir, "REGIME.md")
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path


def check_phases(out_dir: str, phases: Sequence[int]) -> None:
    """ValueError when ``phases`` skip phase 1 and ``out_dir`` lacks some of its results (phase 2 picks its
    candidates from them)."""
    if 1 in phases:
        return
    points = grid_points()
    rows_path = os.path.join(out_dir, "runs.jsonl")
    have = len(outcomes(_read_rows(rows_path), points, PILOT_SEEDS))
    if have < len(points):
        raise ValueError(f"phase 2 needs phase 1's results, and {rows_path} holds {have} of the "
                         f"{len(points)} settings: run phase 1 first (--phase 1 or all)")


def run_search(out_dir: str, *, workers: int = 2, phases: Sequence[int] = (1, 2), progress: bool = True) -> dict:
    """Run the search (resumable) and write ``runs.jsonl``, ``table.csv``, ``selection.json`` and
    ``regime_map.png`` into ``out_dir``. Returns the selection. Phase 2 alone needs phase 1's results in
    ``out_dir`` (ValueError, before anything is written, when some are missing)."""
    from lrdecay._atomic import atomic_write

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    check_phases(out_dir, phases)
    points = grid_points()
    rows_path = os.path.join(out_dir, "runs.jsonl")
    if 1 in phases:
        run_jobs(jobs(points, PILOT_SEEDS), rows_path, workers=workers, progress=progress)
    outs = outcomes(_read_rows(rows_path), points, PILOT_SEEDS)
    confirm = confirm_candidates(outs)
    if 2 in phases and confirm:
        run_jobs(jobs(confirm, list(CONFIRM_SEEDS)), rows_path, workers=workers, progress=progress)
    all_outs = outcomes(_read_rows(rows_path), points, [*PILOT_SEEDS, *CONFIRM_SEEDS])
    sel = select(all_outs)
    sel["phase2_candidates"] = [setting_id(p) for p in confirm]
    write_table(all_outs, os.path.join(out_dir, "table.csv"))
    regime_map(all_outs, os.path.join(out_dir, "regime_map.png"))
    with atomic_write(os.path.join(out_dir, "selection.json"), "w", encoding="utf-8") as f:
        json.dump(sel, f, indent=1)
    write_summary(out_dir, sel, all_outs)
    return sel
