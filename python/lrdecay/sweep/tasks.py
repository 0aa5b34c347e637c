"""Units of work: planning runs into tasks, and running one task wherever an executor puts it.

A task is one run, or a group of runs that train stacked as one model (same architecture, data shapes,
batch size, epochs and device: :func:`stack_key`). :func:`execute_task` runs a task in the current
process, writes each run's files into its folder (resuming from its checkpoint when there is one) and
returns one result dict per run; executors only decide where it runs.
"""

from __future__ import annotations

import math
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from lrdecay.sweep.spec import Run
from lrdecay.sweep.store import SweepStore
from lrdecay.trainer import Trainer
from lrdecay.trainer.checkpoint import CheckpointError, set_aside, snapshot_path
from lrdecay.trainer.config import PER_MEMBER_FIELDS, TrainConfig
from lrdecay.trainer.record import INTERRUPTED, RunRecord
from lrdecay.trainer.stacked import StackedEngine

__all__ = ["Task", "plan_tasks", "execute_task", "execute_solo", "execute_stacked", "open_trainer", "stack_key",
           "PER_MEMBER_FIELDS", "INTERRUPTED", "stackable", "snapshot_path"]


# PER_MEMBER_FIELDS (re-exported here): the fields that may differ between the members of one stacked
# model: each member has its own data draw, init, order and label noise, its own optimizer settings and
# schedule (fixed or host-side), and its own trainer for everything after the steps (evaluation, ledger,
# snapshots, logs, checkpoints). Every other field (architecture, data shapes, batch size, epochs, device,
# ...) must be equal. Declared on TrainConfig's fields.

#: Models the stacked engine can batch (others always train alone).
STACKABLE_MODELS = ("mlp",)


def stackable(config: TrainConfig) -> bool:
    """Whether ``config`` can be a member of a stacked model (an MLP on the pattern data, float32)."""
    return config.model in STACKABLE_MODELS and config.data is None and not config.amp


def stack_key(config: TrainConfig) -> str:
    """Runs with equal keys can train as members of one stacked model."""
    import json

    d = {k: v for k, v in config.to_dict().items() if k not in PER_MEMBER_FIELDS}
    return json.dumps(d, sort_keys=True)


#: Test hook: set (in the driver's environment) to an epoch ``e``, a sweep's worker process (never the
#: driver) ends at once with :data:`TEST_WORKER_EXIT_STATUS` right after a run wrote its checkpoint of
#: epoch ``e`` -- the first such checkpoint in the sweep folder only (it leaves
#: :data:`TEST_WORKER_EXIT_MARK` there), so the retries go through. The kill tests use it: a worker dies
#: at a known point instead of a timed kill racing the run.
TEST_WORKER_EXIT_ENV = "LRDECAY_TEST_WORKER_EXIT"
TEST_WORKER_EXIT_STATUS = 77
TEST_WORKER_EXIT_MARK = ".test-worker-exit"


def _test_worker_exit() -> int | None:
    value = os.environ.get(TEST_WORKER_EXIT_ENV, "").strip()
    return int(value) if value else None


@dataclass
class Task:
    """Runs to train together (``len(runs) > 1``: stacked) and the sweep folder they write into."""

    runs: list[Run]
    out_dir: str
    checkpoint_seconds: float = 30.0
    device: str | None = None  # the GPU an executor pinned this worker to (replaces device "auto"/"cuda")
    stacked: bool = False
    index: int = 0
    driver_pid: int = field(default_factory=os.getpid)  # the process that planned it (the sweep's driver)
    test_worker_exit: int | None = field(default_factory=_test_worker_exit)  # TEST_WORKER_EXIT_ENV, read there

    @property
    def epochs(self) -> int:
        """Epochs of all its runs (the progress it brings)."""
        return sum(r.config.epochs for r in self.runs)


def plan_tasks(
    runs: Sequence[Run],
    out_dir: str,
    *,
    stack: bool,
    parallel: int = 1,
    max_members: int = 64,
    checkpoint_seconds: float = 30.0,
) -> list[Task]:
    """Split runs into tasks. With ``stack``, runs sharing a :func:`stack_key` form stacked groups of at
    most ``max_members``, and a group is split further so that ``parallel`` workers all get work (in
    proportion to its share of the sweep's training cost, epochs × samples); other runs are one task each.
    Largest tasks first (they bound the sweep's wall time)."""
    tasks: list[Task] = []
    if stack:
        groups: dict[str, list[Run]] = {}
        for r in runs:
            key = stack_key(r.config) if stackable(r.config) else "solo:" + r.id
            groups.setdefault(key, []).append(r)
        n_groups = len(groups)
        total = sum(_cost(r) for r in runs)
        for members in groups.values():
            # spread the workers over the groups in proportion to their cost: by run counts, 15 long runs
            # beside 6 short ones got one worker, and the other idled after the short ones
            share = (max(1, round(parallel * sum(_cost(r) for r in members) / max(1, total)))
                     if n_groups > 1 else parallel)
            n_chunks = max(math.ceil(len(members) / max_members), min(share, len(members)))
            for chunk in _split(members, n_chunks):
                tasks.append(Task(list(chunk), out_dir, checkpoint_seconds, stacked=len(chunk) > 1))
    else:
        tasks = [Task([r], out_dir, checkpoint_seconds) for r in runs]
    tasks.sort(key=lambda t: -sum(_cost(r) for r in t.runs))
    for i, t in enumerate(tasks):
        t.index = i
    return tasks


