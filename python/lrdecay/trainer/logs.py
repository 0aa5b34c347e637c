"""Per-epoch records: JSONL (one JSON object per epoch, flushed each epoch) and a flat CSV export."""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Any, Iterable

from lrdecay._atomic import atomic_write

__all__ = ["JsonlWriter", "flatten_record", "write_csv", "read_jsonl"]


def _clean(v: Any) -> Any:
    # JSON has no NaN/inf: an undefined statistic (e.g. accuracy of an empty group) is written as null.
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


class JsonlWriter:
    """Appends one JSON line per epoch and flushes it, so a crash loses at most the current epoch.

    Opening rewrites the file with ``records`` (the history a resumed run carries), so records a
    stopped run wrote after its last checkpoint are not duplicated.
    """

    def __init__(self, path: str, records: Iterable[dict] = ()) -> None:
        self.path = path
        with atomic_write(path, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(_clean(r), allow_nan=False) + "\n")
        self._f = open(path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._f.write(json.dumps(_clean(record), allow_nan=False) + "\n")
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()


def read_jsonl(path: str) -> list[dict]:
    """Read the records of a JSONL log."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def flatten_record(record: dict, prefix: str = "") -> dict[str, Any]:
    """``{"test": {"probe": {"acc": 1}}}`` → ``{"test.probe.acc": 1}``."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten_record(v, key + "."))
        else:
            out[key] = v
    return out


def write_csv(records: list[dict], path: str) -> str:
    """Write records as CSV: one row per epoch, columns = union of flattened keys in first-seen order."""
    rows = [flatten_record(_clean(r)) for r in records]
    columns: list[str] = []
    seen = set()
    for row in rows:
        for k in row:
            if k not in seen:
                seen.add(k)
                columns.append(k)
    with atomic_write(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns, restval="")
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return path
