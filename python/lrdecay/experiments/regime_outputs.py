"""What the regime search writes besides its sweep: the per-(setting, seed) table, the regime map, the
summary; and the reader of the first search's run log (``runs.jsonl``) into the sweep table's shape.

The search itself (spec and selection rule) is :mod:`lrdecay.experiments.regime`, which imports this
module (never the other way round). ``pre`` is the pre-registration (default: the packaged one).
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Any, Mapping, Sequence

import numpy as np

from lrdecay.experiments import prereg as _prereg

__all__ = ["setting_id", "read_legacy_runs", "legacy_table_rows", "write_table", "regime_map", "axis_summary",
           "write_summary"]


def _pre(pre: _prereg.Preregistration | None) -> _prereg.Preregistration:
    return _prereg.packaged("patterns") if pre is None else pre


def setting_id(point: Mapping[str, Any]) -> str:
    """A readable id of a grid point, e.g. ``w512-n50000-noise0.2-ps10-10-10-10-wd0.0005``."""
    return (f"w{point['width']}-n{point['n_train']}-noise{point['label_noise']}-{point['preset']}-"
            f"{point['stages']}-wd{point['weight_decay']}")

#: runs.jsonl's per-epoch keys -> the sweep table's columns (the trainer's flattened record keys).
LEGACY_COLUMNS = {
    "test_acc": "test.test.acc",
    "probe_easy": "test.probe_easy.acc",
    "probe_complex": "test.probe_complex.acc",
    "train_acc": "train_acc",
    "memorized": "memorized",
    "memorized_eval": "train_eval.memorized",
    "train_acc_eval": "train_eval.acc",
    "train_acc_clean_eval": "train_eval.acc_clean",
}


def read_legacy_runs(path: str) -> list[dict]:
    """The rows of a ``runs.jsonl`` written by the first search (one JSON object per finished run); a line
    cut by a kill is skipped. A missing file is no rows."""
    rows = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        pass
    return rows


def legacy_table_rows(runs: Sequence[Mapping[str, Any]],
                      pre: _prereg.Preregistration | None = None) -> list[dict]:
    """``runs.jsonl`` rows in the sweep table's shape: one row per run per evaluated epoch, with
    ``run_id`` (``legacy-<line>``), ``setting``, ``seed``, ``config.<field>`` for the fields the search sets,
    ``epoch``, the metric columns (:data:`LEGACY_COLUMNS`) and ``elapsed`` (the run's wall time, on its
    last epoch). Runs of another fixed setting than ``pre``'s are left out."""
    pre = _pre(pre)
    out = []
    for i, run in enumerate(runs):
        fixed = dict(run.get("fixed") or {})
        if fixed != pre.fixed:
            continue
        lr = fixed["lr_small"] if run["schedule"] == "small" else fixed["lr"]
        config = {f"config.{k}": v for k, v in fixed.items() if k != "lr_small"}
        config.update({f"config.{a}": run[a] for a in pre.grid if a != "stages"})
        config.update({"config.lr": lr, "config.schedule": "multistep" if run["schedule"] == "lrDecay" else "constant",
                       "config.milestones": json.dumps(list(run["milestones"])), "config.epochs": run["epochs"]})
        setting = f"lrDecay {run['stages']}" if run["schedule"] == "lrDecay" else run["schedule"]
        epochs = sorted(run["evals"], key=int)
        for e in epochs:
            row = {"run_id": f"legacy-{i + 1}", "setting": setting, "seed": run["seed"], **config, "epoch": int(e)}
            row.update({col: run["evals"][e].get(k) for k, col in LEGACY_COLUMNS.items()})
            if e == epochs[-1]:
                row["elapsed"] = run["wall_time"]
            out.append(row)
    return out


