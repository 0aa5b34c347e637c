"""Atomic file writes shared by every module that writes results (ledger files, checkpoints, logs,
reports, datasets): write a temp file beside the target, fsync it, optionally verify it, then rename it
over the target, so a crash or a failed check never leaves a half-written or corrupt file in its place.

The file gets the mode a plain ``open(path, "w")`` would give it (``0o666`` less the umask), not the
``0o600`` of :func:`tempfile.mkstemp`.

A save killed outright (``kill -9``, power loss) cannot remove its temp file, so every temp file is
locked (``flock``) by its writer while it exists: the next save of the same target, or
:func:`remove_stale_temp_files` on the folder, deletes the temp files whose writer is gone (their lock
is free). POSIX only; elsewhere stale temp files are left for the user to delete.
"""

from __future__ import annotations

import os
import re
import secrets
from contextlib import contextmanager
from typing import IO, Callable, Iterator

try:
    import fcntl
except ImportError:  # not POSIX: no flock, so no stale-file cleanup
    fcntl = None  # type: ignore[assignment]

__all__ = ["atomic_write", "remove_stale_temp_files", "TEMP_SUFFIX"]

#: Every temp file is named ``.<target name>.<12 hex digits>.tmp`` in the target's folder.
TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")


def _temp_prefix(base: str) -> str:
    return "." + base + "."


def _open_locked_temp(folder: str, base: str) -> tuple[int, str]:
    """Create ``folder/.base.<random>.tmp`` (mode 0o666 less the umask) and lock it for this writer."""
    while True:
        tmp = os.path.join(folder, f"{_temp_prefix(base)}{secrets.token_hex(6)}{TEMP_SUFFIX}")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        if fcntl is None:
            return fd, tmp
        fcntl.flock(fd, fcntl.LOCK_EX)
        # A cleaner may have taken this file for a dead writer's between the create and the lock
        # (it locks, then unlinks): then it is gone from the folder, so start over with a new name.
        try:
            linked = os.stat(tmp).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            linked = False
        if linked:
            return fd, tmp
        os.close(fd)


def remove_stale_temp_files(folder: str | os.PathLike, target: str | None = None) -> list[str]:
    """Delete the temp files of :func:`atomic_write` in ``folder`` (only those of ``target``, a file
    name, when given) whose writer no longer runs. A temp file still being written is locked by its
    writer and left alone. Returns the paths removed. Does nothing where ``flock`` is unavailable."""
    if fcntl is None:
        return []
    folder = os.fspath(folder)
    prefix = _temp_prefix(target) if target is not None else "."
    removed = []
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    for name in names:
        if not (name.startswith(prefix) and _TEMP_NAME.match(name)):
            continue
        if target is not None and len(name) != len(prefix) + 12 + len(TEMP_SUFFIX):
            continue  # the temp file of another target whose name starts like this one
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # its writer holds the lock: alive
            continue
        try:
            os.unlink(path)  # while holding the lock (see _open_locked_temp)
            removed.append(path)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


@contextmanager
def atomic_write(
    path: str | os.PathLike,
    mode: str = "wb",
    *,
    verify: Callable[[str], None] | None = None,
    replace: bool = True,
    **open_kwargs,
) -> Iterator[IO]:
    """Yield a file object for a temp file beside ``path``; on a clean exit it is flushed, fsynced,
    passed to ``verify(temp_path)`` (which raises to refuse it) and renamed over ``path``. On any error
    the temp file is removed and ``path`` is untouched. Creates the parent folder if needed.

    ``replace=False``: never replace an existing ``path``: ``FileExistsError`` if it exists when the
    write starts or when it ends (another writer got there first); the check at the end is atomic
    (a hard link) where the file system supports it.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    os.makedirs(folder, exist_ok=True)
    if not replace and os.path.lexists(path):
        raise FileExistsError(f"{path} already exists")
    remove_stale_temp_files(folder, base)
    fd, tmp = _open_locked_temp(folder, base)
    # A second descriptor of the same open file keeps the lock after the file object is closed,
    # until the temp file has been renamed away (a cleaner only deletes temp files it can lock).
    lock_fd = os.dup(fd)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if verify is not None:
            verify(tmp)
        if replace:
            os.replace(tmp, path)
        else:
            _rename_no_replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        os.close(lock_fd)


def _rename_no_replace(tmp: str, path: str) -> None:
    """Rename ``tmp`` to ``path`` unless ``path`` exists (``FileExistsError``)."""
    try:
        os.link(tmp, path)  # atomic: fails if path exists
    except FileExistsError:
        raise FileExistsError(f"{path} already exists (written by another process meanwhile)") from None
    except OSError:  # no hard links on this file system: check, then rename (a small race)
        if os.path.lexists(path):
            raise FileExistsError(f"{path} already exists (written by another process meanwhile)") from None
        os.rename(tmp, path)
        return
    os.unlink(tmp)
