"""The pre-registered regime search: where does the paper's premise hold?

The paper explains *why* learning-rate decay helps; that needs a setting where it does help: lrDecay's
final test accuracy above both constant LRs (the large LR it starts from and a small one). The search
trains every setting of a committed grid on *pilot* seeds (never reported), draws the regime map, and
picks the reproduction's presets by the premise alone (see :data:`CRITERION`). No claim's verdict is
computed here. The grid, seeds and criterion are read from the pre-registration file
(:mod:`lrdecay.experiments.prereg`, ``preregistered/patterns.toml``, explained in
``docs/regime/PREREGISTRATION.md``); changing them means a new, separately committed search.

The search is a **sweep spec plus a selection rule over the sweep's table**:

- :func:`spec_dict` / :func:`search_spec`: the runs, as a :mod:`lrdecay.sweep` spec: the grid's axes
  (all but ``stages``) × four named settings (``lrDecay 10-10-10``, ``lrDecay 10-5-5``, ``large``,
  ``small``) × seeds. The constant-LR runs do not depend on the stage lengths, and a constant-LR run
  stopped at epoch 20 is exactly the first 20 epochs of one run for 30 (same seeds, per-epoch data order,
  no schedule), so each is trained once for the longest stage option and read at each option's last epoch.
- :func:`outcomes`, :func:`confirm_candidates`, :func:`select`: the rule, on the sweep's tidy table (one
  row per run per epoch; columns ``config.<field>``, ``test.test.acc``, ``train_eval.memorized``, ...).

Run it with ``lrdecay regime --out docs/regime``: the runs train through the sweep engine into
``OUT/sweep/`` (resumable: finished runs are skipped, unfinished ones resume from their checkpoints). The
first search wrote its runs to ``OUT/runs.jsonl`` (one line per run); the runs found there are read as
table rows (:func:`lrdecay.experiments.regime_outputs.legacy_table_rows`) and not trained again.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from typing import Any, Iterable, Mapping, Sequence

from lrdecay.experiments import prereg as _prereg
from lrdecay.experiments.regime_outputs import (
    axis_summary,
    legacy_table_rows,
    read_legacy_runs,
    regime_map,
    setting_id,
    write_summary,
    write_table,
)

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
    "ROLES",
    "criterion_text",
    "settings_of",
    "setting_id",
    "cost_s",
    "grid_points",
    "spec_dict",
    "search_spec",
    "outcomes",
    "confirm_candidates",
    "select",
    "search_table",
    "check_phases",
    "check_preregistration",
    "run_search",
    "read_legacy_runs",
    "legacy_table_rows",
    "write_table",
    "regime_map",
    "axis_summary",
    "write_summary",
]

#: The pre-registration this module runs under by default: the packaged ``preregistered/patterns.toml``.
#: Every constant below is read from it; the functions take ``pre=`` to run under another file.
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

#: The three schedules of a setting: lrDecay (the large LR, decayed), large and small (constant).
ROLES = ("lrDecay", "large", "small")

#: The table columns the rule reads (the trainer's flattened record keys), by the names of its outcomes.
METRICS = {"test_acc": "test.test.acc", "memorized_eval": "train_eval.memorized", "memorized": "memorized",
           "probe_complex": "test.probe_complex.acc", "train_acc": "train_acc"}


def _seeds_text(seeds) -> str:
    """``10, 11, 12``, or ``10..14`` for a run of more than three consecutive seeds."""
    s = list(seeds)
    if len(s) > 3 and s == list(range(s[0], s[0] + len(s))):
        return f"{s[0]}..{s[-1]}"
    return ", ".join(map(str, s))


def _c(pre: _prereg.Preregistration, key: str) -> float:
    return float(pre.criterion[key])


def criterion_text(pre: _prereg.Preregistration = PREREGISTRATION) -> str:
    """The selection criterion in words, its numbers filled in from ``pre``."""
    m, n = pre.criterion["premise_margin"], pre.criterion["n_confirm"]
    held = "; ".join(f"{p} {_seeds_text(v)}" for p, v in pre.held_out.items())
    return f"""\
