"""run_sweep: stacked members equal their solo runs; the folder, table and manifest; skip, resume,
Ctrl-C, failures; another sweep in the folder; the CLI."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch

from lrdecay.sweep import SpecError, load_sweep, run_sweep
from lrdecay.sweep.spec import run_id
from lrdecay.trainer import TrainConfig, Trainer, train

from support import fused_configs, member_configs, strip, table, tiny, toy_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------- stacked == solo
def _flat_numbers(history):
    from lrdecay.trainer.logs import flatten_record

    return [{k: v for k, v in flatten_record(r).items() if isinstance(v, (int, float))} for r in strip(history)]


def _nan(v):
    """JSON stores NaN as null: back to NaN for an array comparison."""
    if isinstance(v, list):
        return np.asarray([_nan(x) for x in v])
    return np.nan if v is None else v


def test_stacked_members_with_a_validation_split_equal_their_solo_runs(tmp_path):
    # members of one data key share one build of the data; each carves the same split from it (not a split
    # of the split), trains on the rest and reads its validation error every epoch
    base = TrainConfig(preset="ps10", n_train=900, n_test=200, label_noise=0.2, width=16, depth=2, epochs=5,
                       batch_size=64, schedule="auto_val", val_fraction=0.1, auto_window=3, max_decays=1, seed=3,
                       device="cpu", progress=False, plots=False)
    cfgs = [base, base.replace(lr=0.05), base.replace(gamma=0.5)]
    res = run_sweep(cfgs, tmp_path / "sw", executor="stack", progress=False)
    assert res.complete
    for c in cfgs:
        out = res[c]
        assert json.load(open(os.path.join(out.out_dir, "result.json")))["stacked"] == len(cfgs)
        assert out.history[0]["presented"] == 810
        assert strip(out.history) == strip(train(c).history), c


def test_stacked_members_equal_their_solo_runs(tmp_path):
    # bitwise for optimizer="fused" members (the stacked step does FusedSGD's arithmetic, one thread);
    # optimizer="torch" members' solo runs use torch's fused CPU SGD kernel, whose scalar tail loop
    # rounds weight decay without a fused multiply-add: numbers then agree to float32 rounding.
    cfgs = [c.replace(probe_groups=True, eval_train=True) for c in member_configs()]
    res = run_sweep(cfgs, tmp_path / "sw", executor="stack", progress=False)
    assert res.complete and len(res) == len(cfgs)
    for c in cfgs:
        out = res[c]
        assert json.load(open(os.path.join(out.out_dir, "result.json")))["stacked"] == len(cfgs)
        solo = train(c)
        if c.optimizer == "fused":
            # every per-epoch number: train loss/acc per group, memorized, test sets, eval-mode train pass, lr
            assert strip(out.history) == strip(solo.history), c
            for k, v in solo.summary().items():
                np.testing.assert_array_equal(_nan(out.ledger_summary[k]), np.asarray(v))
        else:
            assert strip(train(c.replace(optimizer="fused")).history) == strip(out.history)
            for got, want in zip(_flat_numbers(out.history), _flat_numbers(solo.history), strict=True):
                assert got.keys() == want.keys()
                for k in want:
                    tol = 1e-5 if "loss" in k else 2.0 / c.n_test if "test" in k else 2.0 / c.n_train
                    assert abs(got[k] - want[k]) <= tol, (k, got[k], want[k])


def test_stacked_run_writes_a_plain_trainer_checkpoint(tmp_path):
    cfgs = member_configs()[:2]
    res = run_sweep(cfgs, tmp_path / "sw", executor="stack", progress=False)
    for c in cfgs:  # a FusedSGD member and a torch.optim.SGD + scheduler member
        # the member's checkpoint loads in the plain trainer (signature, model, optimizer, ledger)
        t = Trainer(c, resume=os.path.join(res[c].out_dir, "checkpoint.pt"))
        assert t.epoch == 3 and strip(t.history) == strip(res[c].history)
        assert 3 in t.ledger.history().shape
    solo = Trainer(cfgs[0])
    solo.fit()
    t = Trainer(cfgs[0], resume=os.path.join(res[cfgs[0]].out_dir, "checkpoint.pt"))
    for k, v in solo.model.state_dict().items():
        assert torch.equal(t.model.state_dict()[k], v), k
    a, b = solo.optimizer.state_dict(), t.optimizer.state_dict()
    assert a["param_groups"] == b["param_groups"]  # hyperparameters and the schedule position
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        assert torch.equal(a["state"][i]["momentum_buffer"], b["state"][i]["momentum_buffer"])


@pytest.mark.slow
def test_no_stack_and_stack_give_the_same_table(tmp_path):
    cfgs = fused_configs()
    run_sweep(cfgs, tmp_path / "a", executor="stack", progress=False)
    run_sweep(cfgs, tmp_path / "b", executor="stack", stack=False, progress=False)
    assert table(tmp_path / "a" / "table.csv") == table(tmp_path / "b" / "table.csv")


# ---------------------------------------------------------------------------- folder, table, manifest
def test_folder_table_and_manifest(tmp_path):
    spec = {"name": "demo", "seeds": 2, "base": tiny().to_dict() | {"seed": 0},
            "grid": {"lr": [0.05, 0.1]}, "settings": [{"name": "decay", "schedule": "multistep"},
                                                        {"name": "flat", "schedule": "constant"}]}
    spec["base"].pop("seed")
    res = run_sweep(spec, tmp_path / "sw", executor="stack", progress=False)
    out = tmp_path / "sw"
    assert {"sweep.json", "table.csv", "runs.csv", "runs"} <= set(os.listdir(out))
    manifest = json.load(open(out / "sweep.json"))
    assert manifest["name"] == "demo" and manifest["counts"]["done"] == 8 and manifest["failed"] == []
    ids = [r["id"] for r in manifest["runs"]]
    assert sorted(ids) == sorted(os.listdir(out / "runs"))
    for r in manifest["runs"]:
        assert r["id"] == run_id(TrainConfig.from_dict(r["config"]))
        assert {"config.json", "log.jsonl", "checkpoint.pt", "ledger.npz", "result.json"} <= set(os.listdir(out / "runs" / r["id"]))
    rows = table(out / "table.csv")
    assert len(rows) == 8 * 3  # runs × epochs
    cols = list(rows[0])
    assert cols[:5] == ["run_id", "setting", "seed", "config.lr", "config.schedule"]
    assert {"epoch", "lr", "train_loss", "train_acc", "memorized", "test.test.acc"} <= set(cols)
    # a row holds its run's record, flattened
    r0 = res[TrainConfig.from_dict(manifest["runs"][0]["config"])]
    first = [r for r in rows if r["run_id"] == r0.id]
    assert [int(r["epoch"]) for r in first] == [1, 2, 3]
    assert float(first[-1]["test.test.acc"]) == r0.final["test"]["test"]["acc"]
    assert first[0]["setting"] == "decay" and first[0]["config.lr"] == "0.05"
    # the Python view of the same table
    assert len(res.records()) == 24 and res.columns[:5] == cols[:5]
    again = load_sweep(out)
    assert [o.id for o in again] == [o.id for o in res] and again.records() == res.records()


def test_parquet_table_when_pyarrow_is_installed(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    res = run_sweep(member_configs()[:2], tmp_path / "sw", executor="stack", progress=False)
    t = pq.read_table(tmp_path / "sw" / "table.parquet").to_pylist()
    assert len(t) == len(res.rows)
    assert [r["train_loss"] for r in t] == [r["train_loss"] for r in res.rows]


def test_frame_when_pandas_is_installed(tmp_path):
    pd = pytest.importorskip("pandas")
    res = run_sweep(member_configs()[:2], tmp_path / "sw", executor="stack", progress=False)
    df = res.frame()
    assert isinstance(df, pd.DataFrame) and len(df) == 6
    assert df.groupby("run_id")["epoch"].max().tolist() == [3, 3]


# ---------------------------------------------------------------------------- skip, resume, Ctrl-C
def test_rerun_skips_finished_runs(tmp_path):
    cfgs = member_configs()[:3]
    run_sweep(cfgs, tmp_path / "sw", executor="stack", progress=False)
    events = []
    res = run_sweep(cfgs, tmp_path / "sw", executor="stack", progress=False, on_event=events.append)
    assert events == [] and res.complete


@pytest.mark.parametrize("stack", [True, False])
@pytest.mark.slow
def test_ctrl_c_then_rerun_equals_an_uninterrupted_sweep(tmp_path, stack):
    cfgs = fused_configs()
    run_sweep(cfgs, tmp_path / "full", executor="stack", stack=stack, progress=False)
    sent = []

    def ctrl_c_at_the_second_epoch(event):
        if event["event"] == "epoch" and event["epoch"] == 2 and not sent:
            sent.append(event["run_id"])
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt, match="rerun the same command to resume"):
        run_sweep(cfgs, tmp_path / "cut", executor="stack", stack=stack, progress=False,
                  on_event=ctrl_c_at_the_second_epoch)
    partial = load_sweep(tmp_path / "cut")
    states = [o.status for o in partial]
    assert "partial" in states and "failed" not in states  # stopped with a checkpoint, not crashed
    res = run_sweep(cfgs, tmp_path / "cut", executor="stack", stack=stack, progress=False)
    assert res.complete
    assert any((o.resumed_from or 0) > 0 for o in res)
    assert table(tmp_path / "cut" / "table.csv") == table(tmp_path / "full" / "table.csv")


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    real = Trainer.build_datasets

    def flaky(cfg):
        if cfg.seed == 13:
            raise RuntimeError("boom: synthetic data failure")
        return real(cfg)

    monkeypatch.setattr(Trainer, "build_datasets", staticmethod(flaky))
    cfgs = [tiny(seed=0), tiny(seed=13), tiny(seed=1, model="resnet20", width=2)]
    res = run_sweep(cfgs, tmp_path / "sw", executor="stack", progress=False)
    assert [o.status for o in res] == ["done", "failed", "done"]
    bad = res[cfgs[1]]
    assert "boom: synthetic data failure" in bad.error and "Traceback" in bad.error
    manifest = json.load(open(tmp_path / "sw" / "sweep.json"))
    assert manifest["counts"]["failed"] == 1 and manifest["failed"][0]["id"] == bad.id
    assert "boom" in manifest["failed"][0]["error"]
    rows = table(tmp_path / "sw" / "table.csv")
    assert {r["run_id"] for r in rows} == {res[cfgs[0]].id, res[cfgs[2]].id}
    # a rerun retries the failed run (and only it)
    monkeypatch.setattr(Trainer, "build_datasets", staticmethod(real))
    events = []
    res = run_sweep(cfgs, tmp_path / "sw", executor="stack", progress=False, on_event=events.append)
    assert res.complete and {e["run_id"] for e in events} == {bad.id}


@pytest.mark.slow
def test_a_failing_stacked_group_fails_its_members_only(tmp_path, monkeypatch):
    from lrdecay.trainer import stacked

    def broken(self, idx):
        raise RuntimeError("stacked step exploded")

    monkeypatch.setattr(stacked.StackedEngine, "_step", broken)
    cfgs = member_configs()[:3] + [tiny(seed=4, model="resnet20", width=2)]
    res = run_sweep(cfgs, tmp_path / "sw", executor="stack", progress=False)
    assert [o.status for o in res] == ["failed"] * 3 + ["done"]
    assert all("stacked step exploded" in o.error for o in res.failed)


# ---------------------------------------------------------------------------- the folder guards
def test_a_folder_holding_another_sweep_is_refused_before_any_run(tmp_path):
    run_sweep([tiny(seed=0)], tmp_path / "sw", executor="stack", progress=False)
    before = sorted(os.listdir(tmp_path / "sw" / "runs"))
    with pytest.raises(SpecError, match="holds another sweep"):
        run_sweep([tiny(seed=5)], tmp_path / "sw", executor="stack", progress=False)
    assert sorted(os.listdir(tmp_path / "sw" / "runs")) == before
    res = run_sweep([tiny(seed=5)], tmp_path / "sw", executor="stack", progress=False, extend=True)
    assert len(res) == 2 and res.complete  # the old run kept, the new one added
    assert len(table(tmp_path / "sw" / "table.csv")) == 6


def test_a_non_sweep_folder_is_refused(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(SpecError, match="not a sweep folder"):
        run_sweep([tiny()], tmp_path / "x", executor="stack", progress=False)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="executor must be one of"):
        run_sweep([tiny()], tmp_path / "a", executor="gpu")
    with pytest.raises(ValueError, match="max_members must be an int >= 1"):
        run_sweep([tiny()], tmp_path / "a", max_members=0)
    with pytest.raises(TypeError, match=r"runs\[0\] must be a TrainConfig"):
        run_sweep([{"lr": 0.1}], tmp_path / "a")
    with pytest.raises(ValueError, match="workers must be an int >= 1"):
        run_sweep([tiny()], tmp_path / "a", executor="process", workers=0)
    assert not (tmp_path / "a").exists()


# ---------------------------------------------------------------------------- the CLI
SPEC = toy_spec("cli", "2", tail='[[settings]]\nname = "decay"\nschedule = "multistep"\n[[settings]]\nname = "small"\nschedule = "constant"\nlr = 0.01\n')


def test_cli_sweep(tmp_path, capsys):
    from lrdecay.cli import main

    (tmp_path / "s.toml").write_text(SPEC)
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sw"), "--executor", "stack"]) == 0
    out = capsys.readouterr().out
    assert "4 runs (4 done)" in out
    assert len(table(tmp_path / "sw" / "table.csv")) == 8


def test_cli_exit_status_says_runs_failed(tmp_path, monkeypatch, capsys):
    from lrdecay.cli import EXIT_RUNS_MISSING, EXIT_USAGE, main

    real = Trainer.build_datasets
    monkeypatch.setattr(Trainer, "build_datasets",
                        staticmethod(lambda cfg: (_ for _ in ()).throw(RuntimeError("nope")) if cfg.lr == 0.01 else real(cfg)))
    (tmp_path / "s.toml").write_text(SPEC)
    rc = main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sw"), "--executor", "stack", "--no-stack"])
    assert rc == EXIT_RUNS_MISSING != EXIT_USAGE  # not the usage error's status, whatever the count
    err = capsys.readouterr().err
    assert err.count("failed: run") == 2 and "RuntimeError: nope" in err


def test_cli_bad_spec_exits_2_before_any_run(tmp_path, capsys):
    from lrdecay.cli import main

    (tmp_path / "s.toml").write_text(SPEC.replace("[base]", "[base]\nlearning_rate = 1"))
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sw")])
    assert exc.value.code == 2
    assert "unknown TrainConfig field(s) ['learning_rate']" in capsys.readouterr().err
    assert not (tmp_path / "sw").exists()


def test_host_side_schedules_and_snapshots_stack_like_solo_runs(tmp_path):
    # AutoDecay, ReduceLROnPlateau and accuracy milestones decide each member's LR on the host from its
    # own epoch numbers; the stacked optimizer follows each member's decisions; snapshots as solo
    cfgs = [
        tiny(seed=0, epochs=6, schedule="auto", auto_window=3, auto_fraction=5.0, gamma=0.5, snapshot_epochs=[2, 5]),
        tiny(seed=1, epochs=6, schedule="plateau", plateau_patience=0, plateau_threshold=0.05, gamma=0.5),
        tiny(seed=2, epochs=6, schedule="train_acc", decay_train_acc=[0.35, 0.45], gamma=0.3),
        tiny(seed=3, epochs=6, schedule="multistep", milestones=[2, 4], snapshot_epochs=[6]),
    ]
    res = run_sweep(cfgs, tmp_path / "sw", executor="stack", progress=False)
    decayed = 0
    for c in cfgs:
        out = res[c]
        assert json.load(open(os.path.join(out.out_dir, "result.json")))["stacked"] == len(cfgs)
        solo = train(c)
        assert strip(out.history) == strip(solo.history), c.schedule
        decayed += len({r["lr"] for r in out.history}) > 1
        snaps = out.snapshots()
        assert sorted(snaps) == sorted(solo.snapshots) == sorted(c.snapshot_epochs)
        for e in snaps:
            for k, v in solo.snapshots[e].items():
                assert torch.equal(snaps[e][k], v), (e, k)
    assert decayed == len(cfgs)  # every schedule did decay: the host decisions were exercised


def test_the_plan_spreads_workers_over_stacks_by_training_cost(tmp_path):
    # 15 long runs beside 3 + 3 short ones: both workers must get a share of the long ones (by run counts
    # the long stack got one worker and the other idled once the short ones were done)
    from lrdecay.sweep.spec import SweepSpec
    from lrdecay.sweep.tasks import plan_tasks

    long = [TrainConfig(n_train=50_000, epochs=30, width=64, seed=s, lr=lr) for s in range(5) for lr in (0.1, 0.05, 0.01)]
    mid = [TrainConfig(n_train=50_000, epochs=30, width=64, seed=s, schedule="auto_val", val_fraction=0.1)
           for s in range(3)]
    short = [TrainConfig(n_train=5_000, epochs=30, width=64, seed=s) for s in range(3)]
    runs = SweepSpec.from_configs(long + mid + short).runs()
    tasks = plan_tasks(runs, str(tmp_path), stack=True, parallel=2)
    sizes = sorted((len(t.runs) for t in tasks if t.runs[0].config.n_train == 50_000
                    and t.runs[0].config.val_fraction == 0), reverse=True)
    assert sizes == [8, 7]
    costs = [sum(r.config.epochs * r.config.n_train for r in t.runs) for t in tasks]
    assert costs == sorted(costs, reverse=True)  # largest first
    assert sorted(r.id for t in tasks for r in t.runs) == sorted(r.id for r in runs)
