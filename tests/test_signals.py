"""Signals to a real `lrdecay` process: SIGTERM stops like Ctrl-C (checkpoints, a message, exit status 130),
and no process of a sweep outlives its driver, whatever signal the driver gets (SIGKILL included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from lrdecay.cli import EXIT_INTERRUPTED

pytestmark = pytest.mark.slow  # each starts a Python (and a worker pool) that imports torch

SPEC = """
name = "signals"
seeds = 4
[base]
preset = "toy"
n_train = 300
n_test = 50
width = 8
depth = 2
epochs = 100000
milestones = [50000]
batch_size = 50
device = "cpu"
"""


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (read from /proc)."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] != "Z":  # a zombie is dead, only not reaped yet
                parents[int(name)] = int(fields[1])
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for child, parent in parents.items():
            if parent == p and child not in out:
                out.add(child)
                todo.append(child)
    return out


def _alive(pids) -> set[int]:
    out = set()
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    out.add(p)
        except OSError:
            pass
    return out


def _lrdecay(args, tmp_path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("LRDECAY_TEST_WORKER_EXIT", None)
    return subprocess.Popen([sys.executable, "-m", "lrdecay.cli", *args], env=env, start_new_session=True,
                            stdout=open(tmp_path / "stdout", "w"), stderr=open(tmp_path / "stderr", "w"))


def _wait_for_training(proc, runs_dir, n_runs: int, timeout: float = 300) -> None:
    """Until ``n_runs`` runs have logged an epoch (every worker is training)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the command ended before it was signalled"
        logged = 0
        if os.path.isdir(runs_dir):
            for rid in os.listdir(runs_dir):
                try:
                    with open(os.path.join(runs_dir, rid, "log.jsonl")) as f:
                        logged += bool(f.readline())
                except OSError:
                    pass
        if logged >= n_runs:
            return
        time.sleep(0.1)
    raise AssertionError("the runs did not start training")


def _wait_gone(pids, timeout: float = 60) -> set[int]:
    deadline = time.time() + timeout
    while _alive(pids) and time.time() < deadline:
        time.sleep(0.1)
    return _alive(pids)


def _kill_group(proc) -> None:
    """Kill whatever is left of the process group ``proc`` leads (the test's cleanup, whatever it asserted)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _sweep(tmp_path) -> subprocess.Popen:
    (tmp_path / "s.toml").write_text(SPEC)
    proc = _lrdecay(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sw"), "--executor", "process",
                     "--workers", "2", "--no-stack"], tmp_path)
    _wait_for_training(proc, tmp_path / "sw" / "runs", n_runs=2)
    return proc


def test_workers_die_with_a_sigkilled_driver(tmp_path):
    # Both workers (and the resource tracker) lived on, kept training and held the run folders.
    proc = _sweep(tmp_path)
    try:
        family = _children(proc.pid)
        assert len(family) >= 2, "no worker processes found"
        os.kill(proc.pid, signal.SIGKILL)  # the driver alone
        proc.wait()
        assert _wait_gone(family) == set(), "processes outlived the driver"
    finally:
        _kill_group(proc)


def test_sigterm_stops_a_sweep_like_ctrl_c(tmp_path):
    # SIGTERM wrote no checkpoint and no message, and the workers lived on.
    from lrdecay.sweep import load_sweep

    proc = _sweep(tmp_path)
    try:
        family = _children(proc.pid)
        os.kill(proc.pid, signal.SIGTERM)  # the driver alone
        rc = proc.wait(timeout=300)
        assert rc == EXIT_INTERRUPTED, (tmp_path / "stderr").read_text()
        assert "interrupted" in (tmp_path / "stderr").read_text()
        assert _wait_gone(family) == set(), "processes outlived the driver"
    finally:
        _kill_group(proc)
    res = load_sweep(tmp_path / "sw")
    stopped = [o for o in res if o.status == "partial"]
    assert len(stopped) >= 2 and not res.failed  # each running run checkpointed where it stopped
    for o in stopped:
        assert os.path.exists(os.path.join(o.out_dir, "checkpoint.pt"))


def test_sigterm_stops_train_like_ctrl_c(tmp_path):
    out = tmp_path / "run"
    proc = _lrdecay(["train", "--preset", "toy", "--n-train", "300", "--n-test", "50", "--width", "8", "--depth", "2",
                     "--epochs", "100000", "--milestones", "50000", "--device", "cpu", "--out", str(out)], tmp_path)
    try:
        deadline = time.time() + 300
        while not (out / "log.jsonl").exists() or not (out / "log.jsonl").read_text():
            assert proc.poll() is None and time.time() < deadline, (tmp_path / "stderr").read_text()
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=300) == EXIT_INTERRUPTED
    finally:
        _kill_group(proc)
    assert "interrupted" in (tmp_path / "stderr").read_text() and (out / "checkpoint.pt").exists()
