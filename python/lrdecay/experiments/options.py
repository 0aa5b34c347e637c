"""``RunOptions``: how one call runs the paper's experiments, as one value passed from the command line to
the runner (instead of ten arguments threaded through every function on the way)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

__all__ = ["RunOptions"]


@dataclass(frozen=True)
class RunOptions:
    """How a call runs experiments (every field has the default a plain call gets).

    What runs:
        preset: ``"tiny"``, ``"quick"`` or ``"full"`` (:data:`lrdecay.experiments.PRESETS`).
        seeds: a count (seeds 0..n-1), a list of seeds, or None: each preset's own.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, or None: each preset's own.
        data: None (the synthetic pattern datasets) or real images by name (``cifar10``, ``cifar100``,
            ``digits``, ``folder``, ...); data_dir: the folder holding them.
        overrides: ``{experiment name: {setting: value}}`` applied over its preset.
    How it runs:
        out_dir: the report folder (finished runs kept in ``out_dir/runs/``); None: a temporary folder.
        workers, executor: as for :func:`lrdecay.sweep.run_sweep`.
        progress: progress lines while training.
    """

    preset: str = "quick"
    seeds: Sequence[int] | int | None = None
    device: str | None = None
    data: str | None = None
    data_dir: str | None = None
    overrides: Mapping[str, Mapping[str, Any]] | None = None
    out_dir: str | None = None
    workers: int | None = 1
    executor: str = "auto"
    progress: bool = True

    @classmethod
    def of(cls, options: "RunOptions | None" = None, **changes: Any) -> "RunOptions":
        """``options`` (None: the defaults) with ``changes`` applied (``preset=None`` changes nothing: a call
        that names no preset keeps the options'); TypeError naming unknown options."""
        if options is not None and not isinstance(options, cls):
            raise TypeError(f"options must be a RunOptions, got {type(options).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise TypeError(f"unknown run option(s) {unknown}; accepted: {names}")
        if changes.get("preset", "") is None:
            del changes["preset"]
        return dataclasses.replace(options if options is not None else cls(), **changes)

    def replace(self, **changes: Any) -> "RunOptions":
        """A copy with some options changed."""
        return RunOptions.of(self, **changes)
