"""Plots from a sweep's table: regime maps (a metric over two axes) and per-run curves with seed bands.

Both take a :class:`~lrdecay.sweep.SweepResult`, a sweep folder, or the table's rows (dicts), and
write a PNG (matplotlib, no display needed). Column names are the table's (``test.test.acc``,
``train_loss``, ``memorized``, ...); an axis may be given as a config field (``lr`` means ``config.lr``).

- :func:`regime_map`: a metric at one epoch (default: each run's last value), averaged over seeds, as a
  heatmap over two axes; one panel per value of ``by`` (e.g. per schedule), or one panel of the
  difference between two of them (``diff=("lrDecay", "small")``: where does decay beat a small constant
  LR, and by how much).
- :func:`run_curves`: a metric per epoch, one line per group (default: per setting), the mean over seeds
  with a ±1 std band.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["regime_map", "run_curves", "regime_table", "table_of", "heatmap"]


def table_of(source: Any) -> list[dict]:
    """The table's rows from a SweepResult, a sweep folder, or rows."""
    if hasattr(source, "rows") and hasattr(source, "runs"):
        return list(source.rows)
    if isinstance(source, (str, os.PathLike)):
        from lrdecay.sweep.engine import load_sweep

        return list(load_sweep(source).rows)
    rows = list(source)
    if rows and not isinstance(rows[0], Mapping):
        raise TypeError(f"source must be a SweepResult, a sweep folder or a list of row dicts, got rows of {type(rows[0]).__name__}")
    return rows


def _column(rows: Sequence[Mapping], name: str, what: str, *, axis: bool = False) -> str:
    """The table column for ``name``; an axis prefers the config field (``lr`` is ``config.lr``, not the
    per-epoch ``lr`` column)."""
    if not rows:
        raise ValueError("the sweep's table is empty (no finished runs)")
    cols = set().union(*(r.keys() for r in rows))
    order = (f"config.{name}", name) if axis else (name, f"config.{name}")
    for cand in order:
        if cand in cols:
            return cand
    hint = sorted(c for c in cols if c.startswith("config.")) + ["setting", "seed"]
    raise ValueError(f"{what} {name!r} is not a column of the table; axes available: {hint}")


def _num(v: Any) -> float:
    if v is None or v == "":
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _sort_key(v: Any):
    f = _num(v)
    return (0, f, "") if not math.isnan(f) else (1, 0.0, str(v))


def _per_run_value(rows: Sequence[Mapping], metric: str, epoch: int | str) -> dict[str, tuple[Mapping, float]]:
    """run_id -> (its row at ``epoch``, metric value); ``epoch="last"``: its last row with a value."""
    by_run: dict[str, list[Mapping]] = defaultdict(list)
    for r in rows:
        by_run[r["run_id"]].append(r)
    out = {}
    for rid, rs in by_run.items():
        rs = sorted(rs, key=lambda r: int(_num(r.get("epoch"))))
        if epoch == "last":
            hits = [r for r in rs if not math.isnan(_num(r.get(metric)))]
            row = hits[-1] if hits else rs[-1]
        else:
            match = [r for r in rs if int(_num(r.get("epoch"))) == int(epoch)]
            if not match:
                continue
            row = match[0]
        out[rid] = (row, _num(row.get(metric)))
    return out