def _cost(run: Run) -> int:
    """A run's training cost for planning: epochs × training samples."""
    return run.config.epochs * max(1, run.config.n_train)


def _split(items: Sequence, n: int) -> list[list]:
    n = max(1, min(n, len(items)))
    q, r = divmod(len(items), n)
    out, i = [], 0
    for k in range(n):
        size = q + (1 if k < r else 0)
        out.append(list(items[i : i + size]))
        i += size
    return out


# ---------------------------------------------------------------------------- running a task
EpochHook = Callable[[str, int], None]


def run_config(run: Run, task: Task) -> TrainConfig:
    """The config a run trains with inside a sweep: its own, with no per-run plots or progress bars, its
    checkpoints left to the sweep (:class:`Checkpointer`), and the executor's device if it pins one."""
    cfg = run.config
    changes: dict[str, Any] = {"progress": False, "plots": False, "checkpoint_every": 0}
    if task.device is not None and cfg.device in ("auto", "cuda"):
        changes["device"] = task.device
    return cfg.replace(**changes)


def execute_task(task: Task, *, on_epoch: EpochHook | None = None, stop: Any = None) -> list[RunRecord]:
    """Train the task's runs in this process; returns one :class:`~lrdecay.trainer.record.RunRecord` per
    run (done, failed or interrupted; a done or failed one is also written to ``runs/<id>/result.json``)."""
    store = SweepStore(task.out_dir)
    if task.stacked and len(task.runs) > 1:
        t0 = time.perf_counter()
        try:
            return execute_stacked(task, store, on_epoch=on_epoch, stop=stop)
        except Exception:
            tb = traceback.format_exc()
            out = []
            for run in task.runs:
                res = RunRecord.failed(run.id, [], tb, wall_time=time.perf_counter() - t0)
                store.write_result(run.id, res)
                out.append(res)
            return out
    out = []
    for run in task.runs:
        if stop is not None and stop.is_set():
            out.append(RunRecord.interrupted(run.id))
            continue
        out.append(execute_solo(run, task, store, on_epoch=on_epoch, stop=stop))
    return out


def open_trainer(run: Run, task: Task, store: SweepStore, **kw: Any) -> Trainer:
    """The trainer of one run of a sweep in its folder, resumed from its checkpoint when there is one.

    The sweep owns its run folders: without a checkpoint, whatever a run that died early left there is
    replaced (the trainer's one-writer lock still keeps two processes off one folder), and a checkpoint
    that cannot be read (a disk fault) is set aside and the run starts over. ``kw``: more
    :class:`~lrdecay.trainer.Trainer` arguments (``dataset``, ``test_sets``)."""
    cfg = run_config(run, task)
    kw.update(out_dir=store.run_dir(run.id), callbacks=run_callbacks(run, task, kw.pop("on_epoch", None)))
    ckpt = store.checkpoint_path(run.id)
    resume = ckpt if os.path.exists(ckpt) else None
    if resume is None:
        store.clear_result(run.id)
    try:
        return Trainer(cfg, resume=resume, overwrite=resume is None, **kw)
    except CheckpointError:
        set_aside(ckpt)
        store.clear_result(run.id)
        return Trainer(cfg, overwrite=True, **kw)


def execute_solo(run: Run, task: Task, store: SweepStore, *, on_epoch: EpochHook | None = None,
                 stop: Any = None) -> RunRecord:
    """One run with the plain :class:`~lrdecay.trainer.Trainer`, resumed from its checkpoint if any."""
    t0 = time.perf_counter()
    trainer = None
    try:
        trainer = open_trainer(run, task, store, on_epoch=on_epoch)
        with _StopWatcher(stop, trainer.request_stop):
            try:
                result = trainer.fit()
            except KeyboardInterrupt:
                # fit() stopped at a step boundary and wrote a checkpoint (Ctrl-C or a stop request)
                return RunRecord.interrupted(run.id, resumed_from=trainer.resumed_from)
        res = RunRecord.finished(run.id, result, wall_time=time.perf_counter() - t0, resumed_from=trainer.resumed_from)
    except KeyboardInterrupt:
        raise
    except Exception:
        res = RunRecord.failed(run.id, list(trainer.history) if trainer is not None else [], traceback.format_exc(),
                               wall_time=time.perf_counter() - t0)
    store.write_result(run.id, res)
    return res


