"""Shared machinery of the experiments: presets, the seeds loop, mean ± std, verdict rules, stage-end
helpers, a run cache (so that ``reproduce`` trains each distinct run once) and plots.

Every experiment module follows the same shape:

- ``NAME``, ``CLAIM`` (id, e.g. ``"C4"``), ``TITLE``, ``CLAIM_TEXT``;
- ``PRESETS = {"tiny": {...}, "quick": {...}, "full": {...}}`` (plain dicts of settings);
- ``RULE``: the verdict rule in words, and ``judge(numbers) -> Verdict`` implementing it on the per-seed
  numbers only (so a crafted set of numbers flips it, which the tests check);
- ``run(preset="quick", *, seeds=None, out_dir=None, device=None, cache=None, overrides=None) -> dict``.

The result dict of every experiment has the keys ``name``, ``claim``, ``title``, ``claim_text``,
``preset``, ``settings``, ``seeds``, ``per_seed`` (metric -> list, one value per seed), ``summary``
(metric -> {mean, std, values}), ``table`` ({headers, rows} of "mean ± std" strings), ``curves``,
``verdict`` ({status, rule, details}), ``plots`` (PNG file names), ``wall_time``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "SUPPORTED",
    "NOT_SUPPORTED",
    "INCONCLUSIVE",
    "PRESET_NAMES",
    "Verdict",
    "stat",
    "fmt",
    "all_seeds",
    "seed_rule",
    "resolve_preset",
    "RunCache",
    "RunOutput",
    "base_config",
    "train_run",
    "stage_ends",
    "at_epoch",
    "sharpness",
    "epochs_to_target",
    "line_plot",
    "finish_result",
    "log",
]

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INCONCLUSIVE = "inconclusive"
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

    def to_dict(self) -> dict:
        """Plain dict (JSON-serializable when ``details`` is)."""
        return {"status": self.status, "rule": self.rule, "details": self.details}


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


# ====================================================================== presets
def resolve_preset(presets: Mapping[str, dict], preset: str, overrides: Mapping[str, Any] | None = None) -> dict:
    """A deep copy of ``presets[preset]`` with ``overrides`` applied; ValueError naming bad keys/presets."""
    if not isinstance(preset, str) or preset not in presets:
        raise ValueError(f"preset must be one of {sorted(presets)}, got {preset!r}")
    settings = copy.deepcopy(dict(presets[preset]))
    for k, v in (overrides or {}).items():
        if k not in settings:
            raise ValueError(f"unknown setting {k!r} for preset {preset!r}; known: {sorted(settings)}")
        settings[k] = v
    return settings


def prepare(
    presets: Mapping[str, dict],
    preset: str,
    seeds: Sequence[int] | int | None,
    overrides: Mapping[str, Any] | None,
    cache: "RunCache | None",
) -> tuple[dict, list[int], "RunCache"]:
    """The start of every experiment's ``run``: resolved settings (with ``settings["seeds"]`` set), the
    seed list, and the run cache to share (a new one when ``cache`` is None)."""
    settings = resolve_preset(presets, preset, overrides)
    seeds = resolve_seeds(settings, seeds)
    settings["seeds"] = seeds
    return settings, seeds, cache if cache is not None else RunCache()


def resolve_seeds(settings: Mapping[str, Any], seeds: Sequence[int] | int | None) -> list[int]:
    """``seeds`` as a list: None → the preset's, an int k → ``range(k)``, a list → itself (each >= 0)."""
    if seeds is None:
        seeds = settings["seeds"]
    if isinstance(seeds, bool):
        raise TypeError(f"seeds must be an int >= 1 or a list of ints >= 0, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be an int >= 1 or a list of ints >= 0, got {seeds}")
        seeds = list(range(seeds))
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of ints >= 0, got {seeds}")
    return seeds


# ====================================================================== training runs
@dataclass
class RunOutput:
    """What the experiments keep of one training run: its per-epoch history, model snapshots at chosen
    epochs (CPU state dicts), the ledger's per-epoch summary, and the wall time."""

    config: Any
    history: list[dict]
    snapshots: dict[int, dict]
    ledger_summary: dict
    wall_time: float
    extra: dict = field(default_factory=dict)


class RunCache:
    """Training runs keyed by their full description, so experiments that share a setting (e.g. the
    lrDecay run of ``memorization``, ``beliefs`` and ``complexity``) train it once per ``reproduce``."""

    def __init__(self) -> None:
        self._runs: dict[str, RunOutput] = {}
        self.hits = 0
        self.misses = 0

    def get_or_run(self, key: Mapping[str, Any], fn: Callable[[], RunOutput]) -> RunOutput:
        """The cached run for ``key``, or ``fn()`` (then cached)."""
        k = json.dumps(key, sort_keys=True, default=str)
        if k in self._runs:
            self.hits += 1
            return self._runs[k]
        self.misses += 1
        out = fn()
        self._runs[k] = out
        return out


