"""Where tasks run: this process (``stack``), a local process pool (``process``), a Ray cluster (``ray``).

Every executor calls :func:`lrdecay.sweep.tasks.execute_task` on each task and reports back through two
hooks that run in the driver: ``on_epoch(run_id, epoch)`` after each epoch of any run (the progress bar)
and ``on_result(task, results)`` when a task ends. A stop request (the driver's first Ctrl-C) reaches
every running trainer at its next step boundary; each writes a checkpoint and its task ends as
``interrupted``; no new task starts. A second Ctrl-C ends the workers at once (the last checkpoints
still resume).

- ``process``: ``workers`` spawned processes, each with one torch thread (and one Rust thread) on the
  CPU, or pinned to one GPU each (``cuda:i``) on a multi-GPU machine. A worker that dies (killed, out
  of memory) breaks the pool: it is rebuilt and the unfinished tasks run again, resuming from their
  checkpoints, up to ``retries`` times per task.
- ``ray``: each task is a Ray task asking for ``cpus_per_task`` CPUs and ``gpus_per_task`` (whole or
  fractional) GPUs, retried by Ray up to ``retries`` times when its worker dies, resuming from its
  checkpoint. ``address=None`` starts a local Ray; otherwise it joins that cluster. The sweep folder must
  be visible at the same path on every node (a shared filesystem) for resumes across nodes; results
  also travel back through Ray, so the table is complete either way.
"""

from __future__ import annotations

import atexit
import os
import queue
import signal
import threading
import time
import traceback
from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

from lrdecay.sweep.tasks import Task, execute_task
from lrdecay.trainer.record import FAILED, INTERRUPTED, RunRecord

__all__ = ["Executor", "InProcessExecutor", "ProcessExecutor", "RayExecutor", "make_executor", "EXECUTORS"]

EXECUTORS = ("auto", "stack", "process", "ray")

OnEpoch = Callable[..., None]  # on_epoch(run_id, epoch, pid=None)
OnResult = Callable[[Task, list], None]


class Executor(ABC):
    """Runs tasks and reports epochs and results to the driver."""

    name = "?"
    parallel = 1

    @abstractmethod
    def run(self, tasks: Sequence[Task], *, on_epoch: OnEpoch, on_result: OnResult) -> None:
        """Run every task (largest first); raise KeyboardInterrupt after a Ctrl-C, once all running
        tasks have stopped and reported."""


class _SigintOnce:
    """In the main thread: the first SIGINT calls ``first()``, the second ``second()``; restored after."""

    def __init__(self, first: Callable[[], None], second: Callable[[], None]) -> None:
        self.first, self.second = first, second
        self.count = 0
        self._prev = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._prev = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.count += 1
        (self.first if self.count == 1 else self.second)()

    def __exit__(self, *exc) -> None:
        if self._prev is not None:
            signal.signal(signal.SIGINT, self._prev)


# ============================================================================ in this process
class InProcessExecutor(Executor):
    """Tasks one after another in this process (stacked groups train as one model)."""

    name = "stack"

    def __init__(self, device: str | None = None) -> None:
        self.device = device

    def run(self, tasks, *, on_epoch, on_result) -> None:
        for task in tasks:
            if self.device is not None:
                task.device = self.device
            # the trainers catch Ctrl-C themselves (stop at a step boundary, checkpoint, return interrupted)
            results = execute_task(task, on_epoch=on_epoch)
            on_result(task, results)
            if any(r.status == INTERRUPTED for r in results):
                raise KeyboardInterrupt("sweep interrupted")


# ============================================================================ local process pool
_W: dict[str, Any] = {}  # per-worker-process globals set by the initializer


