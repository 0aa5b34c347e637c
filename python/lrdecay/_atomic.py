"""Atomic file writes shared by every module that writes results (ledger files, checkpoints, logs,
reports): write a temp file beside the target, fsync it, optionally verify it, then ``os.replace`` it
over the target, so a crash or a failed check never leaves a half-written or corrupt file in its place."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import IO, Callable, Iterator

__all__ = ["atomic_write"]


@contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", *, verify: Callable[[str], None] | None = None, **open_kwargs
) -> Iterator[IO]:
    """Yield a file object for a temp file beside ``path``; on a clean exit it is flushed, fsynced,
    passed to ``verify(temp_path)`` (which raises to refuse it) and renamed over ``path``. On any error
    the temp file is removed and ``path`` is untouched. Creates the parent folder if needed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if verify is not None:
            verify(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
