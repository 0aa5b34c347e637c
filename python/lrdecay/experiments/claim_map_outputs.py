"""What the claim map writes: ``claims.csv`` (one row per setting and pilot seed), one heatmap per claim of
its main effect over the grid (the regime map's layout), ``holds.png`` (how many claims hold per setting)
and ``CLAIMS_TABLES.md`` (per claim and axis value: rule outcomes and mean effect; the picks).

The map itself is :mod:`lrdecay.experiments.claim_map`, which imports this module lazily and passes in
``claims`` (claim -> its main effect in words, ``C7 val`` included) and ``counted`` (the claims the picks
count).
"""

from __future__ import annotations

import itertools
import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from lrdecay.experiments import prereg as _prereg

__all__ = ["write_csv", "claim_maps", "paper_like_map", "axis_table", "write_tables", "read_csv"]

_STATUS = ("supported", "inconclusive", "not supported", "does not apply")


def write_csv(rows: Sequence[Mapping[str, Any]], path: str, pre: _prereg.Preregistration,
              claims: Mapping[str, str]) -> str:
    """The per-(setting, seed) rows as CSV (floats with 4 decimals; −inf excess as empty)."""
    import csv

    from lrdecay._atomic import atomic_write

    base_cols = [*pre.grid, "setting", "seed", "cost_s", "D_T", "L_T", "S_T", "margin", "D_m1", "D_m1_minus",
                 "Dtr_m1", "paper_like_premise", "paper_like_plateau", "paper_like_large_ok", "paper_like_all"]
    cols = base_cols + [f"{c}{suffix}" for c in claims for suffix in ("", " effect", " excess")]

    def cell(v):
        if isinstance(v, float):
            return "" if not math.isfinite(v) else f"{v:.4f}"
        return v

    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in sorted(rows, key=lambda r: (r["setting"], r["seed"])):
            w.writerow({k: cell(r.get(k)) for k in cols})
    return path


def _layout(pre):
    g = pre.grid
    rows_keys = list(itertools.product(g["width"], g["n_train"], g["weight_decay"]))
    cols_keys = list(itertools.product(g["preset"], g["label_noise"], g["stages"]))
    return rows_keys, cols_keys


def _cells(rows, seeds):
    cells: dict[tuple, list] = {}
    for r in rows:
        if r["seed"] in seeds:
            key = ((r["width"], r["n_train"], r["weight_decay"]), (r["preset"], r["label_noise"], r["stages"]))
            cells.setdefault(key, []).append(r)
    return cells


def _figure(n_panels: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.2 * n_panels))
    FigureCanvasAgg(fig)
    return fig


def claim_maps(rows: Sequence[Mapping[str, Any]], out_dir: str, pre: _prereg.Preregistration,
               claims: Mapping[str, str], counted: Sequence[str]) -> list[str]:
    """One PNG per claim (``C1.png`` ... ``C7 val.png`` as ``C7-val.png``): its main effect over the grid, mean
    over the phase-1 pilot seed(s), each cell marked with the rule's outcome on that seed (``+`` supported,
    ``−`` not supported, ``?`` inconclusive, ``n/a``); and ``holds.png``: how many of the seven claims are
    supported per setting. Rows: width × n_train × weight decay; columns: preset × label noise × stages
    (the regime map's layout)."""
    from lrdecay.sweep.plots import heatmap

    seeds = pre.pilot_seeds
    rows_keys, cols_keys = _layout(pre)
    cells = _cells(rows, seeds)
    xlabels = [f"{pr}\nnoise {nz:g}\n{st}" for pr, nz, st in cols_keys]
    ylabels = [f"w{w} n{n // 1000}k wd{wd:g}" for w, n, wd in rows_keys]
    mark = {"supported": "+", "not supported": "−", "inconclusive": "?", "does not apply": "n/a"}
    paths = []
    for claim, words in claims.items():
        grid = np.full((len(rows_keys), len(cols_keys)), np.nan)
        labels = [["" for _ in cols_keys] for _ in rows_keys]
        for i, rk in enumerate(rows_keys):
            for j, ck in enumerate(cols_keys):
                rs = cells.get((rk, ck), [])
                vals = [r[f"{claim} effect"] for r in rs if r.get(f"{claim} effect") is not None]
                if vals:
                    grid[i, j] = float(np.mean(vals))
                labels[i][j] = "".join(mark.get(r.get(claim), "") for r in rs)
        fig = _figure(1)
        ax = fig.add_subplot(1, 1, 1)
        finite = grid[np.isfinite(grid)]
        lim = max(1e-3, float(np.max(np.abs(finite)))) if finite.size else 1.0
        im = heatmap(ax, grid, xlabels, ylabels, cmap="RdBu", vmin=-lim, vmax=lim, diverging=True, fmt="{:+.2f}",
                     fontsize=6, tick_fontsize=6)
        for i in range(len(rows_keys)):
            for j in range(len(cols_keys)):
                if labels[i][j]:
                    ax.text(j, i + 0.32, labels[i][j], ha="center", va="center", fontsize=6)
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set_title(f"{claim}: {words} (pilot seed {list(seeds)}; + supported, − not supported, ? inconclusive)",
                     fontsize=8)
        fig.tight_layout()
        path = os.path.join(out_dir, f"{claim.replace(' ', '-')}.png")
        fig.savefig(path, dpi=110)
        paths.append(path)
    grid = np.full((len(rows_keys), len(cols_keys)), np.nan)
    for (rk, ck), rs in cells.items():
        grid[rows_keys.index(rk), cols_keys.index(ck)] = float(np.mean(
            [sum(1 for c in counted if r.get(c) == "supported") for r in rs]))
    fig = _figure(1)
    ax = fig.add_subplot(1, 1, 1)
    im = heatmap(ax, grid, xlabels, ylabels, cmap="viridis", vmin=0, vmax=len(counted), fmt="{:.0f}", fontsize=7,
                 tick_fontsize=6)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(f"claims supported (of {len(counted)}) per setting, pilot seed {list(seeds)}", fontsize=9)
    fig.tight_layout()
    path = os.path.join(out_dir, "holds.png")
    fig.savefig(path, dpi=110)
    return [*paths, path]


