"""The regime search's bookkeeping: which runs it trains (constant runs shared across stage options), how
outcomes are read (each setting at its own last epoch), and the pre-registered selection on crafted runs."""

from __future__ import annotations

import pytest

from lrdecay.experiments import regime as r


def _row(job, test_acc):
    """A crafted finished run: the job plus evals at every 5th epoch with the given final test accuracy."""
    evals = {str(e): {"test_acc": test_acc, "probe_easy": 0.9, "probe_complex": 0.5, "train_acc": 0.7,
                      "memorized": 0.1, "memorized_eval": 0.1, "train_acc_eval": 0.7, "train_acc_clean_eval": 0.8}
             for e in range(5, job["epochs"] + 1, 5)}
    return {**job, "wall_time": 1.0, "evals": evals}


def _point(**kw):
    base = {"width": 128, "n_train": 20_000, "label_noise": 0.2, "preset": "ps10", "stages": "10-10-10",
            "weight_decay": 5e-4}
    return {**base, **kw}


def test_constant_runs_are_shared_across_stage_options():
    pts = [_point(stages="10-10-10"), _point(stages="10-5-5")]
    js = r.jobs(pts, [1000])
    assert sorted(j["schedule"] for j in js) == ["large", "lrDecay", "lrDecay", "small"]
    const = [j for j in js if j["schedule"] != "lrDecay"]
    assert all(j["epochs"] == 30 and j["stages"] is None and j["milestones"] == [] for j in const)
    cfg = r._config(next(j for j in js if j["stages"] == "10-5-5"))
    assert cfg.milestones == [10, 15] and cfg.epochs == 20 and cfg.schedule == "multistep" and cfg.eval_train
    small = r._config(next(j for j in js if j["schedule"] == "small"))
    assert small.lr == r.FIXED["lr_small"] and small.schedule == "constant"


def test_outcomes_read_each_setting_at_its_last_epoch():
    p = _point(stages="10-5-5")
    rows = []
    for sched, acc in (("lrDecay", 0.8), ("large", 0.7), ("small", 0.75)):
        row = _row(r._job(p, sched, 1000), acc)
        if sched != "lrDecay":  # the shared 30-epoch constant run: a different value at epoch 30
            row["evals"]["30"] = {**row["evals"]["30"], "test_acc": 0.99}
        rows.append(row)
    (o,) = r.outcomes(rows, [p], [1000])
    assert o["test_acc_large"] == 0.7 and o["test_acc_small"] == 0.75  # read at epoch 20, not 30
    assert o["margin"] == pytest.approx(0.05) and o["premise"]




def test_selection_follows_the_criterion(monkeypatch):
    a = _point(width=128)
    b = _point(width=256)
    c = _point(width=512, n_train=50_000)  # the biggest margin but over the cost limit for quick
    d = _point(width=128, n_train=50_000)  # fails one pilot seed
    margins = {tuple(a.items()): (0.05, 0.04, 0.03), tuple(b.items()): (0.06, 0.05, 0.035),
               tuple(c.items()): (0.09, 0.08, 0.07), tuple(d.items()): (0.10, 0.10, 0.01)}
    pts = [dict(k) for k in margins]
    rows = []
    for p, ms in zip(pts, margins.values()):
        for seed, m in zip((1000, 1001, 1002), ms):
            rows += [_row(r._job(p, "lrDecay", seed), 0.8 + m), _row(r._job(p, "large", seed), 0.8),
                     _row(r._job(p, "small", seed), 0.78)]
    monkeypatch.setattr(r, "COST_LIMIT_S", r.cost_s(b))  # b is within the limit, c is not
    outs = r.outcomes(rows, pts, [1000, 1001, 1002])
    cand = r.confirm_candidates(outs)
    assert {r.setting_id(p) for p in cand} == {r.setting_id(p) for p in pts}  # all pass the phase-1 seed
    sel = r.select(outs)
    assert r.setting_id(sel["quick"]) == r.setting_id(b)  # 0.035 > 0.03 (a); c too costly; d fails a seed
    assert r.setting_id(sel["full"]) == r.setting_id(c)
    assert r.setting_id(d) not in sel["passing_all_pilot_seeds"]
    # a tie within 0.001 goes to the cheaper setting
    rows_tie = [dict(x) for x in rows]
    for x in rows_tie:
        if x["width"] == 128 and x["n_train"] == 20_000 and x["schedule"] == "lrDecay" and x["seed"] == 1002:
            for ev in x["evals"].values():
                ev["test_acc"] = 0.8345
    sel = r.select(r.outcomes(rows_tie, pts, [1000, 1001, 1002]))
    assert r.setting_id(sel["quick"]) == r.setting_id(a)


def test_nothing_passes_gives_no_pick():
    p = _point()
    rows = []
    for seed in (1000, 1001, 1002):
        rows += [_row(r._job(p, "lrDecay", seed), 0.80), _row(r._job(p, "large", seed), 0.79),
                 _row(r._job(p, "small", seed), 0.70)]
    sel = r.select(r.outcomes(rows, [p], [1000, 1001, 1002]))
    assert sel["quick"] is None and sel["full"] is None  # margin 0.01 < 0.02 on every seed