def regime_table(source: Any, x: str, y: str, metric: str, *, by: str | None = "setting",
                 epoch: int | str = "last") -> dict:
    """The numbers behind :func:`regime_map`: ``{"x": [...], "y": [...], "panels": {by value: {"mean":
    (ny, nx) array, "std": ..., "n": ...}}, "columns": (x, y, metric, by)}`` (NaN where no run)."""
    rows = table_of(source)
    xc, yc = _column(rows, x, "x", axis=True), _column(rows, y, "y", axis=True)
    mc = _column(rows, metric, "metric")
    bc = _column(rows, by, "by", axis=True) if by else None
    vals = _per_run_value(rows, mc, epoch)
    xs = sorted({row[xc] for row, _ in vals.values()}, key=_sort_key)
    ys = sorted({row[yc] for row, _ in vals.values()}, key=_sort_key)
    cells: dict[Any, dict[tuple, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row, v in vals.values():
        cells[row[bc] if bc else ""][(row[yc], row[xc])].append(v)
    panels = {}
    for key in sorted(cells, key=_sort_key):
        mean = np.full((len(ys), len(xs)), np.nan)
        std = np.full_like(mean, np.nan)
        n = np.zeros_like(mean, dtype=np.int64)
        for (yv, xv), vs in cells[key].items():
            a = np.array([v for v in vs if not math.isnan(v)])
            i, j = ys.index(yv), xs.index(xv)
            n[i, j] = a.size
            if a.size:
                mean[i, j] = a.mean()
                std[i, j] = a.std(ddof=1) if a.size > 1 else 0.0
        panels[key] = {"mean": mean, "std": std, "n": n}
    return {"x": xs, "y": ys, "panels": panels, "columns": (xc, yc, mc, bc)}


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _label(v: Any) -> str:
    f = _num(v)
    if math.isnan(f):
        return str(v)
    return f"{f:g}"


def heatmap(ax, values: np.ndarray, xlabels: Sequence[str], ylabels: Sequence[str], *, cmap: str, vmin: float,
            vmax: float, diverging: bool = False, fmt: str = "{:.3f}", marks: np.ndarray | None = None,
            origin: str = "upper", fontsize: float = 7, tick_fontsize: float = 8):
    """Draw one regime-map panel on ``ax``: ``values`` (ny, nx; NaN cells left blank) as an image with each
    cell's value written in it (``fmt``, plus ``*`` where ``marks`` is true), ticks labelled ``xlabels`` /
    ``ylabels``. Text is white on the dark end of the scale (``diverging``: on strong values of either
    sign). Returns the image (for a colorbar)."""
    im = ax.imshow(values, origin=origin, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(xlabels)), list(xlabels), fontsize=tick_fontsize)
    ax.set_yticks(range(len(ylabels)), list(ylabels), fontsize=tick_fontsize)
    ny, nx = values.shape
    for i in range(ny):
        for j in range(nx):
            v = values[i, j]
            if np.isfinite(v):
                light = abs(v) > 0.6 * max(abs(vmin), abs(vmax)) if diverging else v < (vmin + vmax) / 2
                mark = "*" if marks is not None and marks[i, j] else ""
                ax.text(j, i, fmt.format(v) + mark, ha="center", va="center", fontsize=fontsize,
                        color="white" if light else "black")
    return im


def regime_map(source: Any, x: str, y: str, metric: str, path: str | os.PathLike, *, by: str | None = "setting",
               diff: Sequence[Any] | None = None, epoch: int | str = "last", title: str | None = None,
               cmap: str = "viridis") -> str:
    """Write a regime-map PNG to ``path``; returns it.

    Args:
        source: SweepResult, sweep folder or table rows.
        x, y: the two axes (config fields or table columns).
        metric: the column shown, e.g. ``"test.test.acc"``.
        by: one panel per value of this column (None: one panel over all runs).
        diff: ``(a, b)``: one panel of ``mean[a] - mean[b]`` (two values of ``by``) on a diverging scale.
        epoch: the epoch read (default ``"last"``: each run's last value of the metric).
    """
    t = regime_table(source, x, y, metric, by=by, epoch=epoch)
    xc, yc, mc, bc = t["columns"]
    panels = t["panels"]
    if diff is not None:
        if by is None:
            raise ValueError("diff needs by= (the column whose two values are compared)")
        a, b = list(diff)
        keys = {str(k): k for k in panels}
        missing = [str(v) for v in (a, b) if str(v) not in keys]
        if missing:
            raise ValueError(f"diff: {missing} not among the values of {bc!r}: {sorted(keys)}")
        d = panels[keys[str(a)]]["mean"] - panels[keys[str(b)]]["mean"]
        shown = {f"{a} − {b}": d}
        lim = float(np.nanmax(np.abs(d))) if np.isfinite(d).any() else 1.0
        vmin, vmax, cm = -lim, lim, "RdBu"
    else:
        shown = {str(k) if k != "" else mc: p["mean"] for k, p in panels.items()}
        finite = [m[np.isfinite(m)] for m in shown.values()]
        allv = np.concatenate(finite) if finite else np.array([])
        vmin, vmax, cm = (float(allv.min()), float(allv.max()), cmap) if allv.size else (0.0, 1.0, cmap)
    n = len(shown)
    nx, ny = len(t["x"]), len(t["y"])
    fig = _figure(max(4.0, 1.2 + n * (1.0 + 0.7 * nx)), max(3.0, 1.4 + 0.55 * ny))
    axes = fig.subplots(1, n, squeeze=False)[0]
    im = None
    for ax, (name, m) in zip(axes, shown.items()):
        im = heatmap(ax, m, [_label(v) for v in t["x"]], [_label(v) for v in t["y"]], cmap=cm, vmin=vmin,
                     vmax=vmax, diverging=diff is not None, origin="lower")
        ax.set_xlabel(xc.removeprefix("config."))
        ax.set_ylabel(yc.removeprefix("config."))
        ax.set_title(name, fontsize=10)
    if im is not None:
        fig.colorbar(im, ax=list(axes), shrink=0.9, label=mc + (" (difference)" if diff is not None else ""))
    when = "last epoch" if epoch == "last" else f"epoch {epoch}"
    fig.suptitle(title or f"{mc}, mean over seeds ({when})", fontsize=11)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def run_curves(source: Any, metric: str, path: str | os.PathLike, *, by: str | Sequence[str] = "setting",
               title: str | None = None, ylabel: str | None = None, logy: bool = False) -> str:
    """Write a PNG of ``metric`` per epoch: one line per group of ``by`` (one or more columns), the mean
    over its runs (seeds) with a ±1 std band; returns the path."""
    rows = table_of(source)
    mc = _column(rows, metric, "metric")
    cols = [by] if isinstance(by, str) else list(by)
    cols = [_column(rows, c, "by", axis=True) for c in cols]
    series: dict[tuple, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        v = _num(r.get(mc))
        if math.isnan(v):
            continue
        series[tuple(r[c] for c in cols)][r["run_id"]][int(_num(r["epoch"]))] = v
    if not series:
        raise ValueError(f"metric {metric!r} has no values in the table")
    fig = _figure(7.0, 4.5)
    ax = fig.add_subplot()
    for key in sorted(series, key=lambda k: tuple(_sort_key(v) for v in k)):
        runs = series[key]
        epochs = sorted({e for s in runs.values() for e in s})
        arr = np.array([[s.get(e, np.nan) for e in epochs] for s in runs.values()])
        with np.errstate(all="ignore"):
            mean = np.nanmean(arr, axis=0)
            std = np.nanstd(arr, axis=0, ddof=1) if arr.shape[0] > 1 else np.zeros_like(mean)
        std = np.nan_to_num(std)
        label = ", ".join(f"{c.removeprefix('config.')}={_label(v)}" if c != "setting" else str(v)
                          for c, v in zip(cols, key)) + f" (n={arr.shape[0]})"
        ax.plot(epochs, mean, marker="." if len(epochs) < 40 else None, label=label)
        ax.fill_between(epochs, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel or mc)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title or f"{mc}: mean ± std over seeds", fontsize=10)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    return path

