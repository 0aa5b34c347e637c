"""A trainer's checkpoint state: what identifies a run (its signature), everything needed to continue it
exactly, and the checks that refuse another run's checkpoint before anything is loaded.

Works on any object with a :class:`~lrdecay.trainer.Trainer`'s run state (config, data, test sets,
model, optimizer, scheduler, host-side decay, ledger, history, snapshots, position, partial epoch
buffers): the sweep's stacked engine writes its members' checkpoints through their trainers, so a stacked
run resumes stacked or alone.
"""

from __future__ import annotations

import json
from typing import Any

import torch

from lrdecay.trainer.config import TrainConfig

__all__ = ["FORMAT", "signature", "state_dict", "load_state"]

FORMAT = 1


def signature(t) -> dict:
    """What a checkpoint must match to be resumed by ``t``: config identity, data and test-set
    fingerprints, model architecture, optimizer class."""
    return {
        "format": FORMAT,
        "identity": t.config.identity(),
        "data": t.data.fingerprint,
        "tests": {k: v.fingerprint for k, v in t.test_data.items()},
        "model": [[k, list(v.shape), str(v.dtype)] for k, v in t.model.state_dict().items()],
        "optimizer": type(t.optimizer).__name__,
    }


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj


def state_dict(t) -> dict:
    """Everything needed to continue ``t``'s run exactly (CPU tensors)."""
    st: dict[str, Any] = {
        "signature": signature(t),
        "config": t.config.to_dict(),
        "epoch": t.epoch,
        "batch": t.batch,
        "step": t.step_count,
        "model": {k: v.detach().cpu() for k, v in t.model.state_dict().items()},
        "optimizer": _to_cpu(t.optimizer.state_dict()),
        "scheduler": None if t.scheduler is None else t.scheduler.state_dict(),
        "host_decay": None if t.host_decay is None else t.host_decay.state_dict(),
        "snapshots": t.snapshots,
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state(t.device) if t.device.type == "cuda" else None,
        "history": json.loads(json.dumps(t.history)),
        "ledger": None if t.ledger is None else t.ledger.state_dict(),
    }
    if t.batch:
        st["partial"] = {"pred": t.pred_buf.cpu(), "loss": t.loss_buf.cpu(), "time": t.epoch_time_done}
    return st


def load_state(t, st: dict, path: str) -> None:
    """Check ``st`` against ``t``'s signature (ValueError naming what differs), then load it into ``t``
    (a :class:`~lrdecay.trainer.checkpoint.CheckpointError` when the file lacks a part of the state)."""
    from lrdecay.trainer.checkpoint import CheckpointError

    sig, mine = st.get("signature"), signature(t)
    if sig is None and set(st) == {"epoch", "model"}:
        raise ValueError(f"resume: {path!r} is a model snapshot (the weights at epoch {st['epoch']}), not a "
                         f"checkpoint to resume: resume from the run's checkpoint.pt")
    if not isinstance(sig, dict) or sig.get("format") != FORMAT:
        raise ValueError(f"resume: {path!r} is not a checkpoint of this lrdecay version")
    try:
        _load_checked(t, st, path, sig, mine)
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise CheckpointError(f"resume: {path!r} is an incomplete or damaged lrdecay checkpoint "
                              f"({type(exc).__name__}: {exc})") from None


def _load_checked(t, st: dict, path: str, sig: dict, mine: dict) -> None:
    # a field added after the checkpoint was written compares as its default
    theirs = {**TrainConfig.default_identity(), **sig["identity"]}
    if theirs != mine["identity"]:
        diff = sorted(k for k in set(theirs) | set(mine["identity"]) if theirs.get(k) != mine["identity"].get(k))
        detail = ", ".join(f"{k}: {theirs.get(k)!r} vs {mine['identity'].get(k)!r}" for k in diff)
        raise ValueError(f"resume: {path!r} was written by another config ({detail})")
    for key, what in (("data", "training data"), ("tests", "test sets"), ("model", "model architecture"),
                      ("optimizer", "optimizer")):
        if sig[key] != mine[key]:
            raise ValueError(f"resume: {path!r} was written with a different {what}")
    t.model.load_state_dict(st["model"])
    t.optimizer.load_state_dict(st["optimizer"])
    if t.scheduler is not None:
        t.scheduler.load_state_dict(st["scheduler"])
    if t.host_decay is not None:
        t.host_decay.load_state_dict(st["host_decay"])
    t.snapshots = dict(st.get("snapshots") or {})
    torch.set_rng_state(st["rng_cpu"])
    if t.device.type == "cuda" and st.get("rng_cuda") is not None:
        torch.cuda.set_rng_state(st["rng_cuda"], t.device)
    t.epoch, t.batch, t.step_count = int(st["epoch"]), int(st["batch"]), int(st["step"])
    t.history = list(st["history"])
    if t.ledger is not None:
        t.ledger.load_state_dict(st["ledger"])
    if t.batch:
        t.pred_buf.copy_(st["partial"]["pred"])
        t.loss_buf.copy_(st["partial"]["loss"])
        t.epoch_time_done = float(st["partial"]["time"])
