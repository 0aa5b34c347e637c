"""The Ray executor on a local Ray (2 CPUs): same table as in-process; a killed Ray worker's task is
retried and resumes from its checkpoints, and the table equals an uninterrupted sweep's."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")

from lrdecay.sweep import run_sweep  # noqa: E402

from support import fused_configs, kill_configs, mid_run_killer, table  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


def test_a_killed_ray_worker_is_retried_and_resumes(tmp_path, local_ray):
    cfgs = kill_configs()
    run_sweep(cfgs, tmp_path / "full", executor="stack", progress=False)
    kill_the_worker, killed = mid_run_killer()
    res = run_sweep(cfgs, tmp_path / "cut", executor="ray", workers=2, progress=False, retries=2, checkpoint_seconds=0,
                    on_event=kill_the_worker)
    assert killed, "no epoch event came from a Ray worker"
    assert res.complete
    resumed = [o for o in res if (o.resumed_from or 0) >= 2]
    assert resumed, "the retried task started over instead of resuming from its checkpoint"
    assert table(tmp_path / "cut" / "table.csv") == table(tmp_path / "full" / "table.csv")
