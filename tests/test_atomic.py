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
