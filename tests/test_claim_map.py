"""The claim map (lrdecay.experiments.claim_map): each claim's excess over its rule agrees with the
experiment's own judge, the paper-like rule and the picks on hand-made rows, the validation split and
AutoDecay on its error, C4 on the noise group, and ``lrdecay regime --claims`` end to end (resumable)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lrdecay.experiments import claim_map as cm
from lrdecay.experiments import get, prereg
from lrdecay.trainer import TrainConfig, train

SUPPORTED = "supported"


# ------------------------------------------------------------------------- effects against each judge
def _random_numbers(claim, rng):
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    if claim == "C1":
        return {"jump_acc_decay1": u(0, 0.05), "ratio_acc_decay1": u(0, 6), "ratio_acc_control1": u(0, 6)}
    if claim == "C2":
        return {"ratio_sgd1": u(0, 6), "ratio_gd1": u(0, 4), "valid": bool(rng.random() < 0.8),
                "train_acc_at_decay1_sgd": u(0, 1), "train_acc_at_decay1_gd": u(0, 1)}
    if claim == "C3":
        return {"early_loss_small": u(1, 2), "early_loss_large": u(1, 2), "final_train_acc_small": u(0.5, 1),
                "final_train_acc_lrDecay": u(0.5, 1), "final_test_acc_small": u(0.5, 0.7),
                "final_test_acc_large": u(0.5, 0.7), "final_test_acc_lrDecay": u(0.55, 0.75)}
    if claim == "C4":
        return {"mem_eval_stage1_lrDecay": u(0, 0.3), "mem_eval_stage1_small": u(0, 0.4),
                "mem_eval_final_lrDecay": u(0, 0.5), "mem_epoch_stage1_lrDecay": u(0, 1),
                "mem_epoch_stage1_small": u(0, 1)}
    if claim == "C5":
        return {"chance": 0.1, "easy_e1": u(0.5, 1), "easy_final": u(0.8, 1), "complex_e1": u(0.1, 0.4),
                "complex_e2": u(0.1, 0.8), "complex_final": u(0.3, 0.9), "complex_e2_large": u(0.1, 0.5)}
    if claim == "C6":
        return {"probe_stage1": u(0.5, 0.7), "probe_final": u(0.5, 0.7), "probe_final_large": u(0.5, 0.7),
                "source_test_stage1": u(0.5, 0.8), "source_test_final": u(0.5, 0.8)}
    fixed = int(rng.integers(5, 30))
    auto = None if rng.random() < 0.2 else int(rng.integers(3, 31))
    return {"epochs_to_target_fixed": fixed, "epochs_to_target_auto": auto, "epochs_to_target_plateau": None,
            "epochs_to_target_auto_val": None, "final_test_fixed": 0.8, "final_test_auto": 0.8,
            "final_test_auto_val": 0.8, "epochs": 30}


@pytest.mark.parametrize("claim", list(cm.CLAIMS))
def test_the_excess_is_positive_exactly_where_the_claims_judge_supports_it_on_one_seed(claim):
    rng = np.random.default_rng(sum(map(ord, claim)))
    judge = get(cm.CLAIMS[claim]).judge
    seen = set()
    for _ in range(400):
        n = _random_numbers(claim, rng)
        supported = judge({k: [v] for k, v in n.items()}).status == SUPPORTED
        effect, excess = cm.effects(claim, n)
        assert supported == (excess >= 0 if claim == "C3" else excess > 0), (n, effect, excess)
        seen.add(supported)
    assert seen == {True, False}  # both outcomes drawn: the comparison was not vacuous


def test_effects_by_hand():
    assert cm.effects("C1", {"jump_acc_decay1": 0.05, "ratio_acc_decay1": 4.0, "ratio_acc_control1": 1.0}) == \
        pytest.approx((4.0, 0.03))
    assert cm.effects("C4", {"mem_eval_stage1_lrDecay": 0.1, "mem_eval_stage1_small": 0.3,
                             "mem_eval_final_lrDecay": 0.2}) == pytest.approx((0.2, 0.05))
    assert cm.effects("C7", {"epochs_to_target_fixed": 20, "epochs_to_target_auto": 15, "epochs": 30}) == (5, 5)
    assert cm.effects("C7 val", {"epochs_to_target_fixed": 20, "epochs_to_target_auto_val": None, "epochs": 30}) \
        == (20 - 31, -math.inf)
    assert cm.effects("C2", {"ratio_sgd1": 5.0, "ratio_gd1": 1.0, "valid": False}) == (4.0, -math.inf)
    assert cm.effects("C6", {"probe_stage1": None, "probe_final": 0.5, "probe_final_large": 0.5,
                             "source_test_stage1": 0.5, "source_test_final": 0.5}) == (None, -math.inf)


# ------------------------------------------------------------------------- the paper-like rule
def _base(**kw):
    b = {"D_T": 0.80, "L_T": 0.70, "S_T": 0.72, "D_m1": 0.60, "D_m1_minus": 0.58, "Dtr_m1": 0.60, "chance": 0.1}
    b.update(kw)
    b["margin"] = min(b["D_T"] - b["L_T"], b["D_T"] - b["S_T"])
    return b


def test_paper_like_conditions_by_hand():
    assert cm.paper_like(_base())["all"]
    # (1) the premise: lrDecay must beat both constant LRs by 0.02
    assert not cm.paper_like(_base(S_T=0.79))["premise"]
    # (2) a plateau clearly above chance: clean train accuracy at the milestone >= 0.1 + 0.5 * 0.9 = 0.55
    assert not cm.paper_like(_base(Dtr_m1=0.54))["plateau"]
    # (2) half the final gain over chance by the milestone: 0.1 + 0.5 * 0.7 = 0.45
    assert not cm.paper_like(_base(D_m1=0.44, D_m1_minus=0.44))["plateau"]
    # (2) levelled off: at most 0.03 in the 5 epochs before the milestone
    assert not cm.paper_like(_base(D_m1_minus=0.56))["plateau"]
    # (3) the large LR keeps 3/4 of lrDecay's gain over chance: 0.1 + 0.75 * 0.7 = 0.625
    assert not cm.paper_like(_base(L_T=0.62))["large_ok"]
    assert cm.paper_like(_base(L_T=0.63))["large_ok"]
    assert not cm.paper_like(_base(D_m1_minus=None))["all"]


# ------------------------------------------------------------------------- phase 2 and the picks
def _row(setting, seed, *, margin=0.05, paper=True, supported=(), excess=0.1, cost=5.0):
    r = {"setting": setting, "seed": seed, "margin": margin, "paper_like_all": paper, "cost_s": cost}
    for c in cm.COUNTED:
        r[c] = SUPPORTED if c in supported else "inconclusive"
        r[f"{c} excess"] = excess if c in supported else -1.0
    return r


def test_phase2_candidates_and_picks_follow_the_rules():
    pre = cm.PREREGISTRATION
    rows = [_row("a", 1000, margin=0.10, supported=("C1",)), _row("b", 1000, margin=0.20, paper=False,
            supported=("C1", "C3", "C5")), _row("c", 1000, margin=0.05, supported=("C1", "C3"), excess=0.2),
            _row("d", 1000, margin=0.30, supported=("C1", "C3"), excess=0.1), _row("e", 1000, margin=0.40, paper=False),
            _row("f", 1000, margin=0.08)]
    cands = cm.phase2_candidates(rows, pre)
    assert cands["paper_like"] == ["d", "a", "f"]          # paper-like ones, largest margin first, 3 of them
    assert cands["claims_best"] == ["b", "c", "d"]         # most claims, then the larger minimum excess
    more = [_row(s, seed, margin=m, supported=sup, paper=p) for s, m, sup, p in
            (("a", 0.06, ("C1",), True), ("b", 0.2, ("C1", "C3"), False), ("c", 0.04, ("C1", "C3"), True),
             ("d", 0.02, ("C3",), True)) for seed in (1001, 1002)]
    sel = cm.select(rows + more, pre)
    assert sel["paperlike"] == "a"       # min margins: a 0.06, c 0.04, d 0.02 (f not on all seeds)
    assert sel["claimsbest"] in ("b", "c")
    assert sel["claims_counted"] == 2    # b and c hold C1 and C3 on every seed; d only C3
    sel_none = cm.select([_row("x", s, paper=False) for s in (1000, 1001, 1002)], pre)
    assert sel_none["paperlike"] is None and sel_none["claimsbest"] is None


def test_the_claim_map_preregistration_is_the_committed_file_and_keeps_seeds_apart():
    pre = prereg.packaged("claims")
    assert pre.committed and pre.data == "patterns"
    assert set(pre.all_pilot_seeds) == {1000, 1001, 1002}
    assert not set(pre.all_pilot_seeds) & set(pre.all_held_out_seeds)
    assert len(cm.grid_points(pre.grid)) == 32 and 0.0 in pre.grid["label_noise"]
    with pytest.raises(prereg.SeedPolicyError):
        pre.check_search_seeds([10])


# ------------------------------------------------------------------------- the validation split
def test_the_validation_split_is_seeded_disjoint_and_keeps_the_observed_labels():
    from lrdecay.data import pattern_dataset
    from lrdecay.trainer.inputs import as_device_data, split_validation

    data = as_device_data(pattern_dataset(1001, preset="ps10", split="train", seed=3, label_noise=0.3),
                          torch.device("cpu"), name="d")
    fit, val = split_validation(data, 0.1, seed=7)
    assert (fit.n, val.n) == (901, 100)
    rows = {tuple(r) for r in data.x.numpy().round(6)}
    assert {tuple(r) for r in fit.x.numpy().round(6)} | {tuple(r) for r in val.x.numpy().round(6)} == rows
    assert not {tuple(r) for r in fit.x.numpy().round(6)} & {tuple(r) for r in val.x.numpy().round(6)}
    again = split_validation(data, 0.1, seed=7)[1]
    assert torch.equal(again.x, val.x) and torch.equal(again.y, val.y)
    assert not torch.equal(split_validation(data, 0.1, seed=8)[1].x, val.x)
    # observed (noisy) labels travel with their samples
    idx = [int(np.flatnonzero((data.x.numpy() == val.x[i].numpy()).all(1))[0]) for i in range(5)]
    assert val.y[:5].tolist() == data.y[idx].tolist() and val.flipped[:5].tolist() == data.flipped[idx].tolist()
    assert fit.fingerprint != data.fingerprint != val.fingerprint


def test_auto_val_decays_where_autodecay_fed_the_recorded_validation_errors_does(one_torch_thread):
    from lrdecay.host_decay import AutoDecay

    cfg = TrainConfig(preset="ps10", n_train=1500, n_test=200, label_noise=0.3, width=32, depth=2, epochs=12,
                      schedule="auto_val", val_fraction=0.2, max_decays=2, auto_window=3, batch_size=50,
                      device="cpu", progress=False, plots=False, seed=4)
    h = train(cfg).history
    assert all(r["val_error"] == pytest.approx(1 - r["val"]["acc"]) for r in h)
    assert h[0]["presented"] == 1200  # trained on the other 80% only
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    ref = AutoDecay(opt, gamma=cfg.gamma, window=cfg.auto_window, fraction=cfg.auto_fraction, max_decays=2)
    lrs = []
    for r in h:
        lrs.append(opt.param_groups[0]["lr"])
        ref.step(r["val_error"])
    assert [r["lr"] for r in h] == pytest.approx(lrs)


def test_auto_val_needs_a_validation_split():
    with pytest.raises(ValueError, match="val_fraction > 0"):
        TrainConfig(schedule="auto_val")
    with pytest.raises(ValueError, match="val_fraction"):
        TrainConfig(val_fraction=0.9)


# ------------------------------------------------------------------------- C4 with clean labels
@pytest.mark.slow
def test_c4_reads_the_noise_group_when_labels_are_clean(one_torch_thread):
    from lrdecay import experiments as E
    from lrdecay.experiments.runner import RunOptions, plan_experiments, train_requests

    ov = {"preset": "ps10", "n_train": 800, "n_test": 200, "label_noise": 0.0, "width": 32}
    plan = plan_experiments([E.get("memorization")], RunOptions(preset="tiny", seeds=[0], overrides={"memorization": ov},
                                                                progress=False))
    e, s = E.get("memorization"), plan.settings["memorization"]
    outputs, keys = train_requests({"m": (e, s)}, run_dir=None, workers=1, progress=False)
    runs = {label: outputs[k] for label, k in keys[("m", 0)].items()}
    n = e.measure(s, 0, runs)
    m1 = s["milestones"][0]
    for sched in ("lrDecay", "small"):
        assert n[f"mem_eval_stage1_{sched}"] == runs[sched].history[m1 - 1]["train_eval"]["acc_group"]["noise"]
    clean = plan_experiments([E.get("memorization")], RunOptions(preset="tiny", seeds=[0], progress=False,
                                                                 overrides={"memorization": {**ov, "preset": "ps10-clean"}}))
    assert "memorization" in clean.skipped and "no noise group" in clean.skipped["memorization"]


# ------------------------------------------------------------------------- the command
TINY = """
format = 1
name = "claims-test"
data = "patterns"
experiments_preset = "tiny"
[grid]
width = [16]
n_train = [600]
label_noise = [0.0, 0.2]
preset = ["ps10"]
stages = ["2-2-2"]
weight_decay = [0.0005]
[stages."2-2-2"]
milestones = [2, 4]
epochs = 6
[fixed]
model = "mlp"
depth = 2
batch_size = 64
lr = 0.1
lr_small = 0.01
momentum = 0.9
gamma = 0.1
n_test = 300
probe_groups = true
[seeds]
pilot = [1000]
confirm = [1001]
held_out = { paperlike = [10], claimsbest = [10] }
[criterion]
chance = 0.1
premise_margin = -1.0
plateau_train_share = 0.0
stage1_gain_share = -5.0
level_epochs = 1
level_tolerance = 1.0
large_gain_share = -5.0
n_confirm = 1
cost_limit_s = 100.0
tie_tolerance = 0.001
epoch_s_per_32k = { "16" = 0.1 }
"""


@pytest.mark.slow
def test_regime_claims_maps_every_setting_picks_and_resumes_without_training(tmp_path, capsys, one_torch_thread):
    from lrdecay.cli import main

    path = tmp_path / "tiny.toml"
    path.write_text(TINY, encoding="utf-8")
    out = tmp_path / "map"
    argv = ["regime", "--claims", "--out", str(out), "--workers", "1", "--preregistration", str(path)]
    assert main(argv) == 0
    assert "NOT a committed file" in capsys.readouterr().out
    import csv

    rows = list(csv.DictReader((out / "claims.csv").open(encoding="utf-8")))
    assert {(r["label_noise"], r["seed"]) for r in rows} >= {("0.0000", "1000"), ("0.2000", "1000")}
    assert all(r[c] in ("supported", "not supported", "inconclusive", "does not apply") for r in rows
               for c in cm.COUNTED)
    sel = json.loads((out / "selection.json").read_text(encoding="utf-8"))
    assert sel["phase2_candidates"]["paper_like"]  # the test rule lets every setting through
    assert sel["paperlike"] in {r["setting"] for r in rows if r["seed"] == "1001"}
    for name in ("C1", "C7-val", "holds", "paper_like"):
        assert (out / f"{name}.png").stat().st_size > 0
    runs = sorted(p.name for p in (out / "runs" / "runs").iterdir())
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "runs" / "runs").iterdir()}
    with pytest.raises(SystemExit):  # a folder holding a map needs --resume
        main(argv)
    assert main([*argv, "--resume"]) == 0
    assert sorted(p.name for p in (out / "runs" / "runs").iterdir()) == runs
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs" / "runs").iterdir()} == mtimes
    assert json.loads((out / "selection.json").read_text(encoding="utf-8"))["paperlike"] == sel["paperlike"]


def test_verdict_effects_of_the_committed_quick_report():
    from pathlib import Path

    results = json.loads((Path(__file__).parents[1] / "docs" / "reproduce-quick" / "results.json").read_text())
    v = cm.verdict_effects(results)
    ex = results["experiments"]
    assert {c: v[c]["status"] for c in cm.CLAIMS} == {c: ex[n]["verdict"]["status"] for c, n in cm.CLAIMS.items()}
    assert v["C1"]["effect"] == pytest.approx(np.mean(ex["stages"]["per_seed"]["ratio_acc_decay1"]))
    mem = ex["memorization"]["per_seed"]
    assert v["C4"]["effect"] == pytest.approx(np.mean(np.subtract(mem["mem_eval_stage1_small"],
                                                                  mem["mem_eval_stage1_lrDecay"])))
    assert "C7 val" not in v  # that report predates the validation-error arm


def test_claims_csv_round_trips_through_read_csv(tmp_path):
    from lrdecay.experiments import claim_map_outputs as out

    rows = [{**_row("a", 1000, supported=("C1",)), "width": 128, "n_train": 20000, "label_noise": 0.0,
             "preset": "ps10", "stages": "10-5-5", "weight_decay": 0.002, "D_T": 0.81, "L_T": None,
             "C1 effect": 4.5, "C2 effect": None}]
    words = {c: w for c, (w, _f) in cm.EFFECTS.items()}
    out.write_csv(rows, tmp_path / "claims.csv", cm.PREREGISTRATION, words)
    (back,) = out.read_csv(tmp_path / "claims.csv")
    assert back["seed"] == 1000 and back["width"] == 128 and back["D_T"] == 0.81 and back["L_T"] is None
    assert back["C1"] == SUPPORTED and back["C1 effect"] == 4.5 and back["C1 excess"] == 0.1
    assert back["C2 excess"] == -1.0 and back["C2 effect"] is None and back["paper_like_all"] is True
