"""Each experiment on its ``tiny`` preset: result structure, statistics, and the verdict is the rule applied
to the numbers. One RunCache is shared, as in ``lrdecay reproduce``, so the tiny base runs are trained once."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from lrdecay import experiments
from lrdecay.experiments import common
from lrdecay.experiments.common import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED

STATUSES = {SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE}


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("report"))
    cache = common.RunCache()
    results = {name: experiments.run(name, "tiny", out_dir=out, cache=cache) for name in experiments.EXPERIMENTS}
    return results, out, cache


def test_registry_names_and_modules():
    assert list(experiments.NAMES.values()) == [f"C{i}" for i in range(1, 8)]
    for name, claim in experiments.NAMES.items():
        mod = experiments.get(name)
        assert mod.NAME == name and mod.CLAIM == claim
        assert set(mod.PRESETS) == {"tiny", "quick", "full"}
        assert isinstance(mod.RULE, str) and len(mod.RULE) > 40
    with pytest.raises(ValueError, match="experiment must be one of"):
        experiments.get("nope")


@pytest.mark.parametrize("name", list(experiments.NAMES))
def test_result_structure(tiny_results, name):
    results, out, _ = tiny_results
    r = results[name]
    json.dumps(r, allow_nan=False)  # JSON-serializable, no NaN
    for key in ("name", "claim", "title", "claim_text", "setup", "preset", "settings", "seeds", "per_seed",
                "summary", "table", "curves", "verdict", "plots", "wall_time"):
        assert key in r, key
    assert r["name"] == name and r["preset"] == "tiny"
    assert len(r["seeds"]) >= 3
    # every per-seed list has one value per seed; the summary is its mean ± sample std
    for k, vals in r["per_seed"].items():
        assert len(vals) == len(r["seeds"]), k
        if k in r["summary"]:
            finite = [v for v in vals if v is not None]
            s = r["summary"][k]
            if finite:
                assert s["mean"] == pytest.approx(float(np.mean(finite)))
                assert s["std"] == pytest.approx(float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0)
    # table rows match the headers
    assert all(len(row) == len(r["table"]["headers"]) for row in r["table"]["rows"])
    assert r["table"]["rows"]
    # plots were written
    assert r["plots"]
    for p in r["plots"]:
        assert os.path.getsize(os.path.join(out, p)) > 1000
    # the verdict is the module's rule applied to the reported per-seed numbers
    mod = experiments.get(name)
    assert r["verdict"]["status"] in STATUSES
    assert r["verdict"]["status"] == mod.judge(r["per_seed"]).status
    assert r["verdict"]["rule"] == mod.RULE


def test_shared_runs_are_trained_once(tiny_results):
    _, _, cache = tiny_results
    # base runs: 3 schedules x 3 seeds; gd: 2 x 3; autodecay: 2 extra arms x 3
    assert cache.misses == 9 + 6 + 6
    assert cache.hits > 0


def test_memorization_curves_come_from_the_ledger(tiny_results):
    results, _, _ = tiny_results
    r = results["memorization"]
    e1 = r["settings"]["milestones"][0]
    # mean curve at the end of stage 1 equals the mean of the per-seed numbers
    mean_curve = r["curves"]["memorized"]["lrDecay"]["mean"]
    assert mean_curve[e1 - 1] == pytest.approx(r["summary"]["mem_stage1_lrDecay"]["mean"])
    for v in r["per_seed"]["mem_stage1_small"]:
        assert 0.0 <= v <= 1.0


def test_transfer_target_shares_the_easy_pattern():
    from lrdecay.data import pattern_dataset
    from lrdecay.experiments import transfer

    s = transfer.PRESETS["tiny"]
    train, _ = transfer.target_datasets(s, seed=3)
    src = pattern_dataset(2000, preset=s["preset"], seed=3)
    sl = src.pattern_slices["easy"]
    # per-class means of the easy block agree (same centres, same labels); the complex block does not
    for c in range(src.n_classes):
        a = src.x[(src.group == 0) & (src.y_clean == c), sl].mean(0)
        b = train.x[(train.group == 0) & (train.y == c), sl].mean(0)
        assert np.linalg.norm(a - b) < 0.25 * np.linalg.norm(a)


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

    assert m.judge(_n(ratio_sgd1=[3, 9, 4], ratio_gd1=[1.5, 0.2, -1])).status == SUPPORTED
    assert m.judge(_n(ratio_sgd1=[3, 9, 2.9], ratio_gd1=[1.5, 0.2, -1])).status == INCONCLUSIVE
    assert m.judge(_n(ratio_sgd1=[3, 9, 4], ratio_gd1=[3, 3.5, 10])).status == NOT_SUPPORTED
    assert m.judge(_n(ratio_sgd1=[3, 9, 4], ratio_gd1=[1.6, 1, 1])).status == INCONCLUSIVE


def test_beliefs_rule():
    from lrdecay.experiments import beliefs as m

    good = _n(early_loss_small=[1.0, 1.1, 0.9], early_loss_large=[1.2, 1.1, 1.0],
              final_train_acc_small=[0.98, 0.95, 0.99], final_train_acc_lrDecay=[0.99, 0.97, 0.99],
              final_test_acc_lrDecay=[0.80, 0.81, 0.79], final_test_acc_small=[0.78, 0.80, 0.70])
    v = m.judge(good)
    assert v.status == SUPPORTED and v.details["a_no_acceleration"] == SUPPORTED
    # large LR trains faster on every seed: (a) not supported → claim not supported
    v = m.judge({**good, "early_loss_large": [0.5, 0.6, 0.7]})
    assert v.status == NOT_SUPPORTED and v.details["a_no_acceleration"] == NOT_SUPPORTED
    # small LR trapped (train acc below lrDecay's by more than 0.02) on one seed only → inconclusive
    v = m.judge({**good, "final_train_acc_small": [0.98, 0.949, 0.99]})
    assert v.status == INCONCLUSIVE and v.details["b_not_trapped"] == INCONCLUSIVE
    # lrDecay no better on test anywhere → not supported
    v = m.judge({**good, "final_test_acc_lrDecay": [0.78, 0.80, 0.70]})
    assert v.status == NOT_SUPPORTED and v.details["c_lrdecay_generalizes_better"] == NOT_SUPPORTED


def test_memorization_rule():
    from lrdecay.experiments import memorization as m

    good = _n(mem_stage1_lrDecay=[0.05, 0.1, 0.0], mem_stage1_small=[0.10, 0.3, 0.2],
              mem_final_lrDecay=[0.3, 0.2, 0.05])
    assert m.judge(good).status == SUPPORTED
    assert m.judge({**good, "mem_stage1_small": [0.099, 0.3, 0.2]}).status == INCONCLUSIVE
    assert m.judge({**good, "mem_final_lrDecay": [0.3, 0.14, 0.05]}).status == INCONCLUSIVE
    bad = _n(mem_stage1_lrDecay=[0.3, 0.2, 0.4], mem_stage1_small=[0.3, 0.1, 0.2], mem_final_lrDecay=[1, 1, 1])
    assert m.judge(bad).status == NOT_SUPPORTED


def test_complexity_rule():
    from lrdecay.experiments import complexity as m

    good = _n(chance=[0.1] * 3, easy_stage1=[0.9, 0.95, 0.91], easy_final=[0.95, 0.96, 0.92],
              complex_stage1=[0.5, 0.4, 0.6], complex_final=[0.6, 0.5, 0.65],
              complex_stage1_large=[0.5, 0.4, 0.6], complex_final_large=[0.5, 0.45, 0.61])
    v = m.judge(good)
    assert v.status == SUPPORTED, v.details
    # easy pattern mostly learned after the decay on one seed → (i) fails → inconclusive
    assert m.judge({**good, "easy_stage1": [0.9, 0.5, 0.91]}).status == INCONCLUSIVE
    # the constant large LR gains as much on the complex pattern everywhere → not supported
    assert m.judge({**good, "complex_final_large": [0.6, 0.5, 0.65]}).status == NOT_SUPPORTED


def test_transfer_rule():
    from lrdecay.experiments import transfer as m

    good = _n(probe_target_stage1=[0.6, 0.62, 0.61], probe_target_final=[0.58, 0.61, 0.6],
              source_test_stage1=[0.7, 0.7, 0.7], source_test_final=[0.8, 0.7, 0.75])
    assert m.judge(good).status == SUPPORTED
    assert m.judge({**good, "source_test_final": [0.8, 0.69, 0.75]}).status == INCONCLUSIVE
    assert m.judge({**good, "probe_target_final": [0.6, 0.63, 0.7]}).status == NOT_SUPPORTED


def test_autodecay_rule():
    from lrdecay.experiments import autodecay as m

    good = _n(epochs_to_target_auto=[20, 25, 25], epochs_to_target_fixed=[22, 25, 25],
              final_test_auto=[0.79, 0.8, 0.8], final_test_fixed=[0.8, 0.8, 0.81])
    assert m.judge(good).status == SUPPORTED
    # same epochs everywhere: not strictly shorter on average → inconclusive
    assert m.judge({**good, "epochs_to_target_auto": [22, 25, 25]}).status == INCONCLUSIVE
    # never reaching the target counts as later
    assert m.judge({**good, "epochs_to_target_auto": [None, None, None]}).status == NOT_SUPPORTED
    assert m.judge({**good, "final_test_auto": [0.7, 0.7, 0.7]}).status == NOT_SUPPORTED


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


def test_presets_and_seeds_are_validated():
    from lrdecay.experiments import memorization as m

    with pytest.raises(ValueError, match="preset must be one of"):
        m.run("huge")
    with pytest.raises(ValueError, match="unknown setting 'nope'"):
        m.run("tiny", overrides={"nope": 1})
    with pytest.raises(ValueError, match="seeds must be"):
        m.run("tiny", seeds=0)
    with pytest.raises(ValueError, match="seeds must be"):
        m.run("tiny", seeds=[-1])
    s = common.resolve_preset(m.PRESETS, "tiny", {"epochs": 3})
    assert s["epochs"] == 3 and m.PRESETS["tiny"]["epochs"] != 3  # the preset itself is not modified
    assert common.resolve_seeds(s, 4) == [0, 1, 2, 3] and common.resolve_seeds(s, [5, 9]) == [5, 9]
