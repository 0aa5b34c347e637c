"""The trainer: GPU-resident data, graph-captured steps, per-sample ledger, logs, checkpoints, plots.

- :class:`TrainConfig` — every setting of a run, validated, round-tripping to JSON.
- :func:`train` — run a config end to end, returning a :class:`RunResult`.
- :class:`Trainer` — the same run, stepped epoch by epoch (``run_epoch``, ``evaluate``,
  ``save_checkpoint``, epoch-end callbacks).
"""

from lrdecay.trainer.checkpoint import CheckpointError, load_checkpoint
from lrdecay.trainer.config import TrainConfig
from lrdecay.trainer.logs import read_jsonl, write_csv
from lrdecay.trainer.loop import RunResult, Trainer, decays_in, subseed, train

__all__ = [
    "TrainConfig",
    "Trainer",
    "RunResult",
    "train",
    "subseed",
    "decays_in",
    "CheckpointError",
    "load_checkpoint",
    "read_jsonl",
    "write_csv",
]
