"""lrdecay._atomic.atomic_write: the target is replaced only by a complete, verified file."""

import os

import pytest

from lrdecay._atomic import atomic_write


def _leftovers(folder):
    return [n for n in os.listdir(folder) if n.endswith(".tmp")]


def test_writes_and_replaces(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_write(target, "w") as f:
        f.write("one")
    with atomic_write(target, "w") as f:
        f.write("two")
    assert target.read_text() == "two"
    assert _leftovers(target.parent) == []


def test_error_inside_leaves_the_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write(b"half")
            raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"good"
    assert _leftovers(tmp_path) == []


def test_verify_refusal_leaves_the_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"good")
    seen = []

    def verify(tmp):
        seen.append(open(tmp, "rb").read())  # the complete temp file is what gets checked
        raise ValueError("corrupt")

    with pytest.raises(ValueError, match="corrupt"):
        with atomic_write(target, verify=verify) as f:
            f.write(b"bad")
    assert seen == [b"bad"]
    assert target.read_bytes() == b"good"
    assert _leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------- modes, temp files


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_file_mode_follows_the_umask(tmp_path, umask):
    # Regression: every file written through atomic_write was 0600 whatever the umask.
    import stat

    import numpy as np

    from lrdecay import Ledger
    from lrdecay.trainer.checkpoint import save_checkpoint
    from lrdecay.trainer.logs import write_csv

    old = os.umask(umask)
    try:
        with atomic_write(tmp_path / "a.bin") as f:
            f.write(b"x")
        led = Ledger(3)
        led.record_epoch(np.ones(3, bool))
        led.save(tmp_path / "ledger.npz")
        save_checkpoint({"a": 1}, tmp_path / "checkpoint.pt")
        write_csv([{"epoch": 1}], str(tmp_path / "log.csv"))
        with open(tmp_path / "plain", "w") as f:  # what a plain open gives
            f.write("x")
    finally:
        os.umask(old)
    want = 0o666 & ~umask
    for name in ["a.bin", "ledger.npz", "checkpoint.pt", "log.csv", "plain"]:
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == want, name


_WRITER = """
import os, sys, time
from lrdecay._atomic import atomic_write
with atomic_write(sys.argv[1]) as f:
    f.write(b"partial" * 1000)
    f.flush()
    print("writing", flush=True)
    time.sleep(600)
"""


def _start_writer(target):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    return proc


@pytest.mark.skipif(os.name != "posix", reason="stale temp files are found with flock (POSIX)")
def test_temp_file_of_a_killed_save_is_removed_by_the_next_save(tmp_path):
    # Regression: temp files of killed saves (up to 300 MB) were left forever.
    import signal

    from lrdecay._atomic import remove_stale_temp_files

    target = tmp_path / "checkpoint.pt"
    other = tmp_path / "checkpoint.pt.bak"  # a target whose name starts the same: its temp files stay
    alive = _start_writer(target)
    killed = _start_writer(target)
    other_writer = _start_writer(other)
    try:
        assert len(_leftovers(tmp_path)) == 3
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        os.kill(other_writer.pid, signal.SIGKILL)
        other_writer.wait()
        with atomic_write(target) as f:
            f.write(b"good")
        assert target.read_bytes() == b"good"
        left = _leftovers(tmp_path)
        # the live writer's temp file and the other target's are still there; the killed one's is gone
        assert len(left) == 2 and sum(n.startswith(".checkpoint.pt.bak.") for n in left) == 1
        # a sweep of the folder removes the other dead writer's file, never a live one's
        removed = remove_stale_temp_files(tmp_path)
        assert [os.path.basename(p) for p in removed] == [n for n in left if n.startswith(".checkpoint.pt.bak.")]
        assert len(_leftovers(tmp_path)) == 1
    finally:
        alive.kill()
        alive.wait()
    assert remove_stale_temp_files(tmp_path) and _leftovers(tmp_path) == []
    (tmp_path / ".notes.tmp").write_text("a user's file that merely looks like a temp file")
    assert remove_stale_temp_files(tmp_path) == [] and (tmp_path / ".notes.tmp").exists()


def test_replace_false_never_replaces(tmp_path):
    target = tmp_path / "data.npz"
    with atomic_write(target, replace=False) as f:
        f.write(b"first")
    with pytest.raises(FileExistsError, match="already exists"):
        with atomic_write(target, replace=False) as f:
            f.write(b"second")
    assert target.read_bytes() == b"first"
    # another writer creates the target while this one writes: refused at the end, nothing replaced
    late = tmp_path / "late.npz"
    with pytest.raises(FileExistsError, match="meanwhile"):
        with atomic_write(late, replace=False) as f:
            f.write(b"mine")
            late.write_bytes(b"theirs")
    assert late.read_bytes() == b"theirs" and _leftovers(tmp_path) == []
