"""The paper's experiments: one :class:`~lrdecay.experiments.runner.Experiment` record per claim, one runner.

``EXPERIMENTS`` lists the names in report order (``stages`` C1, ``gd`` C2, ``beliefs`` C3, ``memorization``
C4, ``complexity`` C5, ``transfer`` C6, ``autodecay`` C7); :func:`get` returns a record, :func:`run_all`
runs several on one preset (shared runs trained once, resumable through ``out_dir/runs/``) and
:func:`run` one. Each record's verdict comes from its ``judge`` applied to the per-seed numbers, following
its ``rule``. The ``quick`` and ``full`` settings come from the pre-registered regime search
(:mod:`lrdecay.experiments.regime`, ``docs/regime/``); their seeds were never seen by it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Mapping, Sequence

__all__ = ["EXPERIMENTS", "NAMES", "PRESETS", "PRESET_NOTES", "get", "run", "run_all"]

#: name -> claim id, in report order
NAMES = {
    "stages": "C1",
    "gd": "C2",
    "beliefs": "C3",
    "memorization": "C4",
    "complexity": "C5",
    "transfer": "C6",
    "autodecay": "C7",
}
EXPERIMENTS = tuple(NAMES)

#: The experiment presets: tiny (seconds, tests and CI), quick (the 2-core CPU), full (a GPU).
PRESETS = ("tiny", "quick", "full")


def get(name: str):
    """The :class:`~lrdecay.experiments.runner.Experiment` record called ``name`` (ValueError listing the
    names otherwise)."""
    if not isinstance(name, str) or name not in NAMES:
        raise ValueError(f"experiment must be one of {list(NAMES)}, got {name!r}")
    return import_module(f"lrdecay.experiments.{name}").EXPERIMENT


def run_all(
    names: Sequence[str] = EXPERIMENTS,
    preset: str = "quick",
    *,
    seeds: Sequence[int] | int | None = None,
    out_dir: str | None = None,
    device: str | None = None,
    workers: int = 1,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = True,
) -> dict[str, dict]:
    """Run the experiments ``names`` on ``preset``; see :func:`lrdecay.experiments.runner.run_experiments`."""
    from lrdecay.experiments.runner import run_experiments

    return run_experiments([get(n) for n in names], preset, seeds=seeds, out_dir=out_dir, device=device,
                           workers=workers, overrides=overrides, progress=progress)


def run(name: str, preset: str = "quick", *, overrides: Mapping[str, Any] | None = None, **kwargs) -> dict:
    """Run experiment ``name`` alone; keyword arguments as for :func:`run_all`, ``overrides`` for it."""
    return run_all([name], preset, overrides={name: overrides} if overrides else None, **kwargs)[name]


#: What was tried while choosing each preset (shown in the report). Rules were never changed to a result.
PRESET_NOTES: dict[str, list[str]] = {
    "tiny": ["tiny is a smoke test (4-class toy data, 600 samples, 6 epochs): its verdicts mean nothing."],
    "quick": [],
    "full": [],
}