def execute_stacked(task: Task, store: SweepStore, *, on_epoch: EpochHook | None = None,
                    stop: Any = None) -> list[RunRecord]:
    """Run a stacked task: open each member's trainer (resuming from its checkpoint), group the members
    by where they stand, train each group stacked (:class:`~lrdecay.trainer.stacked.StackedEngine`; a
    member alone at its position trains solo), and write each run's ``result.json``."""
    t0 = time.perf_counter()
    trainers: list[Trainer] = []
    results: dict[str, RunRecord] = {}
    runs: list[Run] = []
    data: dict[tuple, tuple] = {}  # members with equal data (same seed, other schedule) share one build
    for run in task.runs:
        try:
            cfg = run_config(run, task)
            key = Trainer.data_key(cfg)
            # the first member of a data key builds it; later ones take its device data as it is
            train_ds, tests = data[key] if key in data else Trainer.build_datasets(cfg)
            t = open_trainer(run, task, store, dataset=train_ds, test_sets=tests, on_epoch=on_epoch)
            data.setdefault(key, (t.built_data, dict(t.test_data)))
        except Exception:
            results[run.id] = RunRecord.failed(run.id, [], traceback.format_exc(), wall_time=time.perf_counter() - t0)
            store.write_result(run.id, results[run.id])
            continue
        trainers.append(t)
        runs.append(run)

    groups: dict[tuple[int, int], list[int]] = {}
    for i, t in enumerate(trainers):
        groups.setdefault((t.epoch, t.batch), []).append(i)
    for (_epoch, _batch), idx in sorted(groups.items()):
        members = [trainers[i] for i in idx]
        if stop is not None and stop.is_set():
            for i in idx:
                results[runs[i].id] = RunRecord.interrupted(runs[i].id)
            continue
        if len(members) == 1:
            # alone at its position: the plain trainer (which claims the run folder for itself)
            members[0].close()
            run = runs[idx[0]]
            results[run.id] = execute_solo(run, task, store, on_epoch=on_epoch, stop=stop)
            continue
        try:
            engine = StackedEngine(members)
            with _StopWatcher(stop, engine.request_stop):
                finished = engine.fit()
        except Exception:
            tb = traceback.format_exc()
            for i in idx:
                results[runs[i].id] = RunRecord.failed(runs[i].id, list(trainers[i].history), tb,
                                                       wall_time=time.perf_counter() - t0)
                store.write_result(runs[i].id, results[runs[i].id])
            continue
        finally:
            for t in members:  # give each run folder up (the log closed, the one-writer lock released)
                t.close()
        for i in idx:
            t, run = trainers[i], runs[i]
            if not finished:
                results[run.id] = RunRecord.interrupted(run.id, resumed_from=t.resumed_from)
                continue
            res = RunRecord.finished(run.id, t, wall_time=time.perf_counter() - t0, resumed_from=t.resumed_from,
                                     stacked=len(idx))
            store.write_result(run.id, res)
            results[run.id] = res
    return [results[r.id] for r in task.runs]


class Checkpointer:
    """An epoch-end callback: a checkpoint once ``seconds`` have passed since the run's last one (0: every
    epoch). The trainer itself writes one when it stops or ends. ``task`` serves the
    :data:`TEST_WORKER_EXIT_ENV` hook."""

    def __init__(self, seconds: float, task: Task | None = None) -> None:
        self.seconds = float(seconds)
        self.last = time.monotonic()
        self.task = task

    def __call__(self, trainer, record) -> None:
        if trainer.out_dir is None or trainer.epoch >= trainer.config.epochs:
            return
        if time.monotonic() - self.last >= self.seconds:
            trainer.save_checkpoint()
            self.last = time.monotonic()
            self._test_exit(trainer.epoch)

    def _test_exit(self, epoch: int) -> None:
        t = self.task
        if t is None or t.test_worker_exit != epoch or os.getpid() == t.driver_pid:
            return
        try:  # once per sweep folder: the first worker to get here leaves this mark and exits
            os.close(os.open(os.path.join(t.out_dir, TEST_WORKER_EXIT_MARK), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return
        os._exit(TEST_WORKER_EXIT_STATUS)


def run_callbacks(run: Run, task: Task, on_epoch: EpochHook | None) -> list:
    """The epoch-end callbacks of a run in a sweep: the sweep's checkpoints, then the progress report."""
    callbacks: list = [Checkpointer(task.checkpoint_seconds, task)]
    if on_epoch is not None:
        callbacks.append(lambda trainer, record, rid=run.id: on_epoch(rid, int(record["epoch"])))
    return callbacks


# ---------------------------------------------------------------------------- stop requests
class _StopWatcher:
    """While active, polls ``stop.is_set()`` in a thread and calls ``request_stop()`` once it is set (an
    executor's stop request reaches a trainer at its next step boundary)."""

    def __init__(self, stop: Any, request_stop: Callable[[], None], interval: float = 0.2) -> None:
        self.stop, self.request_stop, self.interval = stop, request_stop, interval
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self):
        if self.stop is not None:
            if self.stop.is_set():
                self.request_stop()
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._done.wait(self.interval):
            try:
                if self.stop.is_set():
                    self.request_stop()
                    return
            except Exception:  # the flag's owner went away (pool shut down): nothing to watch
                return

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
