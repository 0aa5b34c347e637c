"""AutoDecay: the plateau test against a plain numpy line fit, LR updates on real optimizers, limits,
state round trip, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrdecay.schedules import AutoDecay


def _rate_numpy(losses):
    slope, _ = np.polyfit(np.arange(len(losses)), np.asarray(losses, dtype=np.float64), 1)
    return -slope / np.mean(losses)


@pytest.mark.parametrize("n", [2, 3, 7])
def test_improvement_rate_matches_polyfit(n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        losses = list(rng.uniform(0.1, 3.0, size=n))
        assert AutoDecay.improvement_rate(losses) == pytest.approx(_rate_numpy(losses), rel=1e-9, abs=1e-12)


def test_decays_exactly_when_the_rate_drops_below_threshold():
    rng = np.random.default_rng(0)
    losses = list(np.exp(-0.3 * np.arange(25)) + 1.0 + rng.normal(0, 0.002, size=25))
    window, thr = 3, 0.01
    auto = AutoDecay(base_lr=0.1, window=window, threshold=thr, gamma=0.5)
    since = []  # losses since the last decay, as the documented test sees them
    expected = []
    for e, loss in enumerate(losses, 1):
        since.append(loss)
        fire = len(since) >= window and _rate_numpy(since[-window:]) < thr
        if fire:
            expected.append(e)
            since = []
        assert auto.step(loss) == fire
    assert auto.decay_epochs == expected and expected  # the plateau was reached at least once
    assert auto.lr == pytest.approx(0.1 * 0.5 ** len(expected))


def test_sets_group_lr_of_torch_sgd_and_respects_limits():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.SGD([{"params": [p], "lr": 0.2}, {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.05}])
    auto = AutoDecay(opt, gamma=0.1, window=2, min_stage=3, max_decays=2, min_lr=0.001)
    flat = [1.0] * 12
    fired = [auto.step(v) for v in flat]
    # min_stage 3: first decay after 3 epochs, then 3 more; at most 2 decays
    assert [i + 1 for i, f in enumerate(fired) if f] == [3, 6] == auto.decay_epochs
    assert opt.param_groups[0]["lr"] == pytest.approx(0.002)
    assert opt.param_groups[1]["lr"] == pytest.approx(0.001)  # 0.0005 clipped at min_lr


def test_steadily_falling_loss_never_decays():
    auto = AutoDecay(base_lr=1.0, window=3, threshold=0.01)
    assert not any(auto.step(v) for v in 10 * 0.9 ** np.arange(30))  # -10% per epoch
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
        auto = AutoDecay(opt, gamma=0.1, window=2, threshold=0.3)
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
    losses = [3.0, 2.0, 1.9, 1.89, 1.889, 1.5, 1.49, 1.489, 1.4889]
    a = AutoDecay(base_lr=0.1, window=2, threshold=0.02)
    for v in losses[:4]:
        a.step(v)
    b = AutoDecay(base_lr=0.1, window=2, threshold=0.02)
    b.load_state_dict(a.state_dict())
    assert [a.step(v) for v in losses[4:]] == [b.step(v) for v in losses[4:]]
    assert a.decay_epochs == b.decay_epochs and a.lr == b.lr


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"gamma": 1.0}, ValueError, "gamma"),
        ({"gamma": 0.0}, ValueError, "gamma"),
        ({"window": 1}, ValueError, "window"),
        ({"threshold": -0.1}, ValueError, "threshold"),
        ({"min_stage": 0}, ValueError, "min_stage"),
        ({"max_decays": -1}, ValueError, "max_decays"),
        ({"window": 2.5}, TypeError, "window"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        AutoDecay(base_lr=0.1, **kwargs)


def test_bad_loss_changes_nothing():
    a = AutoDecay(base_lr=0.1, window=2)
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