Premise on seed s: lrDecay's final test accuracy (test set of the preset, at the setting's last epoch)
is at least {m} above the constant large LR's AND at least {m} above the constant
small LR's, each at the same epoch. Margin on seed s = lrDecay − max(large, small).
Phase 1: every grid setting on pilot seed {list(pre.pilot_seeds)}.
Phase 2: among settings whose premise holds on the phase-1 seed, the {n} with the largest margin
within the cost limit, and the {n} with the largest margin overall, are trained on pilot seeds
{list(pre.confirm_seeds)}.
Quick preset = among settings whose premise holds on all three pilot seeds and whose estimated lrDecay
training time (epochs × n_train/32000 × seconds per 32k-sample epoch at that width, measured once) is
<= {_c(pre, 'cost_limit_s'):.0f} s, the largest minimum margin over the three seeds (ties within {_c(pre, 'tie_tolerance'):g}: the cheaper). Full preset (one GPU) = the same without the cost limit.
If no setting passes, the grid is widened (noise rate, the noise group, data size, width, pattern
amplitude) in a new commit before anything else is run, and the map is reported either way.
No claim's verdict enters the choice; held-out seeds ({held}) are never used here.
"""


CRITERION = criterion_text(PREREGISTRATION)


# ---------------------------------------------------------------------------------------- the grid
def settings_of(point: Mapping[str, Any], pre: _prereg.Preregistration = PREREGISTRATION) -> dict[str, Any]:
    """Base-experiment settings (keys as in ``lrdecay.experiments.base``) of one grid point."""
    return {**pre.fixed, **{k: v for k, v in point.items() if k != "stages"}, **pre.stages[point["stages"]]}


def cost_s(point: Mapping[str, Any], pre: _prereg.Preregistration = PREREGISTRATION) -> float:
    """Estimated training seconds of the point's lrDecay run on the 2-core machine (one thread)."""
    per_32k = {int(w): float(s) for w, s in pre.criterion["epoch_s_per_32k"].items()}
    return pre.stages[point["stages"]]["epochs"] * point["n_train"] / 32_000 * per_32k[point["width"]]


