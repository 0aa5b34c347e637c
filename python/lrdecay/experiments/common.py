"""Shared pieces of the experiments: mean ± std, verdicts and the common three-way rule, curve helpers
(series, sharpness, epochs to target), plots, and the result dict.

The result dict of every experiment has the keys ``name``, ``claim``, ``title``, ``claim_text``,
``setup``, ``preset``, ``data`` (None: the pattern datasets, else the real image data), ``settings``,
``seeds``, ``per_seed`` (metric -> list, one value per seed), ``summary`` (metric -> {mean, std,
values}), ``verdict_keys`` (the numbers the rule reads), ``table`` ({headers, rows} of "mean ± std"
strings), ``curves``, ``verdict`` ({status, rule, details}), ``plots`` (PNG file names), ``notes``,
``training`` (runs, shared runs, runs read back, training seconds) and ``wall_time`` (seconds of
measuring and presenting; training is in ``training``).
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence, TypedDict

import numpy as np

__all__ = [
    "SUPPORTED",
    "NOT_SUPPORTED",
    "INCONCLUSIVE",
    "DOES_NOT_APPLY",
    "PRESET_NAMES",
    "Verdict",
    "stat",
    "fmt",
    "all_seeds",
    "seed_rule",
    "combine",
    "series",
    "at_epoch",
    "sharpness",
    "epochs_to_target",
    "mean_curve",
    "line_plot",
    "finish_result",
    "not_applicable_result",
    "log",
]

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INCONCLUSIVE = "inconclusive"
#: Not a verdict: the experiment was not run because the data cannot support it (e.g. no pattern groups).
DOES_NOT_APPLY = "does not apply"
PRESET_NAMES = ("tiny", "quick", "full")


# ====================================================================== numbers
def stat(values: Iterable[float | None]) -> dict:
    """``{"mean", "std", "values"}`` over seeds (sample std, ddof=1; 0 for a single value).

    ``None`` / NaN values (e.g. a target never reached) are kept in ``values`` and skipped in mean/std;
    mean/std are None when no value is finite.
    """
    vals = [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in values]
    finite = np.array([v for v in vals if v is not None], dtype=np.float64)
    if finite.size == 0:
        return {"mean": None, "std": None, "values": vals}
    std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return {"mean": float(finite.mean()), "std": std, "values": vals}


def fmt(s: Mapping | float | None, digits: int = 3) -> str:
    """``"0.123 ± 0.004"`` for a :func:`stat` dict, ``"0.123"`` for a number, ``"–"`` for None."""
    if s is None:
        return "–"
    if isinstance(s, Mapping):
        if s.get("mean") is None:
            return "–"
        return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"
    return f"{float(s):.{digits}f}"


# ====================================================================== verdicts
@dataclass
class Verdict:
    """A claim's verdict: ``status`` (supported / not supported / inconclusive), the ``rule`` in words and
    ``details`` (the numbers the rule looked at, and which sub-conditions held)."""

    status: str
    rule: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> VerdictRecord:
        """Plain dict (JSON-serializable when ``details`` is)."""
        return {"status": self.status, "rule": self.rule, "details": self.details}


class VerdictRecord(TypedDict):
    """A :class:`Verdict` as an experiment result holds it."""

    status: str
    rule: str
    details: dict[str, Any]


class TableRecord(TypedDict):
    """An experiment's summary table: column headers and rows of cells."""

    headers: list[str]
    rows: list[list[Any]]


class TrainingRecord(TypedDict):
    """The training behind an experiment: distinct runs, those shared with other experiments, those read
    back from an earlier call, and the sum of their wall times (seconds)."""

    runs: int
    shared_runs: int
    cached_runs: int
    train_time: float


