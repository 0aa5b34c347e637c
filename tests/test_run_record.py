"""RunRecord: the one run record of trainer, sweep and executors (to and from ``result.json``), and sweep
folders written before it existed still load and resume."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from lrdecay.sweep import load_sweep, run_sweep
from lrdecay.sweep.spec import run_id
from lrdecay.trainer import RunRecord, TrainConfig, train
from lrdecay.trainer.record import DONE, FAILED, INTERRUPTED

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: A sweep folder written by the code before RunRecord (two runs trained stacked, one whose data build
#: raised), with the checkpoints, ledgers and parquet table left out: what load_sweep and a rerun read.
OLD_SWEEP = Path(__file__).parent / "data" / "sweep_before_runrecord"


def test_a_finished_run_round_trips_through_json():
    cfg = TrainConfig(preset="toy", n_train=90, n_test=30, label_noise=0.3, width=4, depth=1, epochs=2, batch_size=30,
                      device="cpu", progress=False, plots=False, snapshot_epochs=[1], seed=5)
    res = train(cfg)
    rec = RunRecord.finished(run_id(cfg), res, wall_time=1.5, resumed_from=0, stacked=3)
    assert rec.status == DONE and rec.history == res.history and rec.final == res.history[-1]
    assert rec.snapshots == [1] and rec.stacked == 3
    summary = res.summary()
    assert rec.ledger_summary["accuracy"] == summary["accuracy"].tolist()
    text = json.dumps(rec.to_json())  # JSON-ready: no numpy, no tensors
    back = RunRecord.from_json(json.loads(text))
    assert back == rec


def test_statuses_and_optional_keys():
    failed = RunRecord.failed("abc", [{"epoch": 1, "lr": 0.1}], "Traceback ...\nRuntimeError: x", wall_time=2)
    assert failed.status == FAILED and failed.error.endswith("x") and failed.pid is not None
    d = failed.to_json()
    assert "stacked" not in d and "written" not in d and d["history"] == [{"epoch": 1, "lr": 0.1}]
    assert RunRecord.interrupted("abc", resumed_from=4).status == INTERRUPTED
    # a minimal record (what executors made for runs whose worker died) takes every default
    lost = RunRecord.from_json({"id": "abc", "status": "failed", "error": "died"})
    assert lost.history == [] and lost.snapshots == [] and lost.ledger_summary is None and lost.wall_time is None
    # keys a later version may add are ignored
    assert RunRecord.from_json({"id": "x", "status": "done", "new_key": 1}).status == DONE


@pytest.mark.parametrize("obj, names", [
    ([1, 2], "JSON object"),
    ({"status": "done"}, "'id'"),
    ({"id": "x"}, "'status'"),
    ({"id": 3, "status": "done"}, "'id'"),
    ({"id": "x", "status": "done", "history": {"epoch": 1}}, "'history'"),
    ({"id": "x", "status": "done", "history": [3]}, "'history'"),
    ({"id": "x", "status": "done", "wall_time": "fast"}, "'wall_time'"),
    ({"id": "x", "status": "done", "resumed_from": True}, "'resumed_from'"),
    ({"id": "x", "status": "done", "snapshots": [1.5]}, "'snapshots'"),
])
def test_a_malformed_record_is_refused_naming_the_key(obj, names):
    with pytest.raises(ValueError, match=names):
        RunRecord.from_json(obj)


def _table(path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in ("time", "elapsed")} for row in csv.DictReader(f)]


def test_a_sweep_folder_written_before_run_records_loads_and_resumes(tmp_path):
    folder = tmp_path / "sw"
    shutil.copytree(OLD_SWEEP, folder)
    old_results = {p.parent.name: json.loads(p.read_text()) for p in (folder / "runs").glob("*/result.json")}
    res = load_sweep(folder)
    assert sorted(o.status for o in res) == ["done", "done", "failed"]
    for o in res:
        stored = old_results[o.id]
        assert o.history == stored["history"] and o.wall_time == stored["wall_time"]
        if o.status == "done":
            assert o.ledger_summary == stored["ledger_summary"] and o.resumed_from == 0
            assert o.snapshot_epochs == stored["snapshots"]
        else:
            assert o.error == stored["error"] and "boom: synthetic data failure" in o.error
    assert len(res.rows) == 4  # two done runs × two epochs
    # a rerun of the same runs skips the two finished ones and retries the failed one
    cfgs = [o.config for o in res]
    events = []
    again = run_sweep(cfgs, folder, executor="stack", progress=False, on_event=events.append)
    assert again.complete
    failed_id = next(o.id for o in res if o.status == "failed")
    assert {e["run_id"] for e in events} == {failed_id}
    for o in res:
        if o.status == "done":  # untouched: the old record is still what the folder holds
            assert json.loads((folder / "runs" / o.id / "result.json").read_text()) == old_results[o.id]
            assert again[o.id].history == o.history
    assert strip_times(again[failed_id].history) == strip_times(train(again[failed_id].config).history)
    # the new table holds the old runs' rows exactly as the old code wrote them, and the retried run's
    old_rows = _table(OLD_SWEEP / "table.csv")
    new_rows = _table(folder / "table.csv")
    assert [r for r in new_rows if r["run_id"] != failed_id] == old_rows
    assert len([r for r in new_rows if r["run_id"] == failed_id]) == 2


def strip_times(history):
    return [{k: v for k, v in r.items() if k not in ("time", "elapsed")} for r in history]


def test_a_result_json_that_is_not_a_run_record_counts_as_missing(tmp_path):
    folder = tmp_path / "sw"
    shutil.copytree(OLD_SWEEP, folder)
    done = next(o for o in load_sweep(folder) if o.status == "done")
    path = folder / "runs" / done.id / "result.json"
    path.write_text(json.dumps({"id": done.id, "status": "done", "history": "not a list"}))
    assert next(o for o in load_sweep(folder) if o.id == done.id).status != "done"
