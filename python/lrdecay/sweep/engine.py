"""``run_sweep``: plan, run, resume and tabulate a sweep; ``SweepResult``: what it produced."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from lrdecay.sweep.executors import EXECUTORS, make_executor
from lrdecay.sweep.spec import Run, SpecError, SweepSpec, load_spec, run_id
from lrdecay.sweep.store import DONE, FAILED, PARTIAL, TABLE_CSV, SweepStore, read_json
from lrdecay.sweep.tasks import plan_tasks
from lrdecay.trainer.checkpoint import load_checkpoint, snapshot_path
from lrdecay.trainer.config import TrainConfig
from lrdecay.trainer.record import EpochRecord, RunRecord

__all__ = ["run_sweep", "load_sweep", "SweepResult", "RunOutcome", "RunsMissing"]


class RunsMissing(RuntimeError):
    """Runs that a caller needs are missing from a sweep's results (failed, or stopped part-way).

    ``missing`` holds their :class:`RunOutcome` (``.status``, ``.error``)."""

    def __init__(self, missing: Sequence["RunOutcome"]) -> None:
        self.missing = list(missing)
        failed = [o for o in self.missing if o.status == FAILED]
        first = failed[0] if failed else self.missing[0]
        last = (first.error or "").strip().splitlines()[-1:] or [first.status]
        super().__init__(f"{len(self.missing)} training run(s) failed or did not finish; the first "
                         f"({first.id}, {first.status}): {last[0]}")


@dataclass
class RunOutcome:
    """One run of a sweep as it stands: the run, its status in the folder (done, failed, partial,
    pending), its stored :class:`~lrdecay.trainer.record.RunRecord` and its folder. ``history``,
    ``ledger_summary``, ``wall_time``, ``error``, ``snapshot_epochs`` and ``resumed_from`` read the record
    (a history only for a done or failed run, an error only for a failed one)."""

    run: Run
    status: str
    record: RunRecord
    out_dir: str

    @property
    def id(self) -> str:
        """The run id."""
        return self.run.id

    @property
    def history(self) -> list[EpochRecord]:
        """The run's epoch records ([] while it is partial or pending)."""
        return self.record.history if self.status in (DONE, FAILED) else []

    @property
    def ledger_summary(self) -> dict | None:
        """The ledger's per-epoch summary (lists), None without a ledger or before the run finished."""
        return self.record.ledger_summary

    @property
    def wall_time(self) -> float | None:
        """Seconds its last attempt took."""
        return self.record.wall_time

    @property
    def error(self) -> str | None:
        """The traceback of a failed run (None otherwise)."""
        return self.record.error if self.status == FAILED else None

    @property
    def snapshot_epochs(self) -> list[int]:
        """Epochs whose model snapshot the run saved."""
        return list(self.record.snapshots)

    @property
    def resumed_from(self) -> int | None:
        """The completed epochs its last attempt started from."""
        return self.record.resumed_from

    @property
    def config(self) -> TrainConfig:
        """The run's config."""
        return self.run.config

    @property
    def final(self) -> EpochRecord:
        """The last epoch's record ({} if none)."""
        return self.history[-1] if self.history else {}

    def snapshots(self) -> dict[int, dict]:
        """``{epoch: state_dict}`` of the model snapshots the config asked for (``snapshot_epochs``; CPU
        tensors, read from the run's folder now)."""
        return {e: load_checkpoint(snapshot_path(self.out_dir, e))["model"] for e in self.snapshot_epochs}


