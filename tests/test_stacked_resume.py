"""A stacked sweep of host-side schedules (auto, plateau, train_acc), stopped after their LRs were lowered
and rerun, gives every number of the uninterrupted sweep: the resumed members train at the LR their
deciders had set, not at the base LR."""

from __future__ import annotations

import csv
import json
import os
import signal

import pytest

from lrdecay.sweep import load_sweep, run_sweep
from lrdecay.trainer import TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def host_schedule_configs() -> list[TrainConfig]:
    """Members that stack together and whose LR is decided on the host from their own epoch numbers."""
    base = dict(preset="toy", n_train=300, n_test=100, label_noise=0.2, width=8, depth=2, epochs=7,
                batch_size=64, device="cpu", progress=False, plots=False, gamma=0.5)
    return [
        TrainConfig(**base, seed=0, schedule="auto", auto_window=3, auto_fraction=5.0),
        TrainConfig(**base, seed=1, schedule="plateau", plateau_patience=0, plateau_threshold=0.05),
        TrainConfig(**{**base, "gamma": 0.3}, seed=2, schedule="train_acc", decay_train_acc=[0.35, 0.45]),
    ]


def read_table(path) -> list[dict]:
    """The sweep's table without the wall-clock columns."""
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in ("time", "elapsed")} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_stopped_and_resumed_host_schedules_equal_an_uninterrupted_stacked_sweep(tmp_path):
    cfgs = host_schedule_configs()
    full = run_sweep(cfgs, tmp_path / "full", executor="stack", progress=False)
    assert full.complete
    for c in cfgs:
        assert json.load(open(os.path.join(full[c].out_dir, "result.json")))["stacked"] == len(cfgs)
    # stop at the first epoch end after which every member trains at a lowered LR: the rerun must
    # start each member at its decider's LR
    lowered = [min(i for i, r in enumerate(full[c].history) if r["lr"] < c.lr) for c in cfgs]
    stop_at = max(lowered)  # epoch records are 1-based: history[stop_at] is epoch stop_at + 1
    assert 1 <= stop_at < cfgs[0].epochs - 1, lowered

    sent = []

    def ctrl_c(event):
        if event["event"] == "epoch" and event["epoch"] == stop_at and not sent:
            sent.append(event["run_id"])
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfgs, tmp_path / "cut", executor="stack", progress=False, on_event=ctrl_c)
    cut = load_sweep(tmp_path / "cut")
    assert [o.status for o in cut] == ["partial"] * len(cfgs)
    res = run_sweep(cfgs, tmp_path / "cut", executor="stack", progress=False)
    assert res.complete
    for c in cfgs:
        assert res[c].resumed_from == stop_at
        result = json.load(open(os.path.join(res[c].out_dir, "result.json")))
        assert result["stacked"] == len(cfgs)  # resumed stacked, not alone
    assert read_table(tmp_path / "cut" / "table.csv") == read_table(tmp_path / "full" / "table.csv")
