"""Checkpoint files: atomic, self-verifying, loadable with ``torch.load(weights_only=True)``.

Layout: an 8-byte magic, the SHA-256 of the payload, then the payload (a ``torch.save`` archive). Loading
checks the magic and the hash before unpickling anything, so a truncated or bit-flipped file is reported
as corrupt instead of half-loading. Writing goes to a temp file in the same folder, is read back and
verified, fsynced, then ``os.replace``-d over the target: a failed or corrupt write never replaces a good
checkpoint.

numpy arrays inside the state (the ledger's) are stored as raw bytes + dtype + shape, so the safe
``weights_only`` unpickler accepts the file.
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any

import numpy as np
import torch

from lrdecay._atomic import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_path", "CheckpointError", "CHECKPOINT", "snapshot_path",
           "set_aside", "UNREADABLE"]

MAGIC = b"LRDCKPT1"
_NP_TAG = "__ndarray__"


class CheckpointError(ValueError):
    """A file that is not a valid lrdecay checkpoint (wrong format, truncated, corrupt)."""


def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        return {
            _NP_TAG: torch.frombuffer(bytearray(a.tobytes()), dtype=torch.uint8) if a.nbytes else torch.empty(0, dtype=torch.uint8),
            "dtype": a.dtype.str,
            "shape": list(a.shape),
        }
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_encode(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_encode(v) for v in obj)
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if _NP_TAG in obj and set(obj) == {_NP_TAG, "dtype", "shape"}:
            raw = obj[_NP_TAG].numpy().tobytes()
            return np.frombuffer(raw, dtype=np.dtype(obj["dtype"])).reshape(obj["shape"]).copy()
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_decode(v) for v in obj)
    return obj


def _serialize(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(_encode(state), buf)
    payload = buf.getvalue()
    return MAGIC + hashlib.sha256(payload).digest() + payload


def _parse(blob: bytes, path: str) -> dict:
    if len(blob) < len(MAGIC) + 32 or not blob.startswith(MAGIC):
        raise CheckpointError(f"{path!r} is not an lrdecay checkpoint (bad header)")
    digest, payload = blob[len(MAGIC) : len(MAGIC) + 32], blob[len(MAGIC) + 32 :]
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(f"{path!r} is a corrupt or truncated lrdecay checkpoint (checksum mismatch)")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # the hash matched, so this is a format problem, not corruption
        raise CheckpointError(f"{path!r} could not be read as an lrdecay checkpoint: {exc}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path!r} does not hold a checkpoint dict")
    return _decode(state)


def save_checkpoint(state: dict, path: str | os.PathLike) -> str:
    """Write ``state`` to ``path`` atomically (temp file, verify, fsync, rename). Returns the path."""
    path = os.fspath(path)
    blob = _serialize(state)

    def verify(tmp: str) -> None:  # what reached the disk must load before it replaces anything
        with open(tmp, "rb") as f:
            _parse(f.read(), tmp)

    with atomic_write(path, verify=verify) as f:
        f.write(blob)
    return path


#: The file name of a run's checkpoint in its output folder.
CHECKPOINT = "checkpoint.pt"


def checkpoint_path(path: str | os.PathLike) -> str:
    """The checkpoint file to resume from: ``path`` itself, or ``path/checkpoint.pt`` for a run folder.
    ValueError, saying what is there instead, when there is none."""
    path = os.fspath(path)
    if os.path.isdir(path):
        ckpt = os.path.join(path, CHECKPOINT)
        if os.path.isfile(ckpt):
            return ckpt
        others = sorted(n for n in os.listdir(path) if n.endswith(".pt"))
        hint = f"; other checkpoints there: {', '.join(others)}" if others else ""
        raise ValueError(
            f"resume: the run folder {path!r} holds no {CHECKPOINT} (a run writes it when it ends, every "
            f"checkpoint_every epochs, and when stopped with Ctrl-C){hint}"
        )
    if not os.path.exists(path):
        raise ValueError(f"resume: {path!r} does not exist (give a run folder or a checkpoint file)")
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read and verify a checkpoint (a file, or a run folder's ``checkpoint.pt``); raises
    :class:`CheckpointError` (a ValueError) if it is not valid."""
    path = checkpoint_path(path)
    if not os.path.isfile(path):
        raise ValueError(f"resume: {path!r} is not a file")
    with open(path, "rb") as f:
        blob = f.read()
    return _parse(blob, path)


#: The suffix a checkpoint that could not be read is renamed with (:func:`set_aside`).
UNREADABLE = ".unreadable"


def set_aside(path: str | os.PathLike) -> str:
    """Rename an unreadable checkpoint to ``path + ".unreadable"`` (replacing an older one there) so its run
    can start over without destroying what may still be recovered from it; returns the new path."""
    path = os.fspath(path)
    aside = path + UNREADABLE
    os.replace(path, aside)
    return aside


def snapshot_path(run_dir: str | os.PathLike, epoch: int) -> str:
    """Where a run keeps its model snapshot of ``epoch`` (``config.snapshot_epochs``):
    ``run_dir/snapshots/epoch_NNNN.pt``, a checkpoint file holding ``{"epoch", "model"}``."""
    return os.path.join(os.fspath(run_dir), "snapshots", f"epoch_{int(epoch):04d}.pt")
