"""lrdecay.schedules against torch.optim.lr_scheduler, step for step, and hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from lrdecay import schedules as S

LR = torch.optim.lr_scheduler


def torch_lrs(factory, base: float, steps: int) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    sched = factory(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_multistep_equals_multisteplr_exactly():
    ours = S.MultiStep([75, 10, 40, 40], 0.3)  # unsorted, a repeated milestone counts twice
    ref = torch_lrs(lambda o: LR.MultiStepLR(o, [75, 10, 40, 40], 0.3), 0.17, 120)
    assert [ours.lr_at(t, 0.17) for t in range(120)] == ref


# torch multiplies once per decay (StepLR/ExponentialLR) or uses a recursive ratio (CosineAnnealingLR);
# the schedules use exponentiation by squaring / the closed form: a few float64 ulps apart.
REL = 1e-12


@pytest.mark.parametrize(
    "ours, factory, steps",
    [
        (S.Step(17, 0.5), lambda o: LR.StepLR(o, 17, 0.5), 150),
        (S.Step(1, 0.93), lambda o: LR.StepLR(o, 1, 0.93), 150),
        (S.Exponential(0.97), lambda o: LR.ExponentialLR(o, 0.97), 300),
        (S.Exponential(1.01), lambda o: LR.ExponentialLR(o, 1.01), 300),
        (S.Cosine(37, 0.01), lambda o: LR.CosineAnnealingLR(o, 37, 0.01), 200),  # past t_max: periodic
        (S.Cosine(10), lambda o: LR.CosineAnnealingLR(o, 10), 45),
        (S.Constant(), lambda o: LR.ConstantLR(o, 1.0, total_iters=1), 20),
    ],
    ids=["step17", "step1", "exp", "exp_up", "cosine", "cosine_eta0", "constant"],
)
def test_matches_torch_scheduler(ours, factory, steps):
    base = 0.3
    ref = torch_lrs(factory, base, steps)
    got = [ours.lr_at(t, base) for t in range(steps)]
    for t, (a, b) in enumerate(zip(got, ref)):
        # absolute floor: the cosine reaches 0 at t_max (eta_min = 0), where relative error is undefined
        assert abs(a - b) <= REL * abs(b) + 1e-15 * base, (t, a, b)
        assert float(torch.tensor(a, dtype=torch.float32)) == float(torch.tensor(b, dtype=torch.float32)) or abs(b) < 1e-12


def test_warmup_equals_linearlr_then_scheduler():
    ours = S.Warmup(6, S.MultiStep([20, 50], 0.1), start_factor=0.25)
    ref = torch_lrs(
        lambda o: LR.SequentialLR(
            o, [LR.LinearLR(o, 0.25, 1.0, total_iters=6), LR.MultiStepLR(o, [20, 50], 0.1)], milestones=[6]
        ),
        0.4,
        80,
    )
    got = [ours.lr_at(t, 0.4) for t in range(80)]
    for a, b in zip(got, ref):
        assert abs(a - b) <= REL * b
    # hand-computed: the ramp, then the inner schedule shifted by the warmup length
    assert got[0] == 0.4 * 0.25 and math.isclose(got[3], 0.4 * (0.25 + 0.75 * 3 / 6))
    assert got[6] == 0.4 and got[6 + 20] == 0.4 * 0.1


def test_warmup_default_start_factor():
    w = S.Warmup(4)
    assert [w.lr_at(t, 1.0) for t in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])


def test_piecewise_hand_computed_and_ignores_base():
    pw = S.Piecewise([3, 5], [0.5, 0.25, 0.125])
    assert [pw.lr_at(t) for t in range(7)] == [0.5, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
    assert pw.lr_at(4, base_lr=99.0) == 0.25


def test_base_lr_keyword_overrides_and_is_required_otherwise():
    assert S.MultiStep([2], 0.5, base_lr=0.8).lr_at(3, 0.1) == 0.4
    with pytest.raises(ValueError, match="base_lr"):
        S.Step(3).lr_at(0)


def test_from_epochs_converts_to_steps():
    spe = 7
    assert S.MultiStep.from_epochs([2, 5], 0.1, steps_per_epoch=spe).milestones == [14, 35]
    assert S.Step.from_epochs(3, 0.5, steps_per_epoch=spe).step_size == 21
    assert S.Cosine.from_epochs(4, 0.0, steps_per_epoch=spe).t_max == 28
    assert S.Warmup.from_epochs(2, steps_per_epoch=spe).steps == 14
    assert S.Piecewise.from_epochs([1], [0.1, 0.01], steps_per_epoch=spe).boundaries == [7]
    e = S.Exponential.from_epochs(0.5, steps_per_epoch=spe)
    assert math.isclose(e.lr_at(spe, 1.0), 0.5, rel_tol=1e-12)
    m = S.MultiStep.from_epochs([2], 0.1, steps_per_epoch=spe)
    assert m.lr_at(13, 1.0) == 1.0 and m.lr_at(14, 1.0) == 0.1


def test_ipow_matches_python_pow():
    for x in (0.1, 0.97, 1.01, 0.5):
        for k in (0, 1, 2, 3, 17, 100, 1000):
            assert math.isclose(S.ipow(x, k), x**k, rel_tol=1e-13, abs_tol=1e-300)


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: S.Step(0), ValueError, "step_size must be an int >= 1"),
        (lambda: S.Step(2.5), TypeError, "step_size must be an int"),
        (lambda: S.Step(3, gamma=-0.1), ValueError, r"gamma must be a finite number in \[0.0, inf\]"),
        (lambda: S.MultiStep([3, -1]), ValueError, r"milestones\[i\] must be an int >= 0"),
        (lambda: S.MultiStep(5), TypeError, "milestones must be a sequence"),
        (lambda: S.Exponential(float("nan")), ValueError, "gamma must be a finite number"),
        (lambda: S.Cosine(0), ValueError, "t_max must be an int >= 1"),
        (lambda: S.Cosine(10, eta_min=-1.0), ValueError, "eta_min"),
        (lambda: S.Warmup(0), ValueError, "steps must be an int >= 1"),
        (lambda: S.Warmup(3, then="cosine"), TypeError, "then must be a lrdecay.schedules.Schedule"),
        (lambda: S.Warmup(3, then=S.Warmup(2)), TypeError, "another Warmup"),
        (lambda: S.Warmup(3, start_factor=1.5), ValueError, "start_factor must be in"),
        (lambda: S.Piecewise([3, 3], [1, 2, 3]), ValueError, "strictly increasing"),
        (lambda: S.Piecewise([3], [1.0]), ValueError, "len\\(boundaries\\) \\+ 1 = 2"),
        (lambda: S.Constant(base_lr=-1.0), ValueError, r"base_lr must be a finite number in \[0.0, inf\]"),
        (lambda: S.MultiStep.from_epochs([1], steps_per_epoch=0), ValueError, "steps_per_epoch must be an int >= 1"),
        (lambda: S.Constant().lr_at(-1, 0.1), ValueError, "step must be an int >= 0"),
    ],
)
def test_bad_input(make, exc, match):
    with pytest.raises(exc, match=match):
        make()
