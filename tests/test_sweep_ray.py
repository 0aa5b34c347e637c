"""The Ray executor on a local Ray (2 CPUs): same table as in-process; a killed Ray worker's task is
retried and resumes from its checkpoints, and the table equals an uninterrupted sweep's."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")

from lrdecay.sweep import run_sweep  # noqa: E402

from support import fused_configs, kill_configs, table, worker_exits_after_checkpoint  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]  # a Ray cluster: seconds to start


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray with 2 CPUs for the module (starting Ray costs seconds)."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


def test_ray_table_equals_in_process_table(tmp_path, local_ray):
    cfgs = fused_configs()
    run_sweep(cfgs, tmp_path / "a", executor="stack", progress=False)
    res = run_sweep(cfgs, tmp_path / "b", executor="ray", workers=2, progress=False)
    assert res.complete and res.executor == "ray"
    assert table(tmp_path / "a" / "table.csv") == table(tmp_path / "b" / "table.csv")


@pytest.mark.slow  # Ray starts and retries a worker (each imports torch)
def test_a_killed_ray_worker_is_retried_and_resumes(tmp_path, local_ray, monkeypatch):
    from lrdecay.sweep.tasks import TEST_WORKER_EXIT_MARK

    cfgs = kill_configs()
    run_sweep(cfgs, tmp_path / "full", executor="stack", progress=False)
    worker_exits_after_checkpoint(monkeypatch, epoch=2)
    res = run_sweep(cfgs, tmp_path / "cut", executor="ray", workers=2, progress=False, retries=2, checkpoint_seconds=0)
    assert (tmp_path / "cut" / TEST_WORKER_EXIT_MARK).exists(), "no Ray worker exited"
    assert res.complete
    resumed = [o for o in res if o.resumed_from == 2]
    assert resumed, "the retried task started over instead of resuming from its checkpoint"
    assert table(tmp_path / "cut" / "table.csv") == table(tmp_path / "full" / "table.csv")