def paper_like_map(rows: Sequence[Mapping[str, Any]], path: str, pre: _prereg.Preregistration) -> str:
    """``paper_like.png``: how close each setting came to each condition of the paper-like rule (phase-1
    seed), one panel per condition, ``*`` where the condition holds: the premise margin (≥ the premise's
    margin), lrDecay's test-accuracy change over the last ``level_epochs`` epochs of stage 1 (|·| ≤ the
    level tolerance), its clean training accuracy at the first milestone (≥ chance + share · (1 − chance)),
    its stage-1 share of the final gain over chance, and the large LR's share of lrDecay's gain."""
    from lrdecay.sweep.plots import heatmap

    c = pre.criterion
    ch = float(c["chance"])
    rows_keys, cols_keys = _layout(pre)
    cells = _cells(rows, pre.pilot_seeds)

    def gain(a, b):
        return None if a is None or b is None or b - ch <= 1e-9 else (a - ch) / (b - ch)

    panels = [
        ("premise margin: lrDecay − best constant LR", lambda r: r.get("margin"),
         lambda v: v >= float(c["premise_margin"])),
        (f"stage 1 levelled off: D(m1) − D(m1 − {c['level_epochs']})",
         lambda r: None if r.get("D_m1") is None or r.get("D_m1_minus") is None else r["D_m1"] - r["D_m1_minus"],
         lambda v: abs(v) <= float(c["level_tolerance"])),
        ("clean train acc at m1", lambda r: r.get("Dtr_m1"),
         lambda v: v >= ch + float(c["plateau_train_share"]) * (1 - ch)),
        ("stage 1's share of the final gain", lambda r: gain(r.get("D_m1"), r.get("D_T")),
         lambda v: v >= float(c["stage1_gain_share"])),
        ("large LR's share of lrDecay's gain", lambda r: gain(r.get("L_T"), r.get("D_T")),
         lambda v: v >= float(c["large_gain_share"])),
    ]
    fig = _figure(len(panels))
    xlabels = [f"{pr}\nnoise {nz:g}\n{st}" for pr, nz, st in cols_keys]
    ylabels = [f"w{w} n{n // 1000}k wd{wd:g}" for w, n, wd in rows_keys]
    for k, (title, value, holds) in enumerate(panels):
        grid = np.full((len(rows_keys), len(cols_keys)), np.nan)
        marks = np.zeros_like(grid, dtype=bool)
        for (rk, ck), rs in cells.items():
            vals = [value(r) for r in rs if value(r) is not None]
            if vals:
                i, j = rows_keys.index(rk), cols_keys.index(ck)
                grid[i, j] = float(np.mean(vals))
                marks[i, j] = all(holds(v) for v in vals)
        ax = fig.add_subplot(len(panels), 1, k + 1)
        im = heatmap(ax, grid, xlabels, ylabels, cmap="viridis", vmin=float(np.nanmin(grid)) if np.isfinite(grid).any()
                     else 0.0, vmax=float(np.nanmax(grid)) if np.isfinite(grid).any() else 1.0, fmt="{:+.2f}",
                     marks=marks, fontsize=6, tick_fontsize=6)
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set_title(f"{title} (* = holds)", fontsize=8)
    fig.suptitle(f"How close each setting came to the paper-like rule (pilot seed {list(pre.pilot_seeds)})",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def read_csv(path: str) -> list[dict]:
    """The rows of a ``claims.csv`` with numbers, booleans and empty cells (None; an excess: −inf) restored."""
    import csv

    def value(k, v):
        if v == "":
            return -math.inf if k.endswith("excess") else None
        if v in ("True", "False"):
            return v == "True"
        try:
            return int(v) if k in ("seed", "width", "n_train") else float(v)
        except ValueError:
            return v

    with open(path, encoding="utf-8") as f:
        return [{k: value(k, v) for k, v in r.items()} for r in csv.DictReader(f)]


def axis_table(rows: Sequence[Mapping[str, Any]], claim: str, pre: _prereg.Preregistration) -> list[dict]:
    """Per axis value (phase-1 seed rows): settings, the count of each rule outcome, and the mean effect."""
    out = []
    sel = [r for r in rows if r["seed"] in pre.pilot_seeds]
    for axis, values in pre.grid.items():
        if len(values) < 2:
            continue
        for v in values:
            group = [r for r in sel if r[axis] == v]
            eff = [r[f"{claim} effect"] for r in group if r.get(f"{claim} effect") is not None]
            out.append({"axis": axis, "value": v, "settings": len(group),
                        **{s: sum(1 for r in group if r.get(claim) == s) for s in _STATUS},
                        "effect": float(np.mean(eff)) if eff else float("nan")})
    return out


def write_tables(rows: Sequence[Mapping[str, Any]], sel: Mapping[str, Any], path: str,
                 pre: _prereg.Preregistration, claims: Mapping[str, str], counted: Sequence[str]) -> str:
    """``CLAIMS_TABLES.md``: per claim, its outcomes and mean effect per axis value; the phase-2 candidates,
    the ranking on all pilot seeds and both picks; the pre-registration it ran under."""
    from lrdecay._atomic import atomic_write

    phase1 = [r for r in rows if r["seed"] in pre.pilot_seeds]
    lines = ["# Claim map — generated tables", "",
             f"Written by `lrdecay regime --claims`. Run under the {pre.describe()}.",
             f"Phase 1: {len(phase1)} settings on pilot seed {list(pre.pilot_seeds)}.", ""]
    lines += ["## Claims supported per setting (phase 1)", "", "| setting | supported | margin | paper-like |",
              "|---|---|---|---|"]
    for r in sorted(phase1, key=lambda r: r["setting"]):
        sup = [c for c in counted if r.get(c) == "supported"]
        margin = "–" if r.get("margin") is None else f"{r['margin']:+.3f}"
        lines.append(f"| `{r['setting']}` | {len(sup)}: {', '.join(sup) or '–'} | {margin} | "
                     f"{'yes' if r['paper_like_all'] else 'no'} |")
    for claim, words in claims.items():
        lines += ["", f"## {claim}: {words}", "", "| axis | value | settings | supported | inconclusive | "
                  "not supported | n/a | mean effect |", "|---|---|---|---|---|---|---|---|"]
        for t in axis_table(rows, claim, pre):
            lines.append(f"| {t['axis']} | {t['value']} | {t['settings']} | {t['supported']} | {t['inconclusive']} | "
                         f"{t['not supported']} | {t['does not apply']} | {t['effect']:+.3f} |")
    cands = sel.get("phase2_candidates", {})
    lines += ["", "## Phase 2 and the picks", "",
              f"- Phase-2 candidates (pilot seeds {list(pre.confirm_seeds)}): paper-like "
              f"{cands.get('paper_like') or 'none'}; claims-best {cands.get('claims_best') or 'none'}.",
              f"- **paper-like** pick: {sel.get('paperlike') or 'no setting meets the rule on every pilot seed'}.",
              f"- **claims-best** pick (an existence test: is there a regime where the paper's account holds?): "
              f"{sel.get('claimsbest') or 'no claim is supported on every pilot seed anywhere'} "
              f"({sel.get('claims_counted', 0)} claims supported on all pilot seeds).", "",
              "| setting (all pilot seeds) | claims supported on every seed | min margin | paper-like on every seed |",
              "|---|---|---|---|"]
    for r in sel.get("ranking", []):
        lines.append(f"| `{r['setting']}` | {', '.join(r['claims_supported_on_all_seeds']) or '–'} | "
                     f"{r['min_margin']:+.3f} | {'yes' if r['paper_like_on_all_seeds'] else 'no'} |")
    lines.append("")
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path