class ExperimentResult(TypedDict):
    """One experiment's result (JSON-ready): what ``results.json`` holds per experiment and what the report
    (:mod:`lrdecay.report`) reads. Built by :func:`finish_result` or :func:`not_applicable_result`.

    ``per_seed``: metric → one value per seed (None where a seed gave none); ``summary``: metric → its
    :func:`stat` over seeds; ``verdict_keys``: the metrics the verdict rule reads; ``curves``: plotted series;
    ``plots``: PNG file names next to the report; ``wall_time``: seconds of analysis."""

    name: str
    claim: str
    title: str
    claim_text: str
    setup: str
    preset: str
    data: str | None
    settings: dict[str, Any]
    seeds: list[int]
    per_seed: dict[str, list[Any]]
    summary: dict[str, dict[str, Any]]
    verdict_keys: list[str]
    table: TableRecord
    curves: dict[str, Any]
    verdict: VerdictRecord
    plots: list[str]
    notes: list[str]
    training: TrainingRecord
    wall_time: float


def all_seeds(conditions: Sequence[bool]) -> bool:
    """True when a per-seed condition holds on every seed (and there is at least one seed)."""
    return len(conditions) > 0 and all(bool(c) for c in conditions)


def seed_rule(support: Sequence[bool], against: Sequence[bool]) -> str:
    """The common three-way rule: ``supported`` if the support condition holds on every seed,
    ``not supported`` if the against condition holds on every seed, else ``inconclusive``."""
    if all_seeds(support):
        return SUPPORTED
    if all_seeds(against):
        return NOT_SUPPORTED
    return INCONCLUSIVE


def combine(statuses: Sequence[str]) -> str:
    """Several sub-claims: supported if all are, not supported if any is, else inconclusive."""
    if statuses and all(s == SUPPORTED for s in statuses):
        return SUPPORTED
    if any(s == NOT_SUPPORTED for s in statuses):
        return NOT_SUPPORTED
    return INCONCLUSIVE


def log(msg: str) -> None:
    """Progress line on stderr."""
    print(msg, file=sys.stderr, flush=True)


# ====================================================================== curve helpers
def series(history: Sequence[Mapping], getter: Callable[[Mapping], Any]) -> list[float | None]:
    """One value per epoch from the run's records (index 0 = epoch 1)."""
    out = []
    for r in history:
        try:
            v = getter(r)
        except (KeyError, TypeError):
            v = None
        out.append(None if v is None else float(v))
    return out


def at_epoch(values: Sequence[float | None], epoch: int) -> float | None:
    """``values`` at 1-based ``epoch`` (epoch 0 = before training: None)."""
    if epoch < 1 or epoch > len(values):
        return None
    return values[epoch - 1]


def sharpness(values: Sequence[float], epoch: int, window: int = 1, floor: float = 0.005) -> dict:
    """Transition sharpness at a decay after 1-based ``epoch``.

    ``after = v[epoch + window] - v[epoch]`` (the change over the ``window`` epochs right after the decay),
    ``before = v[epoch] - v[epoch - window]`` (the change over the ``window`` epochs before it), and
    ``ratio = after / max(|before|, floor)``: the floor keeps a flat curve before the decay from turning
    noise into huge ratios. For a loss, pass the negated curve so that improvement is positive.
    """
    a = at_epoch(values, epoch + window)
    m = at_epoch(values, epoch)
    b = at_epoch(values, epoch - window)
    if a is None or m is None or b is None:
        return {"after": None, "before": None, "ratio": None}
    after, before = a - m, m - b
    return {"after": after, "before": before, "ratio": after / max(abs(before), floor)}


def epochs_to_target(values: Sequence[float | None], target: float) -> int | None:
    """First 1-based epoch whose value is >= ``target``; None if never."""
    for i, v in enumerate(values):
        if v is not None and v >= target:
            return i + 1
    return None


def mean_curve(curves: Sequence[Sequence[float | None]]) -> dict:
    """Pointwise mean and std of equal-length curves (None → NaN)."""
    arr = np.array([[np.nan if v is None else v for v in c] for c in curves], dtype=np.float64)
    with np.errstate(all="ignore"):
        mean = np.nanmean(arr, axis=0) if arr.size else arr
        std = np.nanstd(arr, axis=0, ddof=1) if arr.shape[0] > 1 else np.zeros(arr.shape[1:])
    return {"mean": [None if np.isnan(v) else float(v) for v in mean],
            "std": [0.0 if np.isnan(v) else float(v) for v in std]}


