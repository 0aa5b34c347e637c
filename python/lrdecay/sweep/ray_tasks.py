"""The Ray side of :class:`lrdecay.sweep.executors.RayExecutor` (imported only when Ray is used).

Each task is one Ray task (``num_cpus`` / ``num_gpus`` from the executor; ``max_retries`` for a worker
that dies, so a killed worker's task runs again and resumes from its checkpoints). Epoch events travel
back through a small actor that the driver polls; a stop request (Ctrl-C in the driver) is a flag on the
same actor that each task's trainer watches, so runs stop at a step boundary with a checkpoint. A second
Ctrl-C cancels the tasks outright.
"""

from __future__ import annotations

import os
import threading
import time
import ray

from lrdecay.sweep.tasks import Task, execute_task
from lrdecay.trainer.record import FAILED, INTERRUPTED, RunRecord

__all__ = ["run_on_ray"]


@ray.remote(num_cpus=0)
class _Hub:
    """Epoch events from the tasks to the driver, and the driver's stop flag to the tasks."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []
        self.stop = False

    def put(self, run_id: str, epoch: int, pid: int) -> None:
        self.events.append((run_id, epoch, pid))

    def drain(self) -> list[tuple[str, int, int]]:
        out, self.events = self.events, []
        return out

    def set_stop(self) -> None:
        self.stop = True

    def stopped(self) -> bool:
        return self.stop


class _RemoteStop:
    """``is_set()`` for a task: the hub's stop flag, polled at most every ``interval`` seconds."""

    def __init__(self, hub, interval: float = 0.5) -> None:
        self.hub, self.interval = hub, interval
        self._last = 0.0
        self._value = False
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if not self._value and now - self._last >= self.interval:
                self._last = now
                try:
                    self._value = bool(ray.get(self.hub.stopped.remote(), timeout=5))
                except Exception:
                    pass
            return self._value


def _run_task(task: Task, hub, threads: int | None) -> list[dict]:
    if threads:
        import torch

        os.environ.setdefault("RAYON_NUM_THREADS", str(threads))
        torch.set_num_threads(threads)
    if task.device is None:
        ids = ray.get_gpu_ids()
        if ids:
            task.device = "cuda:0"  # Ray sets CUDA_VISIBLE_DEVICES to the GPUs it granted

    def on_epoch(run_id: str, epoch: int) -> None:
        hub.put.remote(run_id, epoch, os.getpid())

    return execute_task(task, on_epoch=on_epoch, stop=_RemoteStop(hub))


def run_on_ray(ex, tasks, *, on_epoch, on_result, sigint) -> None:
    """Run ``tasks`` as Ray tasks for executor ``ex`` (a RayExecutor)."""
    started_here = False
    if not ray.is_initialized():
        kwargs = dict(ex.init_kwargs)
        kwargs.setdefault("include_dashboard", False)
        kwargs.setdefault("log_to_driver", False)
        if ex.address is not None:
            kwargs["address"] = ex.address
        elif ex.workers is not None:
            kwargs.setdefault("num_cpus", int(ex.workers * max(1, ex.cpus_per_task)))
        ray.init(**kwargs)
        started_here = True
    hub = _Hub.remote()
    threads = max(1, int(ex.cpus_per_task)) if ex.gpus_per_task == 0 else None
    remote = ray.remote(_run_task).options(
        num_cpus=ex.cpus_per_task, num_gpus=ex.gpus_per_task, max_retries=ex.retries, retry_exceptions=False,
    )
    refs = {remote.remote(t, hub, threads): t for t in tasks}
    ours = {r.id for t in tasks for r in t.runs}
    interrupted = False
    cancelled = threading.Event()

    def cancel_all() -> None:
        cancelled.set()
        for ref in list(refs):
            try:
                ray.cancel(ref, force=True)
            except Exception:
                pass

    def drain() -> None:
        try:
            for run_id, epoch, pid in ray.get(hub.drain.remote(), timeout=10):
                if run_id in ours:
                    on_epoch(run_id, epoch, pid)
        except Exception:
            pass

    try:
        with sigint(lambda: hub.set_stop.remote(), cancel_all) as sig:
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
                drain()
                for ref in done:
                    t = refs[ref]
                    try:
                        results = ray.get(ref)
                    except Exception as exc:
                        if cancelled.is_set():  # a second Ctrl-C cancelled it
                            results = [RunRecord(r.id, INTERRUPTED) for r in t.runs]
                        else:  # retries used up, or the task could not run at all
                            results = [RunRecord(r.id, FAILED, error=f"Ray task failed (retries: {ex.retries}): {exc!r}")
                                       for r in t.runs]
                    on_result(t, results)
                    if any(r.status == INTERRUPTED for r in results):
                        hub.set_stop.remote()
            drain()
            interrupted = sig.count > 0 or bool(ray.get(hub.stopped.remote()))
    finally:
        try:
            ray.kill(hub)
        except Exception:
            pass
        if started_here:
            ray.shutdown()
    if interrupted:
        raise KeyboardInterrupt("sweep interrupted")