def _exit_with_parent(parent: int, interval: float = 0.25) -> None:
    """Watch, in a daemon thread, that ``parent`` is still this process's parent; once it is not (the
    driver died, even by SIGKILL, and this process was handed to init), end this process at once. A
    worker never outlives its driver: it would keep training and hold its runs' folders."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="lrdecay-parent-watch", daemon=True).start()


def _worker_init(events, stop, threads: int | None, devices, parent: int) -> None:
    """Per-worker setup: dying with the driver, threads, GPU, and the imports every task needs (done once
    per worker)."""
    _exit_with_parent(parent)
    # Ctrl-C reaches the driver, which asks the workers to stop through `stop`; a terminal's Ctrl-C that
    # also reaches the workers' process group is left to the driver too.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if threads is not None:
        os.environ["RAYON_NUM_THREADS"] = str(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:
            pass
    device = None
    if devices is not None:
        try:
            device = devices.get_nowait()
        except queue.Empty:
            device = None
        if device is not None:
            import torch

            torch.cuda.set_device(torch.device(device))
    _W.update(events=events, stop=stop, device=device)
    import lrdecay.trainer  # noqa: F401


def _worker_run(task: Task) -> list[dict]:
    events, stop = _W["events"], _W["stop"]
    if _W.get("device") is not None:
        task.device = _W["device"]

    def on_epoch(run_id: str, epoch: int) -> None:
        events.put((run_id, epoch, os.getpid()))

    return execute_task(task, on_epoch=on_epoch, stop=stop)


class _Pool:
    """A spawned worker pool with its event queue and stop flag, kept for later sweeps of this process
    (workers start once: importing torch costs seconds, a short sweep's whole budget)."""

    def __init__(self, n: int, threads: int | None, gpus: Sequence[str] | None) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("spawn")
        self.events = ctx.Queue()
        self.stop = ctx.Event()
        devices = None
        if gpus:
            devices = ctx.Queue()
            for g in gpus:
                devices.put(g)
        self.executor = ProcessPoolExecutor(n, mp_context=ctx, initializer=_worker_init,
                                            initargs=(self.events, self.stop, threads, devices, os.getpid()))
        self.broken = False

    def kill(self) -> None:
        self.broken = True
        for p in list((getattr(self.executor, "_processes", None) or {}).values()):
            try:
                p.kill()
            except Exception:
                pass

    def shutdown(self) -> None:
        self.executor.shutdown(wait=not self.broken, cancel_futures=True)


_POOLS: dict[tuple, _Pool] = {}


def _pool(n: int, threads: int | None, gpus: Sequence[str] | None) -> _Pool:
    key = (n, threads, tuple(gpus or ()))
    pool = _POOLS.get(key)
    if pool is None or pool.broken:
        if pool is not None:
            pool.shutdown()
        pool = _POOLS[key] = _Pool(n, threads, gpus)
    return pool


def shutdown_pools() -> None:
    """Stop the cached worker pools (also done at interpreter exit)."""
    while _POOLS:
        _key, pool = _POOLS.popitem()
        pool.shutdown()


atexit.register(shutdown_pools)


class ProcessExecutor(Executor):
    """A pool of ``workers`` spawned processes (see the module docstring)."""

    name = "process"

    def __init__(self, workers: int, *, threads: int | None = 1, gpus: Sequence[str] | None = None,
                 retries: int = 2) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an int >= 1, got {workers!r}")
        self.parallel = workers
        self.threads = threads
        self.gpus = list(gpus) if gpus else None
        self.retries = retries

    def run(self, tasks, *, on_epoch, on_result) -> None:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        pending = list(tasks)
        attempts = {t.index: 0 for t in tasks}
        ours = {r.id for t in tasks for r in t.runs}
        interrupted = False
        pool = _pool(self.parallel, self.threads, self.gpus)
        pool.stop.clear()
        pump_done = threading.Event()

        def pump(events) -> None:  # epoch events from the workers -> the driver's hook
            while not pump_done.is_set():
                try:
                    run_id, epoch, pid = events.get(timeout=0.1)
                except queue.Empty:
                    continue
                except (EOFError, OSError, ValueError):
                    return
                if run_id in ours:  # a stopped earlier sweep's late events are dropped
                    on_epoch(run_id, epoch, pid)

        pump_thread = threading.Thread(target=pump, args=(pool.events,), daemon=True)
        pump_thread.start()
        stop_flag = threading.Event()

        def first_sigint() -> None:
            stop_flag.set()
            pool.stop.set()

        try:
            with _SigintOnce(first_sigint, lambda: pool.kill()) as sig:
                while pending and not stop_flag.is_set():
                    futures = {}
                    for t in pending:
                        attempts[t.index] += 1
                        futures[pool.executor.submit(_worker_run, t)] = t
                    broken = False
                    not_done = set(futures)
                    while not_done:
                        done, not_done = wait(not_done, timeout=0.5, return_when=FIRST_COMPLETED)
                        for f in done:
                            t = futures[f]
                            try:
                                results = f.result()
                            except BrokenProcessPool:
                                broken = True
                                continue
                            except KeyboardInterrupt:
                                results = [RunRecord(r.id, INTERRUPTED) for r in t.runs]
                            except Exception:  # the task could not even be sent or unpickled
                                tb = traceback.format_exc()
                                results = [RunRecord(r.id, FAILED, error=tb) for r in t.runs]
                            pending.remove(t)
                            on_result(t, results)
                            if any(r.status == INTERRUPTED for r in results):
                                first_sigint()  # one interrupted worker (its terminal's Ctrl-C) stops all
                    if broken:
                        # a worker died (killed, out of memory): a fresh pool reruns what is left, each
                        # task resuming from its checkpoints
                        pool.broken = True
                        pump_done.set()
                        pump_thread.join(timeout=5)
                        over = [t for t in pending if attempts[t.index] > self.retries]
                        for t in over:
                            pending.remove(t)
                            on_result(t, [_lost(r.id, attempts[t.index]) for r in t.runs])
                        pool = _pool(self.parallel, self.threads, self.gpus)
                        pool.stop.clear()
                        pump_done.clear()
                        pump_thread = threading.Thread(target=pump, args=(pool.events,), daemon=True)
                        pump_thread.start()
                interrupted = stop_flag.is_set() or sig.count > 0
        finally:
            pump_done.set()
            pump_thread.join(timeout=5)
            if pool.broken:  # killed by a second Ctrl-C: not for reuse
                _POOLS.pop((self.parallel, self.threads, tuple(self.gpus or ())), None)
                pool.shutdown()
        if interrupted:
            raise KeyboardInterrupt("sweep interrupted")

def _lost(run_id: str, attempts: int) -> RunRecord:
    return RunRecord(run_id, FAILED,
                     error=f"the worker running this run died {attempts} time(s) (killed or out of memory); "
                           f"its checkpoint is kept: rerun the sweep to resume it")


# ============================================================================ Ray
class RayExecutor(Executor):
    """Ray tasks, local or on a cluster (see the module docstring). Needs ``pip install lrdecay[ray]``."""

    name = "ray"

    def __init__(self, *, address: str | None = None, workers: int | None = None, cpus_per_task: float = 1,
                 gpus_per_task: float = 0, retries: int = 2, init_kwargs: dict | None = None) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ImportError("executor='ray' needs Ray: pip install 'lrdecay[ray]'") from None
        self.address = address
        self.workers = workers
        self.cpus_per_task = cpus_per_task
        self.gpus_per_task = gpus_per_task
        self.retries = retries
        self.init_kwargs = dict(init_kwargs or {})
        self.parallel = workers or 1

    def run(self, tasks, *, on_epoch, on_result) -> None:
        from lrdecay.sweep import ray_tasks

        ray_tasks.run_on_ray(self, tasks, on_epoch=on_epoch, on_result=on_result, sigint=_SigintOnce)


# ============================================================================ choosing
def cpu_count() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def make_executor(kind: str, *, workers: int | None, address: str | None, n_tasks: int, uses_cuda: bool,
                  retries: int = 2, cpus_per_task: float = 1, gpus_per_task: float | None = None) -> Executor:
    """The executor for ``kind`` (``auto`` picks: a Ray cluster when ``address`` is given; on CUDA, one
    worker per GPU (in this process with one GPU); on the CPU, a process per core when there is more than
    one core and more than one task, else this process)."""
    if kind not in EXECUTORS:
        raise ValueError(f"executor must be one of {list(EXECUTORS)}, got {kind!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be an int >= 1 or None, got {workers!r}")
    if address is not None and kind not in ("auto", "ray"):
        raise ValueError(f"address is for executor='ray', got executor={kind!r}")
    n_gpus = 0
    if uses_cuda:
        import torch

        n_gpus = torch.cuda.device_count()
    if kind == "auto":
        if address is not None:
            kind = "ray"
        elif uses_cuda:
            kind = "process" if (workers or n_gpus) > 1 and n_tasks > 1 else "stack"
        else:
            kind = "process" if (workers or cpu_count()) > 1 and n_tasks > 1 else "stack"
    if kind == "stack":
        return InProcessExecutor()
    if kind == "process":
        if uses_cuda and n_gpus:
            n = workers or n_gpus
            gpus = [f"cuda:{i % n_gpus}" for i in range(n)]
            return ProcessExecutor(n, threads=None, gpus=gpus, retries=retries)
        return ProcessExecutor(workers or cpu_count(), threads=1, retries=retries)
    gpt = gpus_per_task if gpus_per_task is not None else (1 if uses_cuda else 0)
    return RayExecutor(address=address, workers=workers, cpus_per_task=cpus_per_task, gpus_per_task=gpt,
                       retries=retries)