class SweepResult:
    """What a sweep produced: every run's outcome, the tidy table, the files.

    Index with a run id, a :class:`TrainConfig` or a :class:`Run`: ``result[cfg].history``.
    """

    def __init__(self, out_dir: str, name: str, outcomes: Sequence[RunOutcome], rows: list[dict],
                 columns: list[str], *, wall_time: float = 0.0, executor: str = "", interrupted: bool = False,
                 parquet: str | None = None) -> None:
        self.out_dir = out_dir
        self.name = name
        self.runs = list(outcomes)
        self.rows = rows
        self.columns = columns
        self.wall_time = wall_time
        self.executor = executor
        self.interrupted = interrupted
        self.table_path = os.path.join(out_dir, TABLE_CSV)
        self.parquet_path = parquet
        self._by_id = {o.id: o for o in self.runs}

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self):
        return iter(self.runs)

    def __contains__(self, key) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __getitem__(self, key: str | TrainConfig | Run) -> RunOutcome:
        if isinstance(key, Run):
            key = key.id
        elif isinstance(key, TrainConfig):
            key = run_id(key)
        if not isinstance(key, str) or key not in self._by_id:
            raise KeyError(f"no run {key!r} in this sweep")
        return self._by_id[key]

    @property
    def failed(self) -> list[RunOutcome]:
        """Runs that raised (traceback in ``.error``)."""
        return [o for o in self.runs if o.status == FAILED]

    @property
    def n_failed(self) -> int:
        return len(self.failed)

    @property
    def complete(self) -> bool:
        """Every run finished."""
        return all(o.status == DONE for o in self.runs)

    @property
    def missing(self) -> list[RunOutcome]:
        """Runs missing from the table: failed, stopped part-way (``partial``) or never started."""
        return [o for o in self.runs if o.status != DONE]

    def records(self) -> list[dict]:
        """The tidy table as a list of row dicts (one per run per epoch)."""
        return [dict(r) for r in self.rows]

    def frame(self):
        """The tidy table as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("SweepResult.frame() needs pandas (pip install pandas); records() needs nothing") from None
        return pd.DataFrame(self.rows, columns=self.columns)

    def summary(self) -> str:
        """One line: runs done / failed / unfinished and where the table is."""
        counts: dict[str, int] = {}
        for o in self.runs:
            counts[o.status] = counts.get(o.status, 0) + 1
        parts = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        return f"sweep {self.name!r}: {len(self.runs)} runs ({parts}); table: {self.table_path}"


def _as_spec(runs: Any) -> SweepSpec:
    if isinstance(runs, SweepSpec):
        return runs
    if isinstance(runs, (str, os.PathLike, Mapping)):
        return load_spec(runs)
    if isinstance(runs, TrainConfig):
        return SweepSpec.from_configs([runs])
    if isinstance(runs, Sequence) or hasattr(runs, "__iter__"):
        return SweepSpec.from_configs(list(runs))
    raise TypeError(
        f"runs must be a SweepSpec, a spec path / dict, or a list of TrainConfig, got {type(runs).__name__}"
    )


def _uses_cuda(runs: Sequence[Run]) -> bool:
    devices = {r.config.device for r in runs}
    if any(d.startswith("cuda") for d in devices):
        return True
    if "auto" in devices:
        import torch

        return torch.cuda.is_available()
    return False


class _Progress:
    """One bar over runs × epochs (tqdm; quiet when stderr is not a terminal), thread-safe."""

    def __init__(self, runs: Sequence[Run], done_epochs: Mapping[str, int], *, name: str, enabled: bool,
                 on_event: Callable[[dict], None] | None) -> None:
        self.lock = threading.Lock()
        self.seen = dict(done_epochs)
        self.total = sum(r.config.epochs for r in runs)
        self.n_runs = len(runs)
        self.finished = sum(1 for r in runs if done_epochs.get(r.id, 0) >= r.config.epochs)
        self.failed = 0
        self.on_event = on_event
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, initial=sum(self.seen.values()), desc=name, unit="epoch",
                            disable=None, dynamic_ncols=True, smoothing=0.1)
            self._postfix()

    def _postfix(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"runs {self.finished}/{self.n_runs}" + (f", {self.failed} failed" if self.failed else ""))

    def epoch(self, rid: str, epoch: int, pid: int | None = None) -> None:
        with self.lock:
            prev = self.seen.get(rid, 0)
            if epoch > prev:
                self.seen[rid] = epoch
                if self.bar is not None:
                    self.bar.update(epoch - prev)
        if self.on_event is not None:
            self.on_event({"event": "epoch", "run_id": rid, "epoch": epoch, "pid": pid or os.getpid()})

    def result(self, res: RunRecord) -> None:
        with self.lock:
            if res.status == DONE:
                self.finished += 1
            elif res.status == FAILED:
                self.failed += 1
            self._postfix()
        if self.on_event is not None:
            self.on_event({"event": "result", "run_id": res.id, "status": res.status, "pid": res.pid})

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_sweep(
    runs: SweepSpec | Sequence[TrainConfig] | str | os.PathLike | Mapping[str, Any],
    out_dir: str | os.PathLike,
    *,
    executor: str = "auto",
    workers: int | None = None,
    address: str | None = None,
    stack: bool = True,
    max_members: int = 64,
    checkpoint_seconds: float = 30.0,
    retries: int = 2,
    progress: bool = True,
    extend: bool = False,
    cpus_per_task: float = 1,
    gpus_per_task: float | None = None,
    on_event: Callable[[dict], None] | None = None,
) -> SweepResult:
    """Run (or resume) a sweep into ``out_dir`` and return its :class:`SweepResult`.

    Args:
        runs: a :class:`SweepSpec`, a spec file / text / dict, or a list of :class:`TrainConfig` (repeated
            configs are one run).
        out_dir: the sweep folder (see :mod:`lrdecay.sweep.store`); finished runs in it are skipped,
            unfinished ones resume from their checkpoints.
        executor: ``"auto"``, ``"stack"`` (this process), ``"process"`` (local pool), ``"ray"``.
        workers: processes (``process``) or concurrent Ray tasks to plan for; None: one per CPU core
            (one per GPU on CUDA).
        address: a Ray cluster address (implies ``executor="ray"`` under ``auto``).
        stack: train runs that share an architecture as members of one stacked model.
        max_members: most members in one stacked model.
        checkpoint_seconds: a run writes a checkpoint at an epoch end once this many seconds have passed
            since its last one (0: every epoch), and always when it stops or ends; a killed sweep loses at
            most about this much work per running run.
        retries: times a task whose worker died is run again (resuming from its checkpoints).
        progress: one bar over runs × epochs with an ETA.
        extend: allow ``out_dir`` to hold another sweep, adding these runs to it.
        cpus_per_task, gpus_per_task: Ray resource requests per task (gpus None: 1 on CUDA, else 0).
        on_event: called in this process with ``{"event": "epoch"|"result", "run_id", ...}`` dicts.

    Every spec error and an ``out_dir`` holding another sweep raise before any run starts. A run that
    raises is recorded as failed (``result.failed``, traceback in ``sweep.json``) and the sweep goes on.
    Ctrl-C stops every running trainer at a step boundary with a checkpoint, writes the table of what
    finished and raises KeyboardInterrupt; running the same call again resumes.
    """
    t0 = time.perf_counter()
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {list(EXECUTORS)}, got {executor!r}")
    for name, value, lo in (("max_members", max_members, 1), ("retries", retries, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {value!r}")
    if isinstance(checkpoint_seconds, bool) or not isinstance(checkpoint_seconds, (int, float)) \
            or not checkpoint_seconds >= 0 or checkpoint_seconds == float("inf"):
        raise ValueError(f"checkpoint_seconds must be a finite number >= 0, got {checkpoint_seconds!r}")
    spec = _as_spec(runs)
    store = SweepStore(out_dir)
    all_runs = store.check(spec, extend=extend)
    todo = [r for r in all_runs if store.status(r.id) != DONE]
    ex = make_executor(executor, workers=workers, address=address, n_tasks=len(todo),
                       uses_cuda=_uses_cuda(todo), retries=retries, cpus_per_task=cpus_per_task,
                       gpus_per_task=gpus_per_task)
    store.open(spec, all_runs)
    interrupted = False
    bar = None
    try:
        done_epochs = {r.id: (r.config.epochs if store.status(r.id) == DONE else
                              store.epochs_logged(r.id) if store.status(r.id) == PARTIAL else 0)
                       for r in all_runs}
        bar = _Progress(all_runs, done_epochs, name=spec.name, enabled=progress, on_event=on_event)
        tasks = plan_tasks(todo, store.out_dir, stack=stack, parallel=ex.parallel, max_members=max_members,
                           checkpoint_seconds=float(checkpoint_seconds))

        def on_result(task, results) -> None:
            for res in results:
                stored = store.read_result(res.id)
                # a Ray worker on a node without the shared folder, or a worker that died (its run failed)
                if res.status in (DONE, FAILED) and (stored is None or stored.status != res.status):
                    store.write_result(res.id, res)
                bar.result(res)

        try:
            ex.run(tasks, on_epoch=bar.epoch, on_result=on_result)
        except KeyboardInterrupt:
            interrupted = True
    finally:
        if bar is not None:
            bar.close()
        try:
            fin = store.finalize(spec, all_runs)
        finally:
            store.close()
    result = _result(store, spec.name, all_runs, fin, wall_time=time.perf_counter() - t0, executor=ex.name,
                     interrupted=interrupted)
    if interrupted:
        raise KeyboardInterrupt(
            f"sweep interrupted: {sum(o.status == DONE for o in result.runs)}/{len(result.runs)} runs done; "
            f"rerun the same command to resume"
        )
    return result


def _result(store: SweepStore, name: str, runs: Sequence[Run], fin: dict, **kw) -> SweepResult:
    outcomes = []
    for r in runs:
        status = fin["status"][r.id]
        record = store.read_result(r.id) or RunRecord(r.id, status)
        outcomes.append(RunOutcome(run=r, status=status, record=record, out_dir=store.run_dir(r.id)))
    return SweepResult(store.out_dir, name, outcomes, fin["rows"], fin["columns"], parquet=fin.get("parquet"), **kw)


def load_sweep(out_dir: str | os.PathLike) -> SweepResult:
    """Read a sweep folder (finished or not) without running anything."""
    store = SweepStore(out_dir)
    if not os.path.exists(store.manifest_path):
        raise SpecError(f"{store.out_dir!r} holds no {os.path.basename(store.manifest_path)}: not a sweep folder")
    manifest = read_json(store.manifest_path)
    runs = [Run.from_dict(d) for d in manifest["runs"]]
    from lrdecay.sweep.store import table_rows

    status = {r.id: store.status(r.id) for r in runs}
    results = {r.id: store.read_result(r.id) for r in runs if status[r.id] == DONE}
    rows, columns = table_rows(runs, results)
    parquet = os.path.join(store.out_dir, "table.parquet")
    fin = {"rows": rows, "columns": columns, "status": status,
           "parquet": parquet if os.path.exists(parquet) else None}
    return _result(store, manifest.get("name", "sweep"), runs, fin)

