"""The experiments on their ``tiny`` preset through the one runner (result structure, statistics, the
verdict is the rule applied to the numbers, shared runs trained once, resume), the experiment records and
their settings checks, and every rule flipped by crafted numbers."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from lrdecay import experiments
from lrdecay.experiments import base, common, runner
from lrdecay.experiments.common import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED

STATUSES = {SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE}


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("report"))
    results = experiments.run_all(experiments.EXPERIMENTS, "tiny", out_dir=out, workers=1, progress=False)
    return results, out


def test_registry_names_and_records():
    assert list(experiments.NAMES.values()) == [f"C{i}" for i in range(1, 8)]
    for name, claim in experiments.NAMES.items():
        e = experiments.get(name)
        assert isinstance(e, runner.Experiment)
        assert e.name == name and e.claim == claim
        assert set(e.presets) == {"tiny", "quick", "full", *base.MAP_PICKS} == set(experiments.PRESETS)
        for pick, changes in base.MAP_PICKS.items():  # a pick is the quick preset at the picked grid point
            assert e.presets[pick] == {**e.presets["quick"], **changes}
        assert isinstance(e.rule, str) and len(e.rule) > 40 and e.verdict_keys
    with pytest.raises(ValueError, match="experiment must be one of"):
        experiments.get("nope")


@pytest.mark.parametrize("name", list(experiments.NAMES))
def test_preset_keys_are_config_fields_or_declared_options(name):
    e = experiments.get(name)
    for preset in e.presets:
        runner.resolve_settings(e, preset)  # raises on an unknown key
    with pytest.raises(ValueError, match="unknown setting"):
        runner.resolve_settings(e, "tiny", overrides={"widht": 3})


def test_held_out_seeds_are_not_pilot_seeds():
    from lrdecay.experiments import regime

    pilot = {*regime.PILOT_SEEDS, *regime.CONFIRM_SEEDS}
    for name in experiments.NAMES:
        for preset in ("quick", "full"):
            seeds = experiments.get(name).presets[preset]["seeds"]
            assert not pilot & set(seeds), (name, preset)
    assert len(experiments.get("stages").presets["quick"]["seeds"]) >= 3
    assert len(experiments.get("stages").presets["full"]["seeds"]) >= 5


@pytest.mark.parametrize("name", list(experiments.NAMES))
@pytest.mark.slow
def test_result_structure(tiny_results, name):
    results, out = tiny_results
    r = results[name]
    json.dumps(r, allow_nan=False)  # JSON-serializable, no NaN
    for key in ("name", "claim", "title", "claim_text", "setup", "preset", "settings", "seeds", "per_seed",
                "summary", "verdict_keys", "table", "curves", "verdict", "plots", "training", "wall_time"):
        assert key in r, key
    assert r["name"] == name and r["preset"] == "tiny"
    assert len(r["seeds"]) >= 3
    for k, vals in r["per_seed"].items():
        assert len(vals) == len(r["seeds"]), k
        if k in r["summary"]:
            finite = [v for v in vals if v is not None]
            s = r["summary"][k]
            if finite:
                assert s["mean"] == pytest.approx(float(np.mean(finite)))
                assert s["std"] == pytest.approx(float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0)
    for k in r["verdict_keys"]:
        assert k in r["per_seed"], k
    assert all(len(row) == len(r["table"]["headers"]) for row in r["table"]["rows"])
    assert r["table"]["rows"]
    assert r["plots"]
    for p in r["plots"]:
        assert os.path.getsize(os.path.join(out, p)) > 1000
    e = experiments.get(name)
    assert r["verdict"]["status"] in STATUSES
    assert r["verdict"]["status"] == e.judge(r["per_seed"]).status
    assert r["verdict"]["rule"] == e.rule


@pytest.mark.slow
def test_shared_runs_are_trained_once(tiny_results):
    results, out = tiny_results
    # base runs: 3 schedules × 3 seeds; gd: SGD + GD × 3; autodecay: 3 extra arms (auto, auto_val, plateau) × 3
    runs = os.path.join(out, "runs", "runs")
    assert len([d for d in os.listdir(runs) if os.path.isdir(os.path.join(runs, d))]) == 9 + 6 + 9
    assert results["beliefs"]["training"]["shared_runs"] == 9
    assert results["gd"]["training"]["shared_runs"] == 0
    assert results["autodecay"]["training"] == {**results["autodecay"]["training"], "runs": 12, "shared_runs": 3}


@pytest.mark.slow
def test_rerun_reads_runs_back_and_gives_the_same_numbers(tiny_results):
    results, out = tiny_results
    again = experiments.run_all(["memorization", "gd"], "tiny", out_dir=out, workers=1, progress=False)
    for name in ("memorization", "gd"):
        assert again[name]["per_seed"] == results[name]["per_seed"]
        assert again[name]["training"]["cached_runs"] == again[name]["training"]["runs"]


@pytest.mark.parametrize("executor", ["process", "stack"])
@pytest.mark.slow
def test_every_executor_gives_the_same_numbers(tiny_results, tmp_path, executor):
    results, _ = tiny_results
    other = experiments.run_all(["stages"], "tiny", out_dir=str(tmp_path), workers=2, executor=executor,
                                progress=False)
    assert other["stages"]["per_seed"] == results["stages"]["per_seed"]


@pytest.mark.slow
def test_memorization_reads_the_eval_mode_pass(tiny_results):
    results, _ = tiny_results
    r = results["memorization"]
    e1 = r["settings"]["milestones"][0]
    mean_curve = r["curves"]["memorized_eval"]["lrDecay"]["mean"]
    assert mean_curve[e1 - 1] == pytest.approx(r["summary"]["mem_eval_stage1_lrDecay"]["mean"])
    mean_ledger = r["curves"]["memorized_epoch"]["small"]["mean"]
    assert mean_ledger[e1 - 1] == pytest.approx(r["summary"]["mem_epoch_stage1_small"]["mean"])
    for v in r["per_seed"]["mem_eval_stage1_small"]:
        assert 0.0 <= v <= 1.0


@pytest.mark.slow
def test_gd_decays_at_sgd_accuracy(tiny_results):
    results, out = tiny_results
    r = results["gd"]
    for d_gd, acc_sgd, acc_gd in zip(r["per_seed"]["decay1_gd"], r["per_seed"]["train_acc_at_decay1_sgd"],
                                     r["per_seed"]["train_acc_at_decay1_gd"]):
        if d_gd is not None:  # GD decayed the first time its accuracy reached SGD's at SGD's decay
            assert acc_gd >= acc_sgd


def test_transfer_target_shares_only_the_easy_pattern():
    from lrdecay.data import pattern_dataset
    from lrdecay.experiments import transfer

    s = transfer.PRESETS["tiny"]
    train, _ = transfer.target_datasets(s, seed=3)
    src = pattern_dataset(2000, preset=s["preset"], seed=3)
    easy, cplx = src.pattern_slices["easy"], src.pattern_slices["complex"]
    g = train["group"]
    for c in range(src.n_classes):
        a = src.x[(src.group == 0) & (src.y_clean == c), easy].mean(0)
        shared = train["x"][(g == 0) & (train["y"] == c), easy].mean(0)
        new = train["x"][(g == 1) & (train["y"] == c), easy].mean(0)
        assert np.linalg.norm(a - shared) < 0.25 * np.linalg.norm(a)  # same centres, same labels
        assert np.linalg.norm(a - new) > 0.5 * np.linalg.norm(a)  # new centres
    # nothing in the complex block: its per-class means are ~0 for every target sample
    for c in range(src.n_classes):
        m = train["x"][train["y"] == c, cplx].mean(0)
        assert np.linalg.norm(m) < 0.3


def test_settings_checks_before_any_training(tmp_path):
    with pytest.raises(ValueError, match="preset must be one of"):
        experiments.run("memorization", "huge")
    with pytest.raises(ValueError, match="unknown setting"):
        experiments.run("memorization", "tiny", overrides={"nope": 1})
    with pytest.raises(ValueError, match="seeds must be"):
        experiments.run("memorization", "tiny", seeds=0)
    with pytest.raises(ValueError, match="seeds must be"):
        experiments.run("memorization", "tiny", seeds=[-1])
    with pytest.raises(ValueError, match="distinct"):
        experiments.run("memorization", "tiny", seeds=[1, 1])
    e = experiments.get("memorization")
    s = runner.resolve_settings(e, "tiny", overrides={"epochs": 3})
    assert s["epochs"] == 3 and e.presets["tiny"]["epochs"] != 3  # the preset itself is not modified
    assert runner.resolve_seeds(None, 4) == [0, 1, 2, 3] and runner.resolve_seeds([0], [5, 9]) == [5, 9]


def test_run_key_ignores_fields_of_other_schedules():
    from lrdecay.experiments import base

    s = runner.resolve_settings(experiments.get("autodecay"), "tiny")
    a = base.base_runs(s, 0, ("lrDecay",))["lrDecay"]
    b = base.base_runs(runner.resolve_settings(experiments.get("stages"), "tiny"), 0, ("lrDecay",))["lrDecay"]
    assert runner.run_key(a) == runner.run_key(b)
    assert runner.run_key(a) != runner.run_key(a.replace(seed=1))


# ---------------------------------------------------------------------------- crafted numbers flip verdicts
def _n(**kw):
    return {k: list(v) for k, v in kw.items()}


def test_stages_rule():
    from lrdecay.experiments import stages as m

    good = _n(jump_acc_decay1=[0.1, 0.05, 0.03], ratio_acc_decay1=[5, 4, 3.0], ratio_acc_control1=[1, 2, 2.9])
    assert m.judge(good).status == SUPPORTED
    assert m.judge({**good, "jump_acc_decay1": [0.1, 0.05, 0.019]}).status == INCONCLUSIVE
    assert m.judge({**good, "ratio_acc_control1": [1, 2, 3.1]}).status == INCONCLUSIVE
    flat = _n(jump_acc_decay1=[0.0, 0.01, 0.0], ratio_acc_decay1=[1.4, 0.2, -3], ratio_acc_control1=[1, 1, 1])
    assert m.judge(flat).status == NOT_SUPPORTED


def test_gd_rule():
    from lrdecay.experiments import gd as m

    v = [True] * 3
    assert m.judge(_n(ratio_sgd1=[3, 9, 4], ratio_gd1=[1.5, 0.2, -1], valid=v)).status == SUPPORTED
    assert m.judge(_n(ratio_sgd1=[3, 9, 2.9], ratio_gd1=[1.5, 0.2, -1], valid=v)).status == INCONCLUSIVE
    assert m.judge(_n(ratio_sgd1=[3, 9, 4], ratio_gd1=[3, 3.5, 10], valid=v)).status == NOT_SUPPORTED
    assert m.judge(_n(ratio_sgd1=[3, 9, 4], ratio_gd1=[1.6, 1, 1], valid=v)).status == INCONCLUSIVE
    # an invalid seed (fitted before the decay, or both windows flat) is never "smooth"
    assert m.judge(_n(ratio_sgd1=[3, 9, 4], ratio_gd1=[0, 0.2, -1], valid=[False, True, True])).status == INCONCLUSIVE
    assert m.judge(_n(ratio_sgd1=[3, 9, 4], ratio_gd1=[5, 5, 5], valid=[False, True, True])).status == INCONCLUSIVE


def test_gd_validity_from_crafted_runs():
    from types import SimpleNamespace

    from lrdecay.experiments import gd as m

    s = {**m.PRESETS["tiny"], "gd_n_train": 128, "batch_size": 64, "milestones": [2], "epochs": 4}
    assert m.window_steps(19) == 2 and m.window_steps(4) == 1 and m.window_steps(40) == 4

    def run(acc, lrs):
        return SimpleNamespace(history=[{"epoch": i + 1, "train_acc": a, "lr": lr, "test": {"test": {"acc": 0.5}}}
                                        for i, (a, lr) in enumerate(zip(acc, lrs))])

    sgd = run([0.3, 0.4, 0.7, 0.72], [0.1, 0.1, 0.01, 0.01])
    smooth = run([0.1, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55], [0.1] * 4 + [0.01] * 3)  # decays after step 4
    out = m.measure(s, 0, {"sgd": sgd, "gd": smooth})
    assert out["valid"] and out["decay1_gd"] == 4 and out["decay1_sgd"] == 2 and out["window_gd"] == 1
    assert out["ratio_sgd1"] == pytest.approx(0.3 / 0.1)
    assert out["ratio_gd1"] == pytest.approx((0.45 - 0.4) / (0.4 - 0.3))
    flat = run([0.9] * 7, [0.1] * 4 + [0.01] * 3)  # 0/0: never smooth
    assert not m.measure(s, 0, {"sgd": sgd, "gd": flat})["valid"]
    fitted = run([0.5, 0.9, 0.96, 0.97, 0.98, 0.99, 0.99], [0.1] * 4 + [0.01] * 3)  # ≥ 0.95 at the decay
    assert not m.measure(s, 0, {"sgd": sgd, "gd": fitted})["valid"]
    never = run([0.1, 0.2, 0.3, 0.4, 0.45, 0.5, 0.55], [0.1] * 7)  # GD never reached SGD's accuracy
    assert not m.measure(s, 0, {"sgd": sgd, "gd": never})["valid"]


def test_beliefs_rule():
    from lrdecay.experiments import beliefs as m

    good = _n(early_loss_small=[1.0, 1.1, 0.9], early_loss_large=[1.2, 1.1, 1.0],
              final_train_acc_small=[0.98, 0.95, 0.99], final_train_acc_lrDecay=[0.99, 0.97, 0.99],
              final_test_acc_lrDecay=[0.80, 0.81, 0.79], final_test_acc_small=[0.78, 0.80, 0.70],
              final_test_acc_large=[0.75, 0.80, 0.77])
    v = m.judge(good)
    assert v.status == SUPPORTED and v.details["a_no_acceleration"] == SUPPORTED
    v = m.judge({**good, "early_loss_large": [0.5, 0.6, 0.7]})
    assert v.status == NOT_SUPPORTED and v.details["a_no_acceleration"] == NOT_SUPPORTED
    v = m.judge({**good, "final_train_acc_small": [0.98, 0.949, 0.99]})
    assert v.status == INCONCLUSIVE and v.details["b_not_trapped"] == INCONCLUSIVE
    v = m.judge({**good, "final_test_acc_lrDecay": [0.78, 0.80, 0.70]})
    assert v.status == NOT_SUPPORTED and v.details["c_better_than_small"] == NOT_SUPPORTED
    # (d): lrDecay within the margin of the large LR on one seed → inconclusive; below it everywhere → not
    v = m.judge({**good, "final_test_acc_large": [0.75, 0.801, 0.77]})
    assert v.status == INCONCLUSIVE and v.details["d_better_than_large"] == INCONCLUSIVE
    v = m.judge({**good, "final_test_acc_large": [0.85, 0.85, 0.85]})
    assert v.status == NOT_SUPPORTED and v.details["d_better_than_large"] == NOT_SUPPORTED


def test_memorization_rule():
    from lrdecay.experiments import memorization as m

    good = _n(mem_eval_stage1_lrDecay=[0.05, 0.1, 0.0], mem_eval_stage1_small=[0.10, 0.3, 0.2],
              mem_eval_final_lrDecay=[0.3, 0.2, 0.05])
    assert m.judge(good).status == SUPPORTED
    assert m.judge({**good, "mem_eval_stage1_small": [0.099, 0.3, 0.2]}).status == INCONCLUSIVE
    assert m.judge({**good, "mem_eval_final_lrDecay": [0.3, 0.14, 0.05]}).status == INCONCLUSIVE
    bad = _n(mem_eval_stage1_lrDecay=[0.3, 0.2, 0.4], mem_eval_stage1_small=[0.3, 0.1, 0.2],
             mem_eval_final_lrDecay=[1, 1, 1])
    assert m.judge(bad).status == NOT_SUPPORTED
    # the in-epoch (ledger) numbers do not enter the rule
    assert m.judge({**good, "mem_epoch_stage1_lrDecay": [0.9] * 3}).status == SUPPORTED


def test_complexity_rule():
    from lrdecay.experiments import complexity as m

    good = _n(chance=[0.1] * 3, easy_e1=[0.9, 0.95, 0.91], easy_final=[0.95, 0.96, 0.92],
              complex_e1=[0.5, 0.4, 0.6], complex_e2=[0.6, 0.5, 0.65], complex_final=[0.62, 0.5, 0.66],
              complex_e2_large=[0.5, 0.45, 0.62])
    v = m.judge(good)
    assert v.status == SUPPORTED, v.details
    assert m.judge({**good, "easy_e1": [0.9, 0.5, 0.91]}).status == INCONCLUSIVE
    # at e2 the large LR is within the margin on one seed → inconclusive; at least as good everywhere → not
    assert m.judge({**good, "complex_e2_large": [0.5, 0.45, 0.64]}).status == INCONCLUSIVE
    assert m.judge({**good, "complex_e2_large": [0.6, 0.5, 0.65]}).status == NOT_SUPPORTED
    # gains too little after the decay
    assert m.judge({**good, "complex_e2": [0.6, 0.42, 0.65], "complex_e2_large": [0.5, 0.35, 0.62]}).status == INCONCLUSIVE


def test_transfer_rule():
    from lrdecay.experiments import transfer as m

    good = _n(probe_stage1=[0.6, 0.62, 0.61], probe_final=[0.58, 0.61, 0.6], probe_final_large=[0.6, 0.63, 0.62],
              source_test_stage1=[0.7, 0.7, 0.7], source_test_final=[0.8, 0.7, 0.75])
    assert m.judge(good).status == SUPPORTED
    assert m.judge({**good, "source_test_final": [0.8, 0.69, 0.75]}).status == INCONCLUSIVE
    # later is worse, but no worse than the large LR's same-epoch snapshot → inconclusive
    assert m.judge({**good, "probe_final_large": [0.6, 0.615, 0.62]}).status == INCONCLUSIVE
    assert m.judge({**good, "probe_final": [0.6, 0.63, 0.7]}).status == NOT_SUPPORTED


def test_autodecay_rule():
    from lrdecay.experiments import autodecay as m

    good = _n(epochs_to_target_auto=[20, 25, 25], epochs_to_target_fixed=[22, 25, 25],
              epochs_to_target_plateau=[None, 30, 30])
    v = m.judge(good)
    assert v.status == SUPPORTED and v.details["plateau_by_the_same_rule"] == NOT_SUPPORTED
    assert m.judge({**good, "epochs_to_target_auto": [22, 25, 25]}).status == INCONCLUSIVE
    assert m.judge({**good, "epochs_to_target_auto": [None, None, None]}).status == NOT_SUPPORTED
    assert m.judge({**good, "epochs_to_target_auto": [None, 20, 20]}).status == INCONCLUSIVE
    assert m.judge({**good, "epochs_to_target_auto": [23, 26, 30]}).status == NOT_SUPPORTED
    # the fixed run not reaching its own target cannot happen (best − tol); a crafted None counts as never
    assert m.judge({**good, "epochs_to_target_fixed": [None, 25, 25]}).status == SUPPORTED


# ---------------------------------------------------------------------------- common helpers
def test_stat_matches_numpy_and_skips_missing():
    rng = np.random.default_rng(7)
    vals = list(rng.normal(size=5))
    s = common.stat(vals)
    assert s["mean"] == pytest.approx(np.mean(vals)) and s["std"] == pytest.approx(np.std(vals, ddof=1))
    s = common.stat([1.0, None, float("nan"), 3.0])
    assert s["mean"] == 2.0 and s["std"] == pytest.approx(math.sqrt(2.0)) and s["values"][1] is None
    assert common.stat([None])["mean"] is None and common.stat([4.0])["std"] == 0.0
    assert common.fmt(common.stat([1.0, 3.0])) == "2.000 ± 1.414" and common.fmt(None) == "–"


def test_sharpness_hand_computed():
    acc = [0.1, 0.2, 0.25, 0.26, 0.5, 0.52]  # epochs 1..6
    s = common.sharpness(acc, 4)  # after = 0.5 - 0.26, before = 0.26 - 0.25 → floored at 0.01
    assert s["after"] == pytest.approx(0.24) and s["before"] == pytest.approx(0.01)
    assert s["ratio"] == pytest.approx(24.0)
    s = common.sharpness(acc, 4, floor=0.02)
    assert s["ratio"] == pytest.approx(12.0)
    s = common.sharpness(acc, 3, window=2)  # after = 0.5 - 0.25, before = 0.25 - 0.1
    assert s["ratio"] == pytest.approx(0.25 / 0.15)
    assert common.sharpness(acc, 6)["ratio"] is None


def test_epochs_to_target_and_seed_rule():
    assert common.epochs_to_target([0.1, None, 0.5, 0.7], 0.5) == 3
    assert common.epochs_to_target([0.1, 0.2], 0.5) is None
    assert common.seed_rule([True, True], [False, False]) == SUPPORTED
    assert common.seed_rule([True, False], [False, True]) == INCONCLUSIVE
    assert common.seed_rule([False, False], [True, True]) == NOT_SUPPORTED
    assert common.seed_rule([], []) == INCONCLUSIVE
    assert common.combine([SUPPORTED, INCONCLUSIVE]) == INCONCLUSIVE
    assert common.combine([SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE]) == NOT_SUPPORTED
