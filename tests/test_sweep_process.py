"""The process executor, and resuming after a killed process: the table equals an uninterrupted sweep's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from lrdecay.sweep import load_sweep, run_sweep

from support import fused_configs, kill_configs, killed_sweep_configs, table, tiny, worker_exits_after_checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]  # worker processes: seconds each


def test_process_pool_table_equals_in_process_table(tmp_path):
    # workers run one torch thread each, like this test process: the same bits
    cfgs = fused_configs() + [tiny(seed=9, model="resnet20", width=2, epochs=2)]
    run_sweep(cfgs, tmp_path / "a", executor="stack", progress=False)
    res = run_sweep(cfgs, tmp_path / "b", executor="process", workers=2, progress=False)
    assert res.complete and res.executor == "process"
    assert table(tmp_path / "a" / "table.csv") == table(tmp_path / "b" / "table.csv")


@pytest.mark.slow  # a worker pool started twice (each worker imports torch)
def test_a_killed_worker_is_replaced_and_its_task_resumes(tmp_path, monkeypatch):
    from lrdecay.sweep.tasks import TEST_WORKER_EXIT_MARK

    cfgs = kill_configs()
    run_sweep(cfgs, tmp_path / "full", executor="stack", progress=False)
    worker_exits_after_checkpoint(monkeypatch, epoch=2)
    res = run_sweep(cfgs, tmp_path / "cut", executor="process", workers=2, progress=False, checkpoint_seconds=0)
    assert (tmp_path / "cut" / TEST_WORKER_EXIT_MARK).exists(), "no worker exited"
    assert res.complete
    assert any(o.resumed_from == 2 for o in res)
    assert table(tmp_path / "cut" / "table.csv") == table(tmp_path / "full" / "table.csv")


SCRIPT = r"""
import sys, torch
sys.path.insert(0, {tests!r})
from support import killed_sweep_configs
from lrdecay.sweep import run_sweep

if __name__ == "__main__":
    torch.set_num_threads(1)
    run_sweep(killed_sweep_configs(), sys.argv[1], executor=sys.argv[2], workers=2, progress=False,
              checkpoint_seconds=0)
"""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference table, trained in this process (one torch thread, like the subprocess)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("full")
        run_sweep(killed_sweep_configs(), out, executor="stack", progress=False)
    finally:
        torch.set_num_threads(threads)
    return table(out / "table.csv")


@pytest.mark.parametrize("executor", ["stack", "process"])
def test_sweep_killed_with_sigkill_then_rerun_equals_uninterrupted(tmp_path, executor, uninterrupted):
    script = tmp_path / "sweep.py"
    script.write_text(SCRIPT.format(tests=os.path.dirname(__file__)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # the same sweep, killed (SIGKILL: no chance to clean up) once some checkpoints exist
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "cut"), executor], env=env,
                            start_new_session=True)
    deadline = time.time() + 300
    runs = tmp_path / "cut" / "runs"
    try:
        while time.time() < deadline:
            logged = 0
            if runs.exists():
                for rid in os.listdir(runs):
                    try:
                        with open(runs / rid / "log.jsonl") as f:
                            logged += sum(1 for _ in f)
                    except OSError:
                        pass
            if logged >= 6 or proc.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers
        proc.wait()
    partial = load_sweep(tmp_path / "cut")
    assert not partial.complete, "the sweep finished before it could be killed: make it longer"
    subprocess.run([sys.executable, str(script), str(tmp_path / "cut"), executor], check=True, env=env,
                   timeout=600)
    res = load_sweep(tmp_path / "cut")
    assert res.complete
    assert any((o.resumed_from or 0) > 0 for o in res)
    assert table(tmp_path / "cut" / "table.csv") == uninterrupted
