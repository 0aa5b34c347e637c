"""What a run produced, in one place: the epoch record, the in-memory result of a run, and its JSON record.

- :class:`EpochRecord`: one epoch's numbers, as the trainer logs them (``log.jsonl`` lines, ``history``);
- :class:`RunResult`: what :func:`~lrdecay.trainer.train` returns (the model and ledger included);
- :class:`RunRecord`: a run's outcome as a sweep stores it (``runs/<id>/result.json``) and its executors pass
  it around: status, history, ledger summary, timings, traceback. ``RunRecord.from_json`` reads every
  ``result.json`` written so far (keys added later take their defaults).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, TypedDict

__all__ = ["EpochRecord", "EvalRecord", "RunResult", "RunRecord", "decays_in", "diverged_at", "DONE", "FAILED", "INTERRUPTED",
           "STATUSES"]

#: A run that trained all its epochs.
DONE = "done"
#: A run whose last attempt raised (``error`` holds the traceback); it may have left a checkpoint to resume.
FAILED = "failed"
#: A run stopped part-way on request (Ctrl-C, a stop signal): its checkpoint resumes it exactly.
INTERRUPTED = "interrupted"
STATUSES = (DONE, FAILED, INTERRUPTED)


class EvalRecord(TypedDict, total=False):
    """A model evaluated on one data set: accuracy and loss, overall and per group (and, on the training
    set, the memorization measures)."""

    acc: float
    loss: float
    acc_group: dict[str, float]
    acc_clean: float
    memorized: float
    predicted_clean: float


class EpochRecord(TypedDict, total=False):
    """One epoch of a run as the trainer logs it. Always: ``epoch`` (1-based), ``step`` (steps so far),
    ``lr`` (the LR the epoch used), ``presented``, ``train_loss``, ``train_acc``, ``time`` (seconds this
    epoch), ``elapsed`` (seconds so far). As the data allows: per-group and clean-label accuracies and the
    memorization measures of the epoch's own predictions. When evaluated: ``test`` (``{name:
    EvalRecord}``) and ``train_eval``. With a validation split (``val_fraction``), every epoch: ``val``
    (its EvalRecord, observed labels) and ``val_error`` (1 − its accuracy). Epoch-end callbacks may add
    keys of their own."""

    epoch: int
    step: int
    lr: float
    presented: int
    train_loss: float
    train_acc: float
    train_acc_group: dict[str, float]
    train_acc_clean: float
    memorized: float
    predicted_clean: float
    test: dict[str, EvalRecord]
    train_eval: EvalRecord
    val: EvalRecord
    val_error: float
    time: float
    elapsed: float


def decays_in(history: list[EpochRecord]) -> list[int]:
    """The epochs after which the LR dropped, read from a run's records (their ``lr``: the LR each epoch
    used): stage ends, for any schedule, including the host-side ones decided during the run."""
    return [a["epoch"] for a, b in zip(history, history[1:]) if b["lr"] < a["lr"]]


def diverged_at(history: list[EpochRecord]) -> int | None:
    """The first epoch whose training loss is not finite (NaN, inf, or null as JSON stores NaN), or None:
    where a run diverged."""
    for r in history:
        loss = r.get("train_loss")
        if loss is None or not math.isfinite(loss):
            return int(r["epoch"])
    return None


@dataclass
class RunResult:
    """What a run produced.

    Attributes:
        config: the run's :class:`~lrdecay.trainer.TrainConfig`.
        history: one record per completed epoch (the JSONL lines, as dicts).
        model: the trained model (on the run's device).
        ledger: the :class:`lrdecay.Ledger` with per-sample history, or None (``ledger=False``).
        out_dir: where logs, plots and checkpoints went (None: nothing written).
        files: name → path of each file written (``config``, ``log``, ``csv``, ``checkpoint``, ``ledger``,
            ``loss_png``, ``accuracy_png``).
        wall_time: seconds spent in this call (training, evaluation, logging).
        snapshots: epoch → CPU state dict of the model at the end of that epoch (``config.snapshot_epochs``).
    """

    config: Any
    history: list[EpochRecord]
    model: Any
    ledger: Any
    out_dir: str | None
    files: dict[str, str] = field(default_factory=dict)
    wall_time: float = 0.0
    snapshots: dict[int, dict] = field(default_factory=dict)

    @property
    def final(self) -> EpochRecord:
        """The last epoch's record."""
        return self.history[-1] if self.history else {}

    def summary(self) -> dict:
        """The ledger's per-epoch summary (dict of numpy arrays), or {} without a ledger."""
        return {} if self.ledger is None else self.ledger.summary()


def _summary_lists(ledger: Any) -> dict | None:
    """A ledger's per-epoch summary as JSON lists (None without a ledger)."""
    if ledger is None:
        return None
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in ledger.summary().items()}


