"""A sweep's output folder: the manifest, one folder per run, the tidy table.

Layout of ``DIR``::

    sweep.json            manifest: the spec, every run (id, setting, seed, grid point, full config),
                          each run's status, the failures with their tracebacks
    table.csv             one row per run per epoch (+ table.parquet when pyarrow is installed)
    runs.csv              one row per run: id, setting, seed, varying config fields, status, wall time, error
    runs/<id>/            the run's own files: config.json, log.jsonl, checkpoint.pt, ledger.npz (the
                          trainer's), result.json (status, history, ledger summary, traceback if failed),
                          snapshots/epoch_<e>.pt (model state dicts at the epochs the config asks for)

``result.json`` with ``"status": "done"`` marks a finished run, which a rerun skips; a run with a
checkpoint and no such result resumes from the checkpoint. Every file is written atomically. One sweep
process at a time holds ``DIR/.lock``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
from typing import Any, Iterable, Mapping, Sequence

from lrdecay._atomic import atomic_write
from lrdecay.sweep.spec import Run, SpecError, SweepSpec
from lrdecay.trainer.logs import flatten_record
from lrdecay.trainer.record import DONE, FAILED, RunRecord

__all__ = ["SweepStore", "MANIFEST", "TABLE_CSV", "TABLE_PARQUET", "RUNS_CSV", "DONE", "FAILED", "PENDING",
           "PARTIAL", "table_rows", "id_columns"]

MANIFEST = "sweep.json"
TABLE_CSV = "table.csv"
TABLE_PARQUET = "table.parquet"
RUNS_CSV = "runs.csv"
RESULT = "result.json"
_FORMAT = 1

#: A folder's own statuses of a run besides a stored record's done / failed: stopped with a checkpoint to
#: resume, or not started.
PARTIAL, PENDING = "partial", "pending"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _json_clean(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, Mapping):
        return {str(k): _json_clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_clean(x) for x in v]
    if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):  # numpy arrays and scalars
        return _json_clean(v.tolist())
    return v


def write_json(path: str, obj: Any) -> None:
    """Write ``obj`` as JSON atomically (NaN/inf become null)."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        json.dump(_json_clean(obj), f, indent=1, sort_keys=False, allow_nan=False)
        f.write("\n")