def grid_points(grid: Mapping[str, Sequence] | None = None) -> list[dict[str, Any]]:
    """Every combination of the grid (default: :data:`GRID`), in a fixed order."""
    grid = GRID if grid is None else grid
    keys = list(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


def _axes(pre: _prereg.Preregistration) -> list[str]:
    """The grid axes that are TrainConfig fields (every axis but ``stages``)."""
    return [a for a in pre.grid if a != "stages"]


def _longest(pre: _prereg.Preregistration) -> int:
    return max(int(v["epochs"]) for v in pre.stages.values())


# ---------------------------------------------------------------------------------------- the sweep spec
def spec_dict(seeds: Sequence[int] | None = None, pre: _prereg.Preregistration = PREREGISTRATION) -> dict:
    """The search as a sweep spec (:mod:`lrdecay.sweep.spec`): the grid's axes but ``stages`` × the named
    settings ``lrDecay <stages>`` (one per stage option), ``large`` and ``small`` × ``seeds`` (default:
    the phase-1 pilot seeds). Held-out seeds are refused."""
    seeds = list(pre.pilot_seeds if seeds is None else seeds)
    pre.check_search_seeds(seeds)
    if pre.name in _prereg.COMMITTED_SHA256:  # nor the seeds the committed file holds out
        _prereg.packaged(pre.name).check_search_seeds(seeds)
    fx = dict(pre.fixed)
    lr_small = fx.pop("lr_small")
    base = {**fx, "eval_train": True, "device": "cpu", "plots": False, "progress": False}
    settings = [{"name": f"lrDecay {name}", "schedule": "multistep", "milestones": list(st["milestones"]),
                 "epochs": int(st["epochs"])} for name, st in pre.stages.items()]
    longest = _longest(pre)
    settings += [{"name": "large", "schedule": "constant", "milestones": [], "epochs": longest},
                 {"name": "small", "schedule": "constant", "milestones": [], "epochs": longest, "lr": lr_small}]
    return {"name": f"regime search ({pre.name})", "seeds": seeds, "base": base,
            "grid": {a: list(pre.grid[a]) for a in _axes(pre)}, "settings": settings}


def search_spec(points: Iterable[Mapping[str, Any]] | None = None, seeds: Sequence[int] | None = None,
                pre: _prereg.Preregistration = PREREGISTRATION):
    """The :class:`~lrdecay.sweep.SweepSpec` of the runs ``points`` (default: the whole grid) × ``seeds``
    need: each point's lrDecay run and its constant runs (shared by the points that differ only in
    ``stages``). The whole grid is :func:`spec_dict`'s spec itself; a subset keeps its runs' settings and
    grid points."""
    from lrdecay.sweep.spec import SweepSpec

    d = spec_dict(seeds, pre)
    if points is None:
        return SweepSpec.from_dict(d)
    # the same spec restricted to the points: resolved per point-without-stages (single-value grid, the
    # settings it needs), so each run is the whole spec's run (same config, setting and grid point)
    axes = _axes(pre)
    wanted: dict[str, tuple[dict, set]] = {}
    for p in points:
        ax = {a: p[a] for a in axes}
        group = wanted.setdefault(json.dumps(ax, sort_keys=True), (ax, {"large", "small"}))
        group[1].add(f"lrDecay {p['stages']}")
    runs = []
    for ax, names in wanted.values():
        sub = {**d, "grid": {a: [v] for a, v in ax.items()},
               "settings": [s for s in d["settings"] if s["name"] in names]}
        runs += SweepSpec.from_dict(sub).runs()
    return SweepSpec.from_runs(runs, name=d["name"])


# ---------------------------------------------------------------------------------------- the rule
def _num(v: Any) -> float | None:
    if v is None or v == "":
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _run_of(row: Mapping[str, Any], pre: _prereg.Preregistration) -> tuple | None:
    """``(grid point without stages, role, stages or None, seed)`` of a table row, or None when the row is
    not one of the search's runs (another base setting, schedule or learning rate)."""
    try:
        for k, v in pre.fixed.items():
            if k not in ("lr", "lr_small") and f"config.{k}" in row and row[f"config.{k}"] != v:
                return None
        axes = tuple((a, row[f"config.{a}"]) for a in _axes(pre))
        lr, epochs = float(row["config.lr"]), int(row["config.epochs"])
        milestones = row["config.milestones"]
        milestones = json.loads(milestones) if isinstance(milestones, str) else list(milestones)
        schedule = row["config.schedule"]
    except (KeyError, TypeError, ValueError):
        return None
    seed = int(row["seed"])
    if schedule == "multistep" and lr == float(pre.fixed["lr"]):
        for name, st in pre.stages.items():
            if list(st["milestones"]) == milestones and int(st["epochs"]) == epochs:
                return axes, "lrDecay", name, seed
        return None
    if schedule == "constant" and epochs == _longest(pre):
        if lr == float(pre.fixed["lr"]):
            return axes, "large", None, seed
        if lr == float(pre.fixed["lr_small"]):
            return axes, "small", None, seed
    return None


def _index(rows: Iterable[Mapping[str, Any]], pre) -> dict[tuple, dict[int, Mapping]]:
    """(point, role, stages, seed) -> {epoch: row}; a later run of the same key replaces an earlier one."""
    out: dict[tuple, dict[int, Mapping]] = {}
    last_run: dict[tuple, Any] = {}
    for r in rows:
        key = _run_of(r, pre)
        if key is None:
            continue
        if last_run.get(key) != r["run_id"]:
            if key in last_run:
                out[key] = {}
            last_run[key] = r["run_id"]
        out.setdefault(key, {})[int(r["epoch"])] = r
    return out


def outcomes(rows: Iterable[Mapping[str, Any]], points: Sequence[Mapping[str, Any]], seeds: Sequence[int],
             pre: _prereg.Preregistration = PREREGISTRATION) -> list[dict]:
    """Per (grid point, seed), from the sweep's table rows: final test accuracy of lrDecay, large and small
    at the point's last epoch, the margin, memorized fractions, probe and train accuracies, and lrDecay's
    wall time (its ``elapsed`` at its last epoch). Points with a missing run or evaluation are skipped."""
    index = _index(rows, pre)
    axes = _axes(pre)
    margin_min = _c(pre, "premise_margin")
    out = []
    for p in points:
        last = int(pre.stages[p["stages"]]["epochs"])
        ax = tuple((a, p[a]) for a in axes)
        for seed in seeds:
            runs = {"lrDecay": index.get((ax, "lrDecay", p["stages"], seed)),
                    "large": index.get((ax, "large", None, seed)), "small": index.get((ax, "small", None, seed))}
            ev = {s: (r or {}).get(last) for s, r in runs.items()}
            if any(e is None or _num(e.get(METRICS["test_acc"])) is None for e in ev.values()):
                continue
            row = {**p, "setting": setting_id(p), "seed": seed, "wall_lrDecay": _num(ev["lrDecay"].get("elapsed"))}
            for s in ev:
                for k, col in METRICS.items():
                    row[f"{k}_{s}"] = _num(ev[s].get(col))
            row["adv_large"] = row["test_acc_lrDecay"] - row["test_acc_large"]
            row["adv_small"] = row["test_acc_lrDecay"] - row["test_acc_small"]
            row["margin"] = min(row["adv_large"], row["adv_small"])
            row["premise"] = row["margin"] >= margin_min
            out.append(row)
    return out


def _per_setting(outs: Sequence[Mapping[str, Any]], pre) -> dict[str, dict]:
    by: dict[str, dict] = {}
    for o in outs:
        s = by.setdefault(o["setting"], {"point": {k: o[k] for k in pre.grid}, "seeds": [], "margins": [],
                                         "premise": [], "walls": []})
        s["seeds"].append(o["seed"])
        s["margins"].append(o["margin"])
        s["premise"].append(o["premise"])
        s["walls"].append(o["wall_lrDecay"])
    for s in by.values():
        s["min_margin"] = min(s["margins"])
        s["all_premise"] = all(s["premise"])
        s["cost"] = cost_s(s["point"], pre)
        walls = [w for w in s["walls"] if w is not None]
        s["wall"] = sum(walls) / len(walls) if walls else None
    return by


def confirm_candidates(outs: Sequence[Mapping[str, Any]], pre: _prereg.Preregistration = PREREGISTRATION) -> list[dict]:
    """Phase 2's settings: premise on the phase-1 seed(s); the best ``n_confirm`` within the cost limit and
    the best ``n_confirm`` overall, by minimum margin."""
    by = _per_setting([o for o in outs if o["seed"] in pre.pilot_seeds], pre)
    ok = [s for s in by.values() if s["all_premise"] and sorted(s["seeds"]) == sorted(pre.pilot_seeds)]
    ok.sort(key=lambda s: (-s["min_margin"], s["cost"]))
    n = int(pre.criterion["n_confirm"])
    quick = [s for s in ok if s["cost"] <= _c(pre, "cost_limit_s")][:n]
    chosen: dict[str, dict] = {}
    for s in quick + ok[:n]:
        chosen.setdefault(setting_id(s["point"]), s["point"])
    return list(chosen.values())


def select(outs: Sequence[Mapping[str, Any]], pre: _prereg.Preregistration = PREREGISTRATION) -> dict[str, Any]:
    """Apply the criterion to the phase 1 + 2 outcomes: ``{"quick": point or None, "full": ...,
    "ranking": [...]}``."""
    seeds = sorted(pre.all_pilot_seeds)
    by = _per_setting(outs, pre)
    ok = [s for s in by.values() if s["all_premise"] and sorted(s["seeds"]) == seeds]

    def best(cands):
        if not cands:
            return None
        top = max(s["min_margin"] for s in cands)
        tied = [s for s in cands if s["min_margin"] >= top - _c(pre, "tie_tolerance")]
        return min(tied, key=lambda s: s["cost"])

    def pick(s):
        return None if s is None else {**s["point"], "min_margin": s["min_margin"], "cost_s": s["cost"],
                                       "wall_s": s["wall"]}

    ranking = sorted(by.values(), key=lambda s: -s["min_margin"])
    return {
        "criterion": criterion_text(pre),
        "quick": pick(best([s for s in ok if s["cost"] <= _c(pre, "cost_limit_s")])),
        "full": pick(best(ok)),
        "passing_all_pilot_seeds": [setting_id(s["point"]) for s in ok],
        "ranking": [{"setting": setting_id(s["point"]), "seeds": s["seeds"], "margins": s["margins"],
                     "min_margin": s["min_margin"], "cost_s": s["cost"], "wall_s": s["wall"]} for s in ranking],
    }


# ---------------------------------------------------------------------------------------- driver
SWEEP_DIR = "sweep"
LEGACY_RUNS = "runs.jsonl"


def search_table(out_dir: str, pre: _prereg.Preregistration = PREREGISTRATION) -> list[dict]:
    """The search's table: the rows of ``OUT/runs.jsonl`` (the first search's runs, converted) and of the
    sweep in ``OUT/sweep/``, each with every ``config.<field>`` the rule reads."""
    rows = legacy_table_rows(read_legacy_runs(os.path.join(out_dir, LEGACY_RUNS)), pre)
    sweep = os.path.join(out_dir, SWEEP_DIR)
    if os.path.exists(os.path.join(sweep, "sweep.json")):
        from lrdecay.sweep import load_sweep

        res = load_sweep(sweep)
        configs = {o.id: o.config.to_dict() for o in res.runs}
        for r in res.rows:
            rows.append({**{f"config.{k}": v for k, v in configs[r["run_id"]].items()}, **r})
    return rows


#: What a pre-registration file must hold for this search: its grid axes, stage options' keys and criterion keys.
REQUIRED = {"grid": ("width", "n_train", "label_noise", "preset", "stages", "weight_decay"),
            "fixed": ("lr", "lr_small"),
            "criterion": ("premise_margin", "n_confirm", "cost_limit_s", "tie_tolerance", "epoch_s_per_32k")}


def check_preregistration(pre: _prereg.Preregistration) -> None:
    """Raise :class:`~lrdecay.experiments.prereg.PreregistrationError` when ``pre`` is not a regime search's
    pre-registration (pattern data, the axes, fixed settings and criterion numbers this search reads,
    milestones and epochs of each stage option, a cost per width of the grid); the message names the key."""
    def err(msg: str):
        return _prereg.PreregistrationError(f"{pre.path}: {msg}")

    if pre.data != "patterns":
        raise err(f"data must be 'patterns' for the regime search, got {pre.data!r}")
    for section, keys in REQUIRED.items():
        missing = [k for k in keys if k not in getattr(pre, section)]
        if missing:
            raise err(f"{section} lacks {missing} (the regime search needs {list(keys)})")
    for name, st in pre.stages.items():
        if not isinstance(st.get("milestones"), list) or not isinstance(st.get("epochs"), int):
            raise err(f"stages.{name!r} needs milestones (a list) and epochs (an int)")
    costs = {str(k) for k in pre.criterion["epoch_s_per_32k"]}
    missing = [w for w in pre.grid["width"] if str(w) not in costs]
    if missing:
        raise err(f"criterion.epoch_s_per_32k lacks the width(s) {missing}")


def check_phases(out_dir: str, phases: Sequence[int], pre: _prereg.Preregistration = PREREGISTRATION) -> None:
    """ValueError when ``phases`` skip phase 1 and ``out_dir`` lacks some of its results (phase 2 picks its
    candidates from them)."""
    if 1 in phases:
        return
    points = grid_points(pre.grid)
    have = len(outcomes(search_table(out_dir, pre), points, pre.pilot_seeds, pre))
    if have < len(points):
        raise ValueError(f"phase 2 needs phase 1's results, and {out_dir} holds {have} of the "
                         f"{len(points)} settings: run phase 1 first (--phase 1 or all)")


def _train(out_dir: str, points, seeds, pre, *, workers: int, progress: bool) -> None:
    """Train what ``points`` × ``seeds`` need and the folder lacks, through the sweep engine."""
    from lrdecay.sweep import run_sweep
    from lrdecay.sweep.spec import SweepSpec

    spec = search_spec(points, seeds, pre)
    have = set(_index(search_table(out_dir, pre), pre))
    todo = [r for r in spec.runs() if _run_of({"run_id": r.id, "seed": r.seed, **{f"config.{k}": v for k, v in
                                                r.config.to_dict().items()}}, pre) not in have]
    if not todo:
        return
    if len(todo) < len(spec.runs()):
        spec = SweepSpec.from_runs(todo, name=spec.name)
    res = run_sweep(spec, os.path.join(out_dir, SWEEP_DIR), executor="process" if workers > 1 else "stack",
                    workers=workers, progress=progress, extend=True)
    if res.missing:  # failed, or stopped part-way: the rule would silently skip their settings
        from lrdecay.sweep import RunsMissing

        raise RunsMissing(res.missing)


def run_search(out_dir: str, *, workers: int = 2, phases: Sequence[int] = (1, 2), progress: bool = True,
               pre: _prereg.Preregistration = PREREGISTRATION) -> dict:
    """Run the search under ``pre`` (resumable) and write ``table.csv``, ``selection.json``,
    ``regime_map.png`` and ``REGIME.md`` into ``out_dir`` (the runs into ``out_dir/sweep/``). Returns the
    selection. Phase 2 alone needs phase 1's results in ``out_dir`` (ValueError, before anything is
    written, when some are missing)."""
    from lrdecay._atomic import atomic_write

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    check_preregistration(pre)
    check_phases(out_dir, phases, pre)
    points = grid_points(pre.grid)
    if 1 in phases:
        _train(out_dir, points, pre.pilot_seeds, pre, workers=workers, progress=progress)
    confirm = confirm_candidates(outcomes(search_table(out_dir, pre), points, pre.pilot_seeds, pre), pre)
    if 2 in phases and confirm and pre.confirm_seeds:
        _train(out_dir, confirm, pre.confirm_seeds, pre, workers=workers, progress=progress)
    all_outs = outcomes(search_table(out_dir, pre), points, pre.all_pilot_seeds, pre)
    sel = select(all_outs, pre)
    sel["phase2_candidates"] = [setting_id(p) for p in confirm]
    os.makedirs(out_dir, exist_ok=True)
    write_table(all_outs, os.path.join(out_dir, "table.csv"), pre)
    regime_map(all_outs, os.path.join(out_dir, "regime_map.png"), pre=pre)
    with atomic_write(os.path.join(out_dir, "selection.json"), "w", encoding="utf-8") as f:
        json.dump(sel, f, indent=1)
    write_summary(out_dir, sel, all_outs, pre)
    return sel