# ====================================================================== plots
def line_plot(
    path: str,
    curves: Mapping[str, Mapping[str, Sequence[float | None]]],
    *,
    title: str,
    xlabel: str = "epoch",
    ylabel: str = "",
    vlines: Sequence[float] = (),
    x: Sequence[float] | None = None,
) -> str:
    """A PNG of mean curves with a ±std band: ``curves = {label: {"mean": [...], "std": [...]}}``.
    ``vlines`` are drawn dashed (decay points, drawn at e + 0.5 for a decay after epoch e)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label, c in curves.items():
        mean = np.array([np.nan if v is None else v for v in c["mean"]], dtype=np.float64)
        std = np.array([0.0 if v is None else v for v in c.get("std", [0.0] * len(mean))], dtype=np.float64)
        xs = np.arange(1, len(mean) + 1) if x is None else np.asarray(x)[: len(mean)]
        ax.plot(xs, mean, label=label, linewidth=1.5)
        ax.fill_between(xs, mean - std, mean + std, alpha=0.2)
    for i, v in enumerate(vlines):
        ax.axvline(v, color="0.5", linestyle="--", linewidth=1, label="LR decay" if i == 0 else None)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


# ====================================================================== results
def finish_result(
    exp: Any,
    *,
    preset: str,
    settings: Mapping[str, Any],
    seeds: Sequence[int],
    per_seed: Mapping[str, Sequence[Any]],
    table: Mapping[str, Any],
    curves: Mapping[str, Any],
    verdict: Verdict,
    plots: Sequence[str],
    t0: float,
    notes: Sequence[str] = (),
    training: Mapping[str, Any] | None = None,
) -> ExperimentResult:
    """Assemble the result (JSON-serializable) of experiment record ``exp`` in the common shape."""
    summary = {}
    for k, v in per_seed.items():
        if all(x is None or isinstance(x, (int, float)) for x in v):
            summary[k] = stat(v)
    return {
        "name": exp.name,
        "claim": exp.claim,
        "title": exp.title,
        "claim_text": exp.claim_text,
        "setup": exp.setup(settings),
        "preset": preset,
        "data": settings.get("data"),
        "settings": _jsonable(dict(settings)),
        "seeds": list(seeds),
        "per_seed": _jsonable(dict(per_seed)),
        "summary": summary,
        "verdict_keys": list(exp.verdict_keys),
        "table": _jsonable(dict(table)),
        "curves": _jsonable(dict(curves)),
        "verdict": verdict.to_dict() | {"details": _jsonable(verdict.details)},
        "plots": [os.path.basename(p) for p in plots],
        "notes": list(notes),
        "training": _jsonable(dict(training or {})),
        "wall_time": time.perf_counter() - t0,
    }


def not_applicable_result(exp: Any, *, preset: str, data: str | None, reason: str) -> ExperimentResult:
    """The result dict of an experiment that was not run because it does not apply to ``data``: the common
    shape, verdict status :data:`DOES_NOT_APPLY`, ``reason`` in the verdict details and the notes, no
    numbers, no runs."""
    on = "the pattern datasets" if data is None else f"`{data}`"
    return {
        "name": exp.name,
        "claim": exp.claim,
        "title": exp.title,
        "claim_text": exp.claim_text,
        "setup": f"Not run on {on}: the experiment {reason}.",
        "preset": preset,
        "data": data,
        "settings": {},
        "seeds": [],
        "per_seed": {},
        "summary": {},
        "verdict_keys": list(exp.verdict_keys),
        "table": {"headers": [], "rows": []},
        "curves": {},
        "verdict": {"status": DOES_NOT_APPLY, "rule": exp.rule, "details": {"reason": reason}},
        "plots": [],
        "notes": [f"Does not apply to {on}: {reason}."],
        "training": {"runs": 0, "shared_runs": 0, "cached_runs": 0, "train_time": 0.0},
        "wall_time": 0.0,
    }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(obj, (np.integer,)):
        return int(obj)
    return obj