def write_table(outs: Sequence[Mapping[str, Any]], path: str,
                pre: _prereg.Preregistration | None = None) -> str:
    """The per-(setting, seed) outcomes as CSV."""
    pre = _pre(pre)
    import csv

    from lrdecay._atomic import atomic_write

    cols = [*pre.grid, "setting", "seed", "test_acc_lrDecay", "test_acc_large", "test_acc_small", "adv_large",
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


def regime_map(outs: Sequence[Mapping[str, Any]], path: str, *, seeds: Sequence[int] | None = None,
               pre: _prereg.Preregistration | None = None) -> str:
    """Heatmaps over the grid (mean over ``seeds``, default the phase-1 pilot seeds), drawn with the sweep
    engine's panel (:func:`lrdecay.sweep.plots.heatmap`): lrDecay's test advantage over the large LR, over
    the small LR, the minimum of both (the premise margin), and lrDecay's eval-mode memorized fraction.

    Rows: width × n_train × weight decay; columns: preset × label noise × stages."""
    pre = _pre(pre)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from lrdecay.sweep.plots import heatmap

    seeds = pre.pilot_seeds if seeds is None else seeds
    g = pre.grid
    rows_keys = list(itertools.product(g["width"], g["n_train"], g["weight_decay"]))
    cols_keys = list(itertools.product(g["preset"], g["label_noise"], g["stages"]))
    margin = float(pre.criterion["premise_margin"])
    metrics = [("adv_large", "lrDecay − large LR (test acc)", True),
               ("adv_small", "lrDecay − small LR (test acc)", True),
               ("margin", "premise margin: min of both", True),
               ("memorized_eval_lrDecay", "lrDecay memorized fraction (eval mode, final)", False)]
    cells: dict[tuple, list[Mapping]] = {}
    for o in outs:
        if o["seed"] in seeds:
            key = ((o["width"], o["n_train"], o["weight_decay"]), (o["preset"], o["label_noise"], o["stages"]))
            cells.setdefault(key, []).append(o)
    fig = Figure(figsize=(16, 9))
    FigureCanvasAgg(fig)
    for m, (key, title, diverging) in enumerate(metrics):
        grid = np.full((len(rows_keys), len(cols_keys)), np.nan)
        for i, rk in enumerate(rows_keys):
            for j, ck in enumerate(cols_keys):
                vals = [o[key] for o in cells.get((rk, ck), []) if o[key] is not None]
                if vals:
                    grid[i, j] = float(np.mean(vals))
        ax = fig.add_subplot(2, 2, m + 1)
        if diverging:
            lim = max(0.02, float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 0.02)
            im = heatmap(ax, grid, [f"{pr}\nnoise {nz}\n{st}" for pr, nz, st in cols_keys],
                         [f"w{w} n{n // 1000}k wd{wd:g}" for w, n, wd in rows_keys], cmap="RdBu", vmin=-lim,
                         vmax=lim, diverging=True, fmt="{:+.2f}",
                         marks=grid >= margin if key == "margin" else None, fontsize=6, tick_fontsize=6)
        else:
            im = heatmap(ax, grid, [f"{pr}\nnoise {nz}\n{st}" for pr, nz, st in cols_keys],
                         [f"w{w} n{n // 1000}k wd{wd:g}" for w, n, wd in rows_keys], cmap="viridis", vmin=0,
                         vmax=1, fmt="{:.2f}", fontsize=6, tick_fontsize=6)
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"Regime map (mean over pilot seeds {list(seeds)}); * = mean margin ≥ {margin}", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def axis_summary(outs: Sequence[Mapping[str, Any]], seeds: Sequence[int] | None = None,
                 pre: _prereg.Preregistration | None = None) -> list[dict]:
    """For each value of each grid axis, over the settings holding it (phase-1 seeds): the mean of
    lrDecay's advantage over the large and the small LR, the mean margin, lrDecay's mean eval-mode memorized
    fraction, and how many settings met the premise."""
    pre = _pre(pre)
    seeds = pre.pilot_seeds if seeds is None else seeds
    rows = []
    sel = [o for o in outs if o["seed"] in seeds]
    for axis, values in pre.grid.items():
        for v in values:
            group = [o for o in sel if o[axis] == v]
            if not group:
                continue
            mem = [o["memorized_eval_lrDecay"] for o in group if o["memorized_eval_lrDecay"] is not None]
            rows.append({
                "axis": axis, "value": v, "settings": len(group),
                "adv_large": float(np.mean([o["adv_large"] for o in group])),
                "adv_small": float(np.mean([o["adv_small"] for o in group])),
                "margin": float(np.mean([o["margin"] for o in group])),
                "memorized_eval_lrDecay": float(np.mean(mem)) if mem else float("nan"),
                "premise": sum(1 for o in group if o["premise"]),
            })
    return rows


def write_summary(out_dir: str, sel: Mapping[str, Any], outs: Sequence[Mapping[str, Any]],
                  pre: _prereg.Preregistration | None = None) -> str:
    """``REGIME.md``: what the search found (per-axis effects, the best settings, the picks), and the
    pre-registration it ran under (its sha256, and whether it is the committed file)."""
    pre = _pre(pre)
    from lrdecay._atomic import atomic_write

    phase1 = [o for o in outs if o["seed"] in pre.pilot_seeds]
    n_pass = sum(1 for o in phase1 if o["premise"])
    lines = [
        "# Regime search — results",
        "",
        "Pre-registration: [PREREGISTRATION.md](PREREGISTRATION.md). Command: `lrdecay regime --out docs/regime`.",
        f"Run under the {pre.describe()}.",
        f"Phase 1: {len(phase1)} settings on pilot seed {list(pre.pilot_seeds)}; the premise (lrDecay's final test "
        f"accuracy ≥ both constant LRs' + {pre.criterion['premise_margin']}) held in {n_pass}. Phase 2 confirmed "
        f"{len(sel.get('phase2_candidates', []))} candidates on pilot seeds {list(pre.confirm_seeds)}.",
        "",
        "![regime map](regime_map.png)",
        "",
        "## Effect of each axis (phase 1, mean over the settings with that value)",
        "",
        "| axis | value | settings | lrDecay − large | lrDecay − small | margin | lrDecay memorized (eval) | premise met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in axis_summary(outs, pre=pre):
        lines.append(f"| {r['axis']} | {r['value']} | {r['settings']} | {r['adv_large']:+.3f} | {r['adv_small']:+.3f} | "
                     f"{r['margin']:+.3f} | {r['memorized_eval_lrDecay']:.3f} | {r['premise']} |")
    lines += ["", "## Best settings (minimum margin over the pilot seeds each was trained on)", "",
              "| setting | seeds | margins | min margin | est. cost (s) | mean wall (s) |", "|---|---|---|---|---|---|"]
    for r in sel["ranking"][:15]:
        wall = "–" if r["wall_s"] is None else f"{r['wall_s']:.0f}"
        lines.append(f"| `{r['setting']}` | {r['seeds']} | {', '.join(f'{m:+.3f}' for m in r['margins'])} | "
                     f"{r['min_margin']:+.3f} | {r['cost_s']:.0f} | {wall} |")
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