# result.json keys of each RunRecord field and the types a stored value may have (None allowed for all but
# id, status and the lists)
_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str,), "status": (str,), "history": (list,), "ledger_summary": (dict,), "wall_time": (int, float),
    "resumed_from": (int,), "snapshots": (list,), "error": (str,), "pid": (int,), "stacked": (int,),
    "written": (str,),
}


@dataclass
class RunRecord:
    """One run's outcome: what ``result.json`` holds and what a sweep's executors return per run.

    Attributes:
        id: the run id (:func:`lrdecay.sweep.run_id`).
        status: :data:`DONE`, :data:`FAILED` or :data:`INTERRUPTED` (the last is never stored).
        history: the epoch records (a failed run's: those it logged before it raised).
        ledger_summary: the ledger's per-epoch summary as lists (None without a ledger, or not finished).
        wall_time: seconds the attempt took (None: not recorded).
        resumed_from: the completed epochs the attempt started from (0: fresh; None: not recorded).
        snapshots: epochs whose model snapshot the run saved.
        error: the traceback of a failed attempt.
        pid: the process that trained it.
        stacked: the members of the stacked model it trained in (None: trained alone).
        written: when ``result.json`` was written (ISO time, set by the store).
    """

    id: str
    status: str
    history: list[EpochRecord] = field(default_factory=list)
    ledger_summary: dict[str, Any] | None = None
    wall_time: float | None = None
    resumed_from: int | None = None
    snapshots: list[int] = field(default_factory=list)
    error: str | None = None
    pid: int | None = None
    stacked: int | None = None
    written: str | None = None

    # ------------------------------------------------------------------ constructors
    @classmethod
    def finished(cls, run_id: str, trained: Any, *, wall_time: float, resumed_from: int,
                 stacked: int | None = None) -> "RunRecord":
        """The record of a finished run; ``trained`` is its finished Trainer or :class:`RunResult` (both
        hold ``history``, ``ledger`` and ``snapshots``)."""
        return cls(id=run_id, status=DONE, history=list(trained.history), ledger_summary=_summary_lists(trained.ledger),
                   wall_time=wall_time, resumed_from=resumed_from, snapshots=sorted(int(e) for e in trained.snapshots),
                   pid=os.getpid(), stacked=stacked)

    @classmethod
    def failed(cls, run_id: str, history: list[EpochRecord], error: str, *, wall_time: float | None = None,
               pid: int | None = None) -> "RunRecord":
        """The record of a run that raised (``error``: its traceback); ``pid`` defaults to this process."""
        return cls(id=run_id, status=FAILED, history=list(history), error=error, wall_time=wall_time,
                   pid=os.getpid() if pid is None else pid)

    @classmethod
    def interrupted(cls, run_id: str, *, resumed_from: int | None = None) -> "RunRecord":
        """The record of a run stopped part-way on request (its checkpoint resumes it)."""
        return cls(id=run_id, status=INTERRUPTED, resumed_from=resumed_from, pid=os.getpid())

    # ------------------------------------------------------------------ views
    @property
    def final(self) -> EpochRecord:
        """The last epoch's record ({} if none)."""
        return self.history[-1] if self.history else {}

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        """The ``result.json`` object: every field, ``stacked`` and ``written`` only when set."""
        out = {k: getattr(self, k) for k in _TYPES}
        for k in ("stacked", "written"):
            if out[k] is None:
                del out[k]
        out["history"] = [dict(r) for r in self.history]
        out["snapshots"] = list(self.snapshots)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> "RunRecord":
        """Read a ``result.json`` object (any version: missing keys take their defaults, unknown keys are
        ignored). ValueError naming the key when it is not an object with a string ``id`` and ``status``
        or a value has the wrong type."""
        if not isinstance(obj, Mapping):
            raise ValueError(f"a run record must be a JSON object, got {type(obj).__name__}")
        kw: dict[str, Any] = {}
        for key, types in _TYPES.items():
            v = obj.get(key)
            if v is None:
                if key in ("id", "status"):
                    raise ValueError(f"a run record needs {key!r} (a string)")
                continue
            if isinstance(v, bool) or not isinstance(v, types):
                raise ValueError(f"run record key {key!r} must be {' or '.join(t.__name__ for t in types)}, "
                                 f"got {type(v).__name__}")
            kw[key] = v
        if not all(isinstance(r, Mapping) for r in kw.get("history", [])):
            raise ValueError("run record key 'history' must be a list of epoch records (objects)")
        if not all(isinstance(e, int) and not isinstance(e, bool) for e in kw.get("snapshots", [])):
            raise ValueError("run record key 'snapshots' must be a list of epochs (integers)")
        if "wall_time" in kw:
            kw["wall_time"] = float(kw["wall_time"])
        return cls(**kw)
