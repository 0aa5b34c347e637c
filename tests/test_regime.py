"""The regime search as a sweep spec plus a selection rule over the sweep's table: which runs the spec
holds (constant runs shared across stage options), how the rule reads the table (each setting at its own
last epoch), the pre-registered selection on crafted tables, the committed search reproduced from its
run log, and a small search trained end to end through the sweep engine (resumed without retraining)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from lrdecay.experiments import prereg
from lrdecay.experiments import regime as r
from lrdecay.experiments import regime_outputs as ro

REGIME_DIR = Path(__file__).resolve().parents[1] / "docs" / "regime"


def _point(**kw):
    base = {"width": 128, "n_train": 20_000, "label_noise": 0.2, "preset": "ps10", "stages": "10-10-10",
            "weight_decay": 5e-4}
    return {**base, **kw}


def _rows(points, seed, accs, *, pre=r.PREREGISTRATION, at=None):
    """Crafted table rows (the sweep table's shape) of the runs ``points`` need on ``seed``: every 5th
    epoch, test accuracy ``accs[role]`` (``at[(role, epoch)]`` overrides one epoch)."""
    rows = []
    for run in r.search_spec(points, [seed], pre).runs():
        role = "lrDecay" if run.setting.startswith("lrDecay") else run.setting
        cfg = {f"config.{k}": v for k, v in run.config.to_dict().items()}
        cfg["config.milestones"] = json.dumps(run.config.milestones)  # as the table writes lists
        for e in range(5, run.config.epochs + 1, 5):
            acc = (at or {}).get((role, e), accs[role])
            rows.append({"run_id": run.id, "setting": run.setting, "seed": seed, **cfg, "epoch": e,
                         "test.test.acc": acc, "test.probe_complex.acc": 0.5, "train_acc": 0.7,
                         "memorized": 0.1, "train_eval.memorized": 0.1, "elapsed": 2.0 * e})
    return rows


# ---------------------------------------------------------------------------------------- the spec
@pytest.mark.slow
def test_spec_is_the_grid_times_four_settings():
    d = r.spec_dict()
    assert d["seeds"] == [1000] and set(d["grid"]) == set(r.GRID) - {"stages"}
    assert [s["name"] for s in d["settings"]] == ["lrDecay 10-10-10", "lrDecay 10-5-5", "large", "small"]
    runs = r.search_spec().runs()
    assert len(runs) == 72 * 4  # 72 points without stages: their 144 lrDecay runs and 2 × 72 constant runs
    by = {}
    for run in runs:
        by.setdefault(run.setting, []).append(run.config)
    assert all(c.schedule == "multistep" and c.milestones == [10, 15] and c.epochs == 20
               for c in by["lrDecay 10-5-5"])
    assert all(c.schedule == "constant" and c.epochs == 30 and c.lr == 0.1 for c in by["large"])
    assert all(c.schedule == "constant" and c.epochs == 30 and c.lr == r.FIXED["lr_small"] for c in by["small"])
    assert all(c.eval_train and c.depth == 3 and c.model == "mlp" and c.n_test == 5000 for c in by["small"])


def test_constant_runs_are_shared_across_stage_options():
    spec = r.search_spec([_point(stages="10-10-10"), _point(stages="10-5-5")], [1000])
    assert sorted(run.setting for run in spec.runs()) == ["large", "lrDecay 10-10-10", "lrDecay 10-5-5", "small"]
    assert len(r.search_spec([_point(stages="10-5-5")], [1000, 1001]).runs()) == 6


def test_spec_refuses_held_out_seeds():
    with pytest.raises(prereg.SeedPolicyError, match=r"seeds \[11\] are held-out"):
        r.spec_dict([1000, 11])
    with pytest.raises(prereg.SeedPolicyError):
        r.search_spec([_point()], [14])


# ---------------------------------------------------------------------------------------- the rule
def test_outcomes_read_each_setting_at_its_last_epoch():
    p = _point(stages="10-5-5")
    # the shared 30-epoch constant runs have another value at epoch 30
    rows = _rows([p], 1000, {"lrDecay": 0.8, "large": 0.7, "small": 0.75}, at={("large", 30): 0.99,
                                                                                ("small", 30): 0.99})
    (o,) = r.outcomes(rows, [p], [1000])
    assert o["test_acc_large"] == 0.7 and o["test_acc_small"] == 0.75  # read at epoch 20, not 30
    assert o["margin"] == pytest.approx(0.05) and o["premise"]
    assert o["wall_lrDecay"] == 40.0  # the lrDecay run's elapsed at its last epoch
    # a run of another base setting is not the search's
    other = [{**row, "config.momentum": 0.5} if row["setting"] == "large" else row for row in rows]
    assert r.outcomes(other, [p], [1000]) == []


def test_selection_follows_the_criterion():
    a = _point(width=128)
    b = _point(width=256)
    c = _point(width=512, n_train=50_000)  # the biggest margin but over the cost limit for quick
    d = _point(width=128, n_train=50_000)  # fails one pilot seed
    margins = {r.setting_id(a): (0.05, 0.04, 0.03), r.setting_id(b): (0.06, 0.05, 0.035),
               r.setting_id(c): (0.09, 0.08, 0.07), r.setting_id(d): (0.10, 0.10, 0.01)}
    pts = [a, b, c, d]
    pre = dataclasses.replace(r.PREREGISTRATION, criterion={**r.PREREGISTRATION.criterion,
                                                            "cost_limit_s": r.cost_s(b)})  # b within, c not

    def rows_for(margin_of):
        rows = []
        for k, seed in enumerate((1000, 1001, 1002)):
            for p in pts:
                m = margin_of(p, seed, margins[r.setting_id(p)][k])
                rows += _rows([p], seed, {"lrDecay": 0.8 + m, "large": 0.8, "small": 0.78}, pre=pre)
        return rows

    outs = r.outcomes(rows_for(lambda p, s, m: m), pts, [1000, 1001, 1002], pre)
    cand = r.confirm_candidates(outs, pre)
    assert {r.setting_id(p) for p in cand} == {r.setting_id(p) for p in pts}  # all pass the phase-1 seed
    sel = r.select(outs, pre)
    assert r.setting_id(sel["quick"]) == r.setting_id(b)  # 0.035 > 0.03 (a); c too costly; d fails a seed
    assert r.setting_id(sel["full"]) == r.setting_id(c)
    assert r.setting_id(d) not in sel["passing_all_pilot_seeds"]
    # a tie within 0.001 goes to the cheaper setting
    tie = rows_for(lambda p, s, m: 0.0345 if p is a and s == 1002 else m)
    assert r.setting_id(r.select(r.outcomes(tie, pts, [1000, 1001, 1002], pre), pre)["quick"]) == r.setting_id(a)


def test_nothing_passes_gives_no_pick():
    p = _point()
    rows = []
    for seed in (1000, 1001, 1002):
        rows += _rows([p], seed, {"lrDecay": 0.80, "large": 0.79, "small": 0.70})
    sel = r.select(r.outcomes(rows, [p], [1000, 1001, 1002]))
    assert sel["quick"] is None and sel["full"] is None  # margin 0.01 < 0.02 on every seed


def test_the_committed_search_is_reproduced_from_its_run_log():
    """The port's acceptance test: the first search's runs (runs.jsonl) in the sweep table's shape, under
    the selection rule, give the committed selection.json exactly."""
    rows = ro.legacy_table_rows(ro.read_legacy_runs(str(REGIME_DIR / "runs.jsonl")))
    assert len({row["run_id"] for row in rows}) == 333 and all("config.width" in row for row in rows)
    points = r.grid_points()
    outs = r.outcomes(rows, points, [*r.PILOT_SEEDS, *r.CONFIRM_SEEDS])
    sel = r.select(outs)
    sel["phase2_candidates"] = [r.setting_id(p) for p in r.confirm_candidates(outs)]
    recorded = json.loads((REGIME_DIR / "selection.json").read_text(encoding="utf-8"))
    assert json.loads(json.dumps(sel)) == recorded


# ---------------------------------------------------------------------------------------- end to end
SMALL = """\
format = 1
name = "small-test"
data = "patterns"
[grid]
width = [16]
n_train = [256]
label_noise = [0.2]
preset = ["toy"]
stages = ["2-2", "2-1"]
weight_decay = [0.0005, 0.002]
[stages."2-2"]
milestones = [2]
epochs = 4
[stages."2-1"]
milestones = [2]
epochs = 3
[fixed]
model = "mlp"
depth = 2
batch_size = 64
lr = 0.1
lr_small = 0.01
momentum = 0.9
gamma = 0.1
n_test = 128
probe_groups = true
eval_every = 1
[seeds]
pilot = [1000]
confirm = [1001]
held_out = { quick = [10] }
[criterion]
premise_margin = -1.0
n_confirm = 1
cost_limit_s = 100.0
tie_tolerance = 0.001
epoch_s_per_32k = { "16" = 0.1 }
"""


@pytest.mark.slow
def test_a_small_search_trains_through_the_sweep_engine_and_resumes(tmp_path, monkeypatch, capsys,
                                                                   one_torch_thread):
    path = tmp_path / "small.toml"
    path.write_text(SMALL, encoding="utf-8")
    pre = prereg.load(path)
    assert not pre.committed
    out = tmp_path / "search"
    from lrdecay.cli import main

    assert main(["regime", "--out", str(out), "--workers", "1", "--preregistration", str(path)]) == 0
    stdout = capsys.readouterr().out
    assert f"pre-registration 'small-test' (small.toml) sha256 {pre.sha256}: NOT a committed file" in stdout
    sel = json.loads((out / "selection.json").read_text(encoding="utf-8"))
    from lrdecay.sweep import load_sweep

    res = load_sweep(out / "sweep")
    # phase 1: 2 points without stages × 4 settings; phase 2: the one candidate's 3 runs on seed 1001
    assert len(res.runs) == 8 + 3 and not res.failed
    assert sel["quick"] is not None and sel["phase2_candidates"] == [r.setting_id(sel["quick"])]
    ranking = {x["setting"]: x for x in sel["ranking"]}
    assert len(ranking) == 4 and len(ranking[sel["phase2_candidates"][0]]["seeds"]) == 2
    # the rule's numbers are the runs' own: lrDecay's test accuracy at its last epoch
    table = r.search_table(str(out), pre)
    outs = r.outcomes(table, r.grid_points(pre.grid), [1000], pre)
    for o in outs:
        (run,) = [x for x in res.runs if x.run.setting == f"lrDecay {o['stages']}" and x.run.seed == 1000
                  and x.config.weight_decay == o["weight_decay"]]
        assert o["test_acc_lrDecay"] == run.history[-1]["test"]["test"]["acc"]
        (large,) = [x for x in res.runs if x.run.setting == "large" and x.run.seed == 1000
                    and x.config.weight_decay == o["weight_decay"]]
        epoch = pre.stages[o["stages"]]["epochs"]
        assert o["test_acc_large"] == large.history[epoch - 1]["test"]["test"]["acc"]
    for name in ("table.csv", "selection.json", "regime_map.png", "REGIME.md"):
        assert (out / name).is_file()
    assert "NOT a committed file" in (out / "REGIME.md").read_text(encoding="utf-8")
    # a second call trains nothing and picks the same
    import lrdecay.sweep

    monkeypatch.setattr(lrdecay.sweep, "run_sweep", lambda *a, **k: pytest.fail("trained again"))
    assert r.run_search(str(out), workers=1, progress=False, pre=pre) == json.loads(
        (out / "selection.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('data = "patterns"', 'data = "fashion-mnist"'), "data must be 'patterns'"),
    (lambda t: t.replace("tie_tolerance = 0.001\n", ""), "criterion lacks ['tie_tolerance']"),
    (lambda t: t.replace('epoch_s_per_32k = { "16" = 0.1 }', 'epoch_s_per_32k = { "32" = 0.1 }'),
     "epoch_s_per_32k lacks the width(s) [16]"),
    (lambda t: t.replace("n_train = [256]\n", ""), "grid lacks ['n_train']"),
])
def test_regime_refuses_a_file_that_is_not_a_regime_search(tmp_path, capsys, edit, message):
    from lrdecay.cli import main

    path = tmp_path / "bad.toml"
    path.write_text(edit(SMALL), encoding="utf-8")
    out = tmp_path / "search"
    with pytest.raises(SystemExit) as e:
        main(["regime", "--out", str(out), "--preregistration", str(path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    with pytest.raises(SystemExit) as e:
        main(["regime", "--out", str(out), "--preregistration", str(tmp_path / "none.toml")])
    assert e.value.code == 2 and "no such file" in capsys.readouterr().err
