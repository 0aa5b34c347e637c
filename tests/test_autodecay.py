"""AutoDecay: the plateau test against a plain numpy line fit, LR updates on real optimizers, limits,
state round trip, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrdecay.schedules import AccuracyMilestones, AutoDecay, line_fit, t95


def _fit_numpy(values):
    """slope, its standard error and the fitted last value, by numpy (the reference)."""
    x = np.arange(len(values), dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    (slope, icpt), res, *_ = np.polyfit(x, y, 1, full=True)
    n = len(values)
    ssr = float(res[0]) if len(res) else 0.0
    se = np.sqrt(ssr / (n - 2) / np.sum((x - x.mean()) ** 2)) if n > 2 else 0.0
    return slope, se, slope * x[-1] + icpt


@pytest.mark.parametrize("n", [2, 3, 7, 31])
def test_line_fit_matches_numpy(n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        values = list(rng.uniform(0.1, 3.0, size=n))
        got = line_fit(values)
        want = _fit_numpy(values)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_t95_known_values():
    # one-sided 95% Student t quantiles (standard tables)
    assert t95(1) == 6.314 and t95(3) == 2.353 and t95(10) == 1.812 and t95(30) == 1.697 and t95(1000) == 1.645
    with pytest.raises(ValueError):
        t95(0)


def _reference_decays(losses, window, fraction, min_stage, t_by_df):
    """The documented test, written out independently with numpy."""
    decays, stage, ref = [], [], None
    for e, v in enumerate(losses, 1):
        stage.append(v)
        if len(stage) < max(window, min_stage):
            continue
        slope, se, last = _fit_numpy(stage[-window:])
        upper = -slope + t_by_df[window - 2] * se
        drop = (stage[0] if ref is None else ref) - last
        if window * upper <= fraction * max(drop, 0.0):
            decays.append(e)
            ref, stage = v, []
    return decays


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("window,fraction,min_stage", [(3, 0.1, 3), (5, 0.1, 5), (5, 0.3, 8), (7, 0.05, 7)])
def test_decays_exactly_where_the_documented_test_says(seed, window, fraction, min_stage):
    rng = np.random.default_rng(seed)
    # three stages of an exponential approach to a floor, each starting lower, with epoch noise
    losses = []
    for level in (2.0, 1.2, 0.9):
        losses += list(level + 0.8 * np.exp(-np.arange(15) / 2.5) + rng.normal(0, 0.01 * (seed % 3), 15))
    auto = AutoDecay(base_lr=0.1, window=window, fraction=fraction, min_stage=min_stage, gamma=0.5)
    fired = [e for e, v in enumerate(losses, 1) if auto.step(v)]
    table = {w - 2: t95(w - 2) for w in range(3, 10)}
    assert fired == _reference_decays(losses, window, fraction, min_stage, table) == auto.decay_epochs
    assert fired  # the construction has plateaus the test must find
    assert auto.lr == pytest.approx(0.1 * 0.5 ** len(fired))


def test_noise_delays_the_decay():
    """The same underlying curve: with more epoch-to-epoch scatter, the plateau is called later (or not)."""
    base = 1.0 + 1.5 * np.exp(-np.arange(40) / 3.0)
    mean_first = []
    for sd in (0.0, 0.02, 0.08):
        rng = np.random.default_rng(1)
        firsts = []
        for _ in range(50):
            auto = AutoDecay(base_lr=0.1, window=5, fraction=0.1, max_decays=1)
            fired = [e for e, v in enumerate(base + rng.normal(0, sd, base.size), 1) if auto.step(v)]
            firsts.append(fired[0] if fired else 41)
        mean_first.append(np.mean(firsts))
    assert mean_first[0] < mean_first[1] < mean_first[2]


def test_unfittable_loss_floor_does_not_fool_it():
    """A loss that keeps falling by ~0.5%/epoch of its (high, noise-dominated) level, but fast relative to
    what the stage has gained so far, is still a stage in progress."""
    losses = list(2.0 - 0.01 * np.arange(12))  # the stage gains 0.01 per epoch, steadily
    auto = AutoDecay(base_lr=0.1, window=5, fraction=0.1)
    assert not any(auto.step(v) for v in losses)


def test_sets_group_lr_of_torch_sgd_and_respects_limits():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.SGD([{"params": [p], "lr": 0.2}, {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.05}])
    auto = AutoDecay(opt, gamma=0.1, window=3, min_stage=4, max_decays=2, min_lr=0.001)
    flat = [1.0] * 14
    fired = [auto.step(v) for v in flat]
    # a flat loss is a plateau as soon as allowed: min_stage 4, then 4 more; at most 2 decays
    assert [i + 1 for i, f in enumerate(fired) if f] == [4, 8] == auto.decay_epochs
    assert opt.param_groups[0]["lr"] == pytest.approx(0.002)
    assert opt.param_groups[1]["lr"] == pytest.approx(0.001)  # 0.0005 clipped at min_lr


def test_steadily_falling_loss_never_decays():
    auto = AutoDecay(base_lr=1.0, window=5, fraction=0.1)
    assert not any(auto.step(v) for v in 10 - 0.3 * np.arange(30))  # a straight line down
    assert auto.lr == 1.0


def test_drives_fused_sgd_without_schedule_like_torch_sgd():
    from lrdecay.optim import FusedSGD

    torch.manual_seed(0)
    w0 = torch.randn(37, 5)
    x, y = torch.randn(64, 37), torch.randint(0, 5, (64,))
    runs = []
    for cls in (torch.optim.SGD, FusedSGD):
        w = torch.nn.Parameter(w0.clone())
        opt = cls([w], lr=0.5, momentum=0.9, weight_decay=1e-3)
        auto = AutoDecay(opt, gamma=0.1, window=3, fraction=0.5)
        for _ in range(8):
            for _ in range(4):
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(x @ w, y)
                loss.backward()
                opt.step()
            auto.step(loss.item())
        runs.append((w.detach().clone(), auto.decay_epochs))
    assert runs[0][1] == runs[1][1] and runs[0][1]
    torch.testing.assert_close(runs[0][0], runs[1][0])


def test_refuses_fused_sgd_with_device_schedule():
    from lrdecay import schedules
    from lrdecay.optim import FusedSGD

    opt = FusedSGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, schedule=schedules.Constant())
    with pytest.raises(ValueError, match="schedule=None"):
        AutoDecay(opt)


def test_state_dict_round_trip_continues_identically():
    losses = [3.0, 2.0, 1.9, 1.89, 1.889, 1.888, 1.5, 1.49, 1.489, 1.4889, 1.4888, 1.4887]
    a = AutoDecay(base_lr=0.1, window=3, fraction=0.1)
    for v in losses[:7]:
        a.step(v)
    assert a.decay_epochs  # the state carries a finished stage and a started one
    b = AutoDecay(base_lr=0.1, window=3, fraction=0.1)
    b.load_state_dict(a.state_dict())
    assert [a.step(v) for v in losses[7:]] == [b.step(v) for v in losses[7:]]
    assert a.decay_epochs == b.decay_epochs and a.lr == b.lr


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"gamma": 1.0}, ValueError, "gamma"),
        ({"gamma": 0.0}, ValueError, "gamma"),
        ({"window": 2}, ValueError, "window"),
        ({"fraction": -0.1}, ValueError, "fraction"),
        ({"min_stage": 0}, ValueError, "min_stage"),
        ({"max_decays": -1}, ValueError, "max_decays"),
        ({"window": 2.5}, TypeError, "window"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        AutoDecay(base_lr=0.1, **kwargs)


def test_bad_loss_changes_nothing():
    a = AutoDecay(base_lr=0.1, window=3)
    a.step(1.0)
    before = a.state_dict()
    with pytest.raises(ValueError, match="loss must be finite"):
        a.step(float("nan"))
    with pytest.raises(TypeError, match="loss must be a real number"):
        a.step("1.0")
    assert a.state_dict() == before
    with pytest.raises(ValueError, match="optimizer or a base_lr"):
        AutoDecay()
    with pytest.raises(TypeError, match="optimizer must be"):
        AutoDecay(object())


def test_accuracy_milestones_decay_once_per_threshold_reached():
    m = AccuracyMilestones(base_lr=1.0, thresholds=[0.5, 0.8], gamma=0.1)
    accs = [0.1, 0.49, 0.5, 0.95, 0.79, 0.81, 0.99]
    fired = [e for e, a in enumerate(accs, 1) if m.step(a)]
    # 0.95 passes both thresholds but decays once per epoch; the second comes at the next epoch >= 0.8
    assert fired == [3, 4] == m.decay_epochs
    assert m.lr == pytest.approx(0.01)
    state = m.state_dict()
    m2 = AccuracyMilestones(base_lr=1.0, thresholds=[0.5, 0.8], gamma=0.1)
    m2.load_state_dict(state)
    assert m2.lr == m.lr and m2.decay_epochs == m.decay_epochs and not m2.step(1.0)


@pytest.mark.parametrize("thresholds", [[0.5, 0.5], [0.8, 0.2], [1.5], [-0.1]])
def test_accuracy_milestones_bad_thresholds(thresholds):
    with pytest.raises(ValueError, match="thresholds"):
        AccuracyMilestones(base_lr=1.0, thresholds=thresholds)
