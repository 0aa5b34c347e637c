"""Output folders: one writer at a time, and never a silent overwrite of an earlier run.

The rule, for every command and API that writes a run's results into a folder (``lrdecay train --out``,
:class:`lrdecay.Trainer`'s ``out_dir``, ``lrdecay reproduce --out``):

- a folder that does not exist, or is empty, is created and used;
- a folder that already holds something needs ``resume`` (continue the run that is there: its files are
  kept and rewritten as the run goes on) or ``overwrite`` (delete what is there first);
  ``overwrite`` only deletes what the caller declares as its outputs (file name patterns); a folder that
  holds anything else is refused as a whole, so nothing lrdecay did not write is ever deleted;
- one writer per folder: the writer holds an exclusive lock (``flock``) on the marker file
  ``.lrdecay-run`` inside it for as long as it writes; a second writer, in this process or another,
  gets :class:`OutputDirBusy` naming the holder. The lock goes with the process, so a killed run
  leaves no stale lock; the marker file stays and marks the folder as lrdecay's.

Single files (``lrdecay data --out file.npz``) follow the same rule through
:func:`lrdecay._atomic.atomic_write`: written atomically, an existing file only with ``overwrite``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import socket
import sys
import time
from typing import Iterable

from lrdecay._atomic import remove_stale_temp_files

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["OutputDir", "OutputDirError", "OutputDirBusy", "MARKER"]

#: The marker and lock file of an lrdecay output folder.
MARKER = ".lrdecay-run"


class OutputDirError(ValueError):
    """An output folder that cannot be used as asked (it holds a run, or is not lrdecay's to delete)."""


class OutputDirBusy(OutputDirError):
    """Another writer holds the output folder."""


def _lock(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` without waiting; False if someone else holds it."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True
    import msvcrt  # Windows: lock the first byte

    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


class OutputDir:
    """Claim ``path`` as the output folder of one writer (see the module docstring for the rule).

    Args:
        path: the folder.
        kind: what writes it (``"train"``, ``"reproduce"``, ...), recorded in the marker and named in
            errors.
        resume: the caller continues the run already in the folder.
        overwrite: the folder's current content is deleted first; refused unless every entry in it
            matches ``outputs``.
        outputs: glob patterns of the names this kind of run writes (``"*.png"``, ``"log.jsonl"``, a
            subfolder's name): what ``overwrite`` may delete.

    Raises:
        OutputDirError: the folder holds something and neither ``resume`` nor ``overwrite`` was given;
            ``overwrite`` of a folder holding something else than ``outputs``; ``resume`` together with
            ``overwrite``; ``path`` is a file. A refused claim leaves the folder as it was.
        OutputDirBusy: another writer holds the folder.

    Use as a context manager, or call :meth:`release` when done (the lock is also released when the
    object is garbage-collected or the process ends). A folder this object created and left empty is
    removed on release.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        kind: str,
        resume: bool = False,
        overwrite: bool = False,
        outputs: Iterable[str] = (),
    ) -> None:
        self.path = os.fspath(path)
        self.kind = kind
        self._fd: int | None = None
        if resume and overwrite:
            raise OutputDirError("resume and overwrite exclude each other: continue the run or replace it")
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise OutputDirError(f"{self.path} is a file, not a folder: choose a folder for the output")
        self.created = not os.path.exists(self.path)
        os.makedirs(self.path, exist_ok=True)
        marker = os.path.join(self.path, MARKER)
        while True:
            fd = os.open(marker, os.O_RDWR | os.O_CREAT, 0o666)
            if not _lock(fd):
                holder = _read_holder(fd)
                os.close(fd)
                raise OutputDirBusy(
                    f"{self.path} is being written by another lrdecay process{holder}: one writer per output "
                    f"folder; wait for it to finish or choose another folder"
                )
            # A refused claim removes the marker it created (while holding its lock): if that happened
            # between our open and our lock, we hold a lock on a file no longer in the folder. Retry.
            try:
                if os.stat(marker).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        # Every successful claim writes its holder into the marker: an empty one is ours, just created.
        self._had_marker = os.fstat(fd).st_size > 0
        self._fd = fd
        try:
            content = sorted(n for n in os.listdir(self.path) if n != MARKER)
            if content and not (resume or overwrite):
                shown = ", ".join(content[:5]) + (", ..." if len(content) > 5 else "")
                raise OutputDirError(
                    f"{self.path} already holds a {'run' if self._had_marker else 'folder with files'} "
                    f"({shown}): resume it (--resume) or replace it (--overwrite), or choose another folder"
                )
            if content and overwrite:
                foreign = [n for n in content if not any(fnmatch.fnmatch(n, pat) for pat in outputs)]
                if foreign:
                    raise OutputDirError(
                        f"{self.path} holds files a {kind} run does not write ({', '.join(foreign[:5])}"
                        f"{', ...' if len(foreign) > 5 else ''}): refusing to delete them; "
                        f"choose another folder or empty it yourself"
                    )
                for name in content:
                    p = os.path.join(self.path, name)
                    if os.path.isdir(p) and not os.path.islink(p):
                        shutil.rmtree(p)
                    else:
                        os.unlink(p)
            remove_stale_temp_files(self.path)
            _write_holder(fd, kind)
        except BaseException:
            self._fd = None
            try:  # a refused claim leaves the folder as it was: no marker of ours, no folder of ours
                if not self._had_marker:
                    os.unlink(marker)  # still holding the lock (see the retry above)
                if self.created:
                    os.rmdir(self.path)
            except OSError:
                pass
            finally:
                os.close(fd)
            raise

    # ------------------------------------------------------------------ lifetime

    @property
    def held(self) -> bool:
        """Whether this object still holds the folder."""
        return self._fd is not None

    def release(self) -> None:
        """Give the folder up (idempotent); remove it if this object created it and it stayed empty."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self.created and sorted(os.listdir(self.path)) == [MARKER]:
                os.unlink(os.path.join(self.path, MARKER))
                os.rmdir(self.path)
        except OSError:
            pass
        finally:
            os.close(fd)  # releases the lock

    def __enter__(self) -> "OutputDir":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"OutputDir({self.path!r}, kind={self.kind!r}, held={self.held})"


def _write_holder(fd: int, kind: str) -> None:
    info = {
        "kind": kind,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join(sys.argv),
    }
    data = (json.dumps(info) + "\n").encode()
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        return ""
    if not isinstance(info, dict) or "pid" not in info:
        return ""
    return f" ({info.get('kind', '?')}, pid {info['pid']} on {info.get('host', '?')}, since {info.get('started', '?')})"