def read_json(path: str) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class SweepStore:
    """The output folder of one sweep (see the module docstring)."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.out_dir = os.path.abspath(os.fspath(out_dir))
        self.runs_dir = os.path.join(self.out_dir, "runs")
        self._lock_fd: int | None = None

    # ------------------------------------------------------------------ paths
    @property
    def manifest_path(self) -> str:
        return os.path.join(self.out_dir, MANIFEST)

    def run_dir(self, run_id: str) -> str:
        """``DIR/runs/<id>``."""
        return os.path.join(self.runs_dir, run_id)

    def checkpoint_path(self, run_id: str) -> str:
        return os.path.join(self.run_dir(run_id), "checkpoint.pt")

    def result_path(self, run_id: str) -> str:
        return os.path.join(self.run_dir(run_id), RESULT)

    # ------------------------------------------------------------------ opening
    def check(self, spec: SweepSpec, *, extend: bool = False) -> list[Run]:
        """Raise :class:`SpecError` if the folder holds another sweep (or is not a sweep folder) — before
        anything is written. Returns the runs the manifest will list (with ``extend``: the union)."""
        runs = spec.runs()
        if not os.path.exists(self.out_dir):
            return runs
        if not os.path.isdir(self.out_dir):
            raise SpecError(f"out: {self.out_dir!r} exists and is not a folder")
        if not os.path.exists(self.manifest_path):
            others = [n for n in os.listdir(self.out_dir) if not n.startswith(".")]
            if others:
                raise SpecError(
                    f"out: {self.out_dir!r} is not empty and holds no {MANIFEST}: not a sweep folder "
                    f"(found {sorted(others)[:5]}); pick an empty or new folder"
                )
            return runs
        try:
            manifest = read_json(self.manifest_path)
            old = [Run.from_dict(r) for r in manifest["runs"]]
        except SpecError:
            raise
        except Exception as exc:
            # a manifest cut short (a full disk, a crash of an older version): the run folders decide; if
            # each is a run of this spec the folder is this sweep's, and open() writes the manifest anew
            done = sorted(os.listdir(self.runs_dir)) if os.path.isdir(self.runs_dir) else []
            if set(done) <= {r.id for r in runs}:
                return runs
            raise SpecError(f"out: {self.manifest_path!r} is not a readable sweep manifest ({exc}), and "
                            f"{len(set(done) - {r.id for r in runs})} run folder(s) there are not runs of this "
                            f"spec: pick an empty or new folder") from None
        old_ids = [r.id for r in old]
        new_ids = [r.id for r in runs]
        if set(old_ids) == set(new_ids) or (extend and set(old_ids) <= set(new_ids)):
            return runs
        if extend:
            known = set(new_ids)
            return runs + [r for r in old if r.id not in known]
        common = len(set(old_ids) & set(new_ids))
        raise SpecError(
            f"out: {self.out_dir!r} holds another sweep ({manifest.get('name', '?')!r}: {len(old_ids)} runs; "
            f"this spec: {len(new_ids)} runs, {common} in common). Use another output folder, or extend it "
            f"with these runs (--extend / extend=True)"
        )

    def open(self, spec: SweepSpec, runs: Sequence[Run]) -> None:
        """Create the folder, take the lock, write the manifest's run list."""
        os.makedirs(self.runs_dir, exist_ok=True)
        self._lock()
        manifest = {
            "format": _FORMAT,
            "name": spec.name,
            "created": _now(),
            "spec": spec.to_dict(),
            "runs": [r.to_dict() for r in runs],
        }
        if os.path.exists(self.manifest_path):
            try:
                manifest["created"] = read_json(self.manifest_path).get("created", manifest["created"])
            except (OSError, ValueError, AttributeError):
                pass
        self._write_manifest(manifest, runs)

    def close(self) -> None:
        """Release the lock."""
        if self._lock_fd is not None:
            import fcntl

            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _lock(self) -> None:
        if self._lock_fd is not None:
            return
        import fcntl

        fd = os.open(os.path.join(self.out_dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SpecError(f"out: another sweep process is using {self.out_dir!r} (its .lock is held)") from None
        self._lock_fd = fd

    # ------------------------------------------------------------------ runs
    def status(self, run_id: str) -> str:
        """``done``, ``failed`` (its last attempt raised, whether or not it left a checkpoint: a rerun
        resumes from that), ``partial`` (stopped with a checkpoint to resume) or ``pending``. Only the run's
        own ``result.json`` counts (one holding another run's id is ignored)."""
        res = self.read_result(run_id)
        if res is not None and res.status in (DONE, FAILED):
            return res.status
        if os.path.exists(self.checkpoint_path(run_id)):
            return PARTIAL
        return PENDING

    def epochs_logged(self, run_id: str) -> int:
        """Epochs an unfinished run has logged (for the progress bar; the checkpoint decides the resume)."""
        path = os.path.join(self.run_dir(run_id), "log.jsonl")
        try:
            with open(path, encoding="utf-8") as f:
                return sum(1 for line in f if line.strip())
        except OSError:
            return 0

    def read_result(self, run_id: str) -> RunRecord | None:
        """The run's ``result.json`` (written by any version), or None: also for one that is not a run
        record of this run's id (e.g. another run's copied in)."""
        try:
            res = RunRecord.from_json(read_json(self.result_path(run_id)))
        except (OSError, ValueError, RecursionError):
            return None
        return res if res.id == run_id else None

    def clear_result(self, run_id: str) -> None:
        """Forget a run's previous outcome (a failed attempt's ``result.json``) before it starts afresh."""
        try:
            os.unlink(self.result_path(run_id))
        except FileNotFoundError:
            pass

    def write_result(self, run_id: str, result: RunRecord) -> None:
        """Write the run's ``result.json`` atomically (stamped with the time)."""
        write_json(self.result_path(run_id), {**result.to_json(), "written": _now()})

    # ------------------------------------------------------------------ table and manifest
    def finalize(self, spec: SweepSpec, runs: Sequence[Run]) -> dict:
        """Write ``table.csv`` (+ parquet), ``runs.csv`` and the manifest's statuses from the run folders.
        Returns ``{"rows": [...], "columns": [...], "status": {id: status}, "parquet": path or None}``."""
        results = {r.id: self.read_result(r.id) for r in runs}
        status = {r.id: self.status(r.id) for r in runs}
        rows, columns = table_rows(runs, {i: res for i, res in results.items() if status[i] == DONE})
        _write_csv(os.path.join(self.out_dir, TABLE_CSV), rows, columns)
        parquet = _write_parquet(os.path.join(self.out_dir, TABLE_PARQUET), rows, columns)
        var = _varying_fields(runs)
        run_rows = []
        for r in runs:
            res = results[r.id]
            run_rows.append({
                "run_id": r.id, "setting": r.setting, "seed": r.seed,
                **{f"config.{k}": _cell(getattr(r.config, k)) for k in var},
                "status": status[r.id], "epochs": len(res.history) if res else 0,
                "wall_time": res.wall_time if res else None,
                "error": _last_line(res.error if res else None) if status[r.id] == FAILED else "",
            })
        run_cols = list(run_rows[0]) if run_rows else ["run_id"]
        _write_csv(os.path.join(self.out_dir, RUNS_CSV), run_rows, run_cols)
        manifest = read_json(self.manifest_path) if os.path.exists(self.manifest_path) else {
            "format": _FORMAT, "name": spec.name, "created": _now(), "spec": spec.to_dict(),
            "runs": [r.to_dict() for r in runs]}
        self._write_manifest(manifest, runs, status=status, results=results)
        return {"rows": rows, "columns": columns, "status": status, "parquet": parquet}

    def _write_manifest(self, manifest: dict, runs: Sequence[Run], *, status=None, results=None) -> None:
        status = status or {r.id: self.status(r.id) for r in runs}
        results = results or {}
        counts = {k: 0 for k in (DONE, FAILED, PARTIAL, PENDING)}
        for s in status.values():
            counts[s] += 1
        manifest = dict(manifest)
        manifest.update(
            updated=_now(),
            counts=counts,
            status=dict(status),
            failed=[
                {"id": rid, "error": getattr(results.get(rid) or self.read_result(rid), "error", None)}
                for rid, s in status.items() if s == FAILED
            ],
        )
        write_json(self.manifest_path, manifest)


# ---------------------------------------------------------------------------- the table
def _varying_fields(runs: Sequence[Run]) -> list[str]:
    """Config fields (other than seed) whose value differs between runs, in config field order."""
    if not runs:
        return []
    dicts = [r.config.to_dict() for r in runs]
    out = []
    for k in dicts[0]:
        if k == "seed":
            continue
        vals = {json.dumps(d[k], sort_keys=True) for d in dicts}
        if len(vals) > 1:
            out.append(k)
    return out


def id_columns(runs: Sequence[Run]) -> list[str]:
    """The columns that say which run a row belongs to: ``run_id``, ``setting``, ``seed`` and
    ``config.<field>`` for each field that varies across the sweep."""
    return ["run_id", "setting", "seed", *(f"config.{k}" for k in _varying_fields(runs))]


def _last_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else ""


def _cell(v: Any) -> Any:
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v)
    return v


def table_rows(runs: Sequence[Run], results: Mapping[str, RunRecord | None]) -> tuple[list[dict], list[str]]:
    """The tidy table: one row per run per epoch of the runs that have a result (flattened records:
    ``test.test.acc``, ``train_acc_group.easy``, ...). Returns ``(rows, columns)``."""
    var = _varying_fields(runs)
    columns = id_columns(runs)
    seen = set(columns)
    rows: list[dict] = []
    for r in runs:
        res = results.get(r.id)
        if not res:
            continue
        ident = {"run_id": r.id, "setting": r.setting, "seed": r.seed,
                 **{f"config.{k}": _cell(getattr(r.config, k)) for k in var}}
        for rec in res.history:
            flat = flatten_record(rec)
            row = dict(ident)
            for k, v in flat.items():
                if k in ident:  # a record key that shadows an id column keeps its own name, prefixed
                    k = "record." + k
                row[k] = _cell(v)
                if k not in seen:
                    seen.add(k)
                    columns.append(k)
            rows.append(row)
    return rows, columns


def _write_csv(path: str, rows: Iterable[Mapping], columns: Sequence[str]) -> None:
    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), restval="")
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})


def _write_parquet(path: str, rows: Sequence[Mapping], columns: Sequence[str]) -> str | None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    data = {c: [row.get(c) for row in rows] for c in columns}
    arrays = {}
    for c, vals in data.items():
        kinds = {type(v) for v in vals if v is not None}
        if kinds <= {int, float} and float in kinds:
            vals = [None if v is None else float(v) for v in vals]
        elif len(kinds) > 1:
            vals = [None if v is None else str(v) for v in vals]
        arrays[c] = pa.array(vals)
    table = pa.table(arrays) if arrays else pa.table({"run_id": pa.array([], pa.string())})
    with atomic_write(path, "wb") as f:
        pq.write_table(table, f)
    return path