def log(msg: str) -> None:
    """Progress line on stderr (the experiments' runs are listed as they finish)."""
    print(msg, file=sys.stderr, flush=True)


def base_config(settings: Mapping[str, Any], *, seed: int, device: str | None = None, **changes: Any):
    """A :class:`TrainConfig` from an experiment's settings (keys named like TrainConfig fields) plus
    ``changes``; no files, no plots, no progress bar (the experiment reports its own progress)."""
    from lrdecay.trainer import TrainConfig

    fields = {f: settings[f] for f in _CONFIG_KEYS if f in settings}
    fields.update(changes)
    fields.update(seed=seed, device=device or settings.get("device", "auto"), plots=False, progress=False)
    return TrainConfig(**fields)


_CONFIG_KEYS = (
    "preset",
    "n_train",
    "n_test",
    "label_noise",
    "probe_groups",
    "model",
    "width",
    "depth",
    "batchnorm",
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "schedule",
    "milestones",
    "gamma",
)


def train_run(
    config,
    *,
    cache: RunCache | None = None,
    snapshot_epochs: Iterable[int] = (),
    callbacks: Sequence[Callable] = (),
    key_extra: Mapping[str, Any] | None = None,
    label: str = "",
    dataset: Any = None,
    test_sets: Mapping[str, Any] | None = None,
) -> RunOutput:
    """Train ``config`` (or fetch it from ``cache``), keeping state dicts at ``snapshot_epochs``.

    Runs with callbacks that change the training (AutoDecay, ReduceLROnPlateau) must pass a
    ``key_extra`` describing them so that they never share a cache entry with a plain run.
    """
    from lrdecay.trainer import Trainer

    snaps = sorted(set(int(e) for e in snapshot_epochs))
    key = {"config": config.identity(), "snapshots": snaps, "extra": dict(key_extra or {})}
    if dataset is not None:
        key["dataset"] = "custom:" + str(id(dataset))

    def run() -> RunOutput:
        snapshots: dict[int, dict] = {}

        def keep(trainer, record):
            if record["epoch"] in snaps:
                snapshots[record["epoch"]] = {
                    k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()
                }

        t0 = time.perf_counter()
        trainer = Trainer(config, dataset=dataset, test_sets=test_sets, callbacks=[keep, *callbacks])
        result = trainer.fit()
        wall = time.perf_counter() - t0
        summary = result.summary()
        summary = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in summary.items()}
        if label:
            last = result.final
            log(
                f"  {label}: {config.epochs} epochs, train acc {last['train_acc']:.3f}"
                + (f", test acc {last['test']['test']['acc']:.3f}" if "test" in last.get("test", {}) else "")
                + f" ({wall:.1f} s)"
            )
        return RunOutput(config, result.history, snapshots, summary, wall)

    if cache is None:
        return run()
    return cache.get_or_run(key, run)


# ====================================================================== curve helpers
def stage_ends(config) -> list[int]:
    """Epochs (1-based, = number of completed epochs) at which each stage ends: the decay epochs and the
    last epoch."""
    return [*config.decay_epochs(), config.epochs]


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
    module: Any,
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
) -> dict:
    """Assemble the experiment's result dict (JSON-serializable) in the common shape."""
    summary = {}
    for k, v in per_seed.items():
        if all(x is None or isinstance(x, (int, float)) for x in v):
            summary[k] = stat(v)
    return {
        "name": module.NAME,
        "claim": module.CLAIM,
        "title": module.TITLE,
        "claim_text": module.CLAIM_TEXT,
        "setup": module.setup_text(settings),
        "preset": preset,
        "settings": _jsonable(dict(settings)),
        "seeds": list(seeds),
        "per_seed": _jsonable(dict(per_seed)),
        "summary": summary,
        "table": _jsonable(dict(table)),
        "curves": _jsonable(dict(curves)),
        "verdict": verdict.to_dict() | {"details": _jsonable(verdict.details)},
        "plots": [os.path.basename(p) for p in plots],
        "notes": list(notes),
        "wall_time": time.perf_counter() - t0,
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


class torch_threads:
    """Context manager: ``torch.set_num_threads(n)`` inside, the previous value restored after
    (``n=None``: unchanged). Tiny models run much faster single-threaded on a busy 2-core machine."""

    def __init__(self, n: int | None) -> None:
        self.n = n
        self.prev: int | None = None

    def __enter__(self):
        if self.n is not None:
            import torch

            self.prev = torch.get_num_threads()
            torch.set_num_threads(int(self.n))
        return self

    def __exit__(self, *exc) -> None:
        if self.prev is not None:
            import torch

            torch.set_num_threads(self.prev)


def plot_dir(out_dir: str | None) -> str | None:
    """Where an experiment writes its PNGs (None: no plots)."""
    if out_dir is None:
        return None
    os.makedirs(out_dir, exist_ok=True)
    return out_dir
