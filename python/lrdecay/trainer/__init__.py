"""The trainer: GPU-resident data, graph-captured steps, per-sample ledger, logs, checkpoints, plots.

- :class:`TrainConfig` — every setting of a run, validated, round-tripping to JSON.
- :func:`train` — run a config end to end, returning a :class:`RunResult`.
- :class:`Trainer` — the same run, stepped epoch by epoch (``run_epoch``, ``evaluate``,
  ``save_checkpoint``, epoch-end callbacks).
- :class:`RunRecord` / :class:`EpochRecord` — a run's outcome as stored (``result.json``) and one epoch's
  record (:mod:`lrdecay.trainer.record`).
"""

from lrdecay.trainer.checkpoint import CheckpointError, load_checkpoint
from lrdecay.trainer.config import TrainConfig
from lrdecay.trainer.logs import read_jsonl, write_csv
from lrdecay.trainer.loop import DivergedWarning, Trainer, diverged_at, subseed, train
from lrdecay.trainer.record import EpochRecord, RunRecord, RunResult, decays_in

__all__ = [
    "TrainConfig",
    "Trainer",
    "RunResult",
    "RunRecord",
    "EpochRecord",
    "train",
    "subseed",
    "decays_in",
    "diverged_at",
    "DivergedWarning",
    "CheckpointError",
    "load_checkpoint",
    "read_jsonl",
    "write_csv",
]
