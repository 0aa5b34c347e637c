"""Fuzz: lrdecay.schedules (every schedule and AutoDecay) and lrdecay.optim.FusedSGD (see
tests/support/fuzz.py)."""

from __future__ import annotations

import bisect
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from support.fuzz import FEW, FUZZ, anything, clean_outcome, not_a_number, not_an_int, not_finite, rejected
from lrdecay import schedules as S
from lrdecay.optim import FusedSGD

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ---------------------------------------------------------------------------------------- schedules

base = st.floats(1e-6, 10)
rate = st.floats(0, 2)
steps = st.integers(1, 60)


@st.composite
def schedule_and_reference(draw):
    """(schedule, reference(t, base)), the reference written from the documented formula."""
    kind = draw(st.sampled_from(["constant", "step", "multistep", "exponential", "cosine", "piecewise"]))
    if kind == "constant":
        sched, ref = S.Constant(), (lambda t, b: b)
    elif kind == "step":
        size, g = draw(steps), draw(rate)
        sched, ref = S.Step(size, g), (lambda t, b: b * g ** (t // size))
    elif kind == "multistep":
        ms, g = draw(st.lists(st.integers(0, 80), max_size=5)), draw(rate)
        sched, ref = S.MultiStep(ms, g), (lambda t, b: b * g ** sum(m <= t for m in ms))
    elif kind == "exponential":
        g = draw(st.floats(0, 1.5))
        sched, ref = S.Exponential(g), (lambda t, b: b * g**t)
    elif kind == "cosine":
        tm, eta = draw(steps), draw(st.floats(0, 1e-3))

        def ref(t, b):
            r = t % (2 * tm)
            r = 2 * tm - r if r > tm else r
            return eta + (b - eta) * (1 + math.cos(math.pi * r / tm)) / 2

        sched = S.Cosine(tm, eta)
    else:
        bounds = sorted(set(draw(st.lists(st.integers(0, 80), max_size=4))))
        values = draw(st.lists(st.floats(0, 5), min_size=len(bounds) + 1, max_size=len(bounds) + 1))
        sched, ref = S.Piecewise(bounds, values), (lambda t, b: values[bisect.bisect_right(bounds, t)])
    if draw(st.booleans()) and kind != "piecewise":
        w, sf = draw(st.integers(1, 10)), draw(st.floats(0.01, 1))
        inner, inner_ref = sched, ref
        sched = S.Warmup(w, inner, start_factor=sf)

        def ref(t, b, inner_ref=inner_ref, w=w, sf=sf):
            return inner_ref(0, b) * (sf + (1 - sf) * t / w) if t < w else inner_ref(t - w, b)

    return sched, ref


@FUZZ
@given(schedule_and_reference(), base, st.lists(st.integers(0, 300), min_size=1, max_size=20))
def test_schedules_follow_their_formula(pair, b, ts):
    sched, ref = pair
    code = sched.encode(b)
    for t in ts:
        got, want = sched.lr_at(t, b), ref(t, b)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-300), (t, got, want)
        assert code.lr_at(t) == got  # the device form is the very same double


_bad_schedule = [
    (lambda v: S.Step(v), "step_size", st.one_of(st.integers(max_value=0), not_an_int)),
    (lambda v: S.Step(3, v), "gamma", st.one_of(st.floats(max_value=-1e-12), not_finite, not_a_number)),
    (lambda v: S.MultiStep([1, v]), "milestones[i]", st.one_of(st.integers(max_value=-1), not_an_int)),
    (lambda v: S.Exponential(v), "gamma", st.one_of(st.floats(max_value=-1e-12), not_finite, not_a_number)),
    (lambda v: S.Cosine(v), "t_max", st.one_of(st.integers(max_value=0), st.integers(2**24 + 1, 2**40), not_an_int)),
    (lambda v: S.Cosine(5, v), "eta_min", st.one_of(st.floats(max_value=-1e-12), not_finite, not_a_number)),
    (lambda v: S.Warmup(v), "steps", st.one_of(st.integers(max_value=0), not_an_int)),
    (lambda v: S.Warmup(3, start_factor=v), "start_factor", st.one_of(st.floats(max_value=0), st.floats(1.0001, 1e9), not_finite)),
    (lambda v: S.Piecewise([1, v], [1.0, 2.0, 3.0]), "boundaries[i]", st.one_of(st.integers(max_value=-1), not_an_int)),
    (lambda v: S.Piecewise([1], [1.0, v]), "values[i]", st.one_of(st.floats(max_value=-1e-12), not_finite, not_a_number)),
    (lambda v: S.Constant(base_lr=v), "base_lr", st.one_of(st.floats(max_value=-1e-12), not_finite, not_a_number.filter(lambda x: x is not None))),
    (lambda v: S.Constant().lr_at(v, 0.1), "step", st.one_of(st.integers(max_value=-1), not_an_int)),
    (lambda v: S.Step.from_epochs(2, steps_per_epoch=v), "steps_per_epoch", st.one_of(st.integers(max_value=0), not_an_int)),
]


@FUZZ
@given(st.sampled_from(range(len(_bad_schedule))), st.data())
def test_schedules_one_bad_argument(i, data):
    make, name, values = _bad_schedule[i]
    rejected(make, name, data.draw(values))


@FUZZ
@given(st.lists(st.floats(0.05, 10), min_size=1, max_size=40), st.floats(0.01, 0.99), st.integers(3, 7),
       st.floats(0, 0.5), st.one_of(st.none(), st.integers(1, 8)), st.one_of(st.none(), st.integers(0, 3)),
       st.floats(0, 0.01))
def test_autodecay_matches_a_reference(losses, gamma, window, fraction, min_stage, max_decays, min_lr):
    """The documented plateau rule re-derived independently: numpy's least squares (np.polyfit) for the
    slope and its standard error, scipy's Student t for the 95% bound."""
    stats = pytest.importorskip("scipy.stats")
    auto = S.AutoDecay(None, gamma=gamma, window=window, fraction=fraction, min_stage=min_stage,
                       max_decays=max_decays, min_lr=min_lr, base_lr=1.0)
    lr, stage, ref, decays, want = 1.0, [], None, 0, []
    x = np.arange(window, dtype=float)
    for epoch, loss in enumerate(losses, 1):
        stage.append(loss)
        fired = False
        if (max_decays is None or decays < max_decays) and len(stage) >= max(window, min_stage or window):
            ys = np.array(stage[-window:])
            slope, intercept = np.polyfit(x, ys, 1)
            resid = ys - (intercept + slope * x)
            se = math.sqrt(resid @ resid / (window - 2) / ((x - x.mean()) @ (x - x.mean())))
            upper = -slope + stats.t.ppf(0.95, window - 2) * se
            drop = (stage[0] if ref is None else ref) - (intercept + slope * (window - 1))
            lhs, rhs = window * upper, fraction * max(drop, 0.0)
            # a least-squares fit rounds at ~1e-16 of the loss scale (a flat stage gives lhs = 1e-17 in one
            # arithmetic and 0 in another): closer than that is too close to call
            scale = max(abs(v) for v in ys) * window
            if abs(lhs - rhs) > 1e-6 * (abs(lhs) + abs(rhs)) + 1e-12 * scale:
                fired = lhs <= rhs
            else:  # too close to call in another arithmetic: take the implementation's word
                fired = auto.test(stage, stage[0] if ref is None else ref)["plateau"]
        got = auto.step(loss)
        assert got == fired, (epoch, stage)
        if fired:
            lr, ref, stage, decays = max(lr * gamma, min_lr), loss, [], decays + 1
            want.append(epoch)
        assert auto.lr == pytest.approx(lr, rel=1e-12)
    assert auto.decay_epochs == want


@FUZZ
@given(st.sampled_from(["gamma", "window", "fraction", "min_stage", "max_decays", "min_lr", "base_lr"]), st.data())
def test_autodecay_one_bad_argument(name, data):
    bad = {
        "gamma": st.one_of(st.floats(1, 1e9), st.floats(max_value=0), not_finite, not_a_number),
        "window": st.one_of(st.integers(max_value=2), not_an_int),
        "fraction": st.one_of(st.floats(max_value=-1e-12), not_finite, not_a_number),
        "min_stage": st.one_of(st.integers(max_value=0), not_an_int.filter(lambda v: v is not None)),
        "max_decays": st.one_of(st.integers(max_value=-1), not_an_int.filter(lambda v: v is not None)),
        "min_lr": st.one_of(st.floats(max_value=-1e-12), not_finite, not_a_number),
        "base_lr": st.one_of(st.floats(max_value=-1e-12), not_finite, not_a_number.filter(lambda v: v is not None)),
    }[name]
    kw = {"base_lr": 0.1, name: data.draw(bad)}
    rejected(S.AutoDecay, name, None, **kw)


# ---------------------------------------------------------------------------------------- FusedSGD


@st.composite
def sgd_case(draw):
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    shapes = draw(st.lists(st.sampled_from([(1,), (7,), (0,), (3, 0), (5, 3), (65,), (2, 2, 2)]), min_size=1, max_size=4))
    momentum = draw(st.sampled_from([0.0, 0.5, 0.9123]))
    nesterov = momentum > 0 and draw(st.booleans())
    hyper = dict(lr=draw(st.floats(0, 2)), momentum=momentum,
                 dampening=0.0 if nesterov else draw(st.sampled_from([0.0, 0.25])),
                 weight_decay=draw(st.sampled_from([0.0, 1e-3, 0.5])), nesterov=nesterov, maximize=draw(st.booleans()))
    return dtype, shapes, hyper, draw(st.integers(1, 4)), draw(st.integers(0, 2**32 - 1))


@FUZZ
@given(sgd_case())
def test_fused_sgd_equals_torch_sgd(case):
    """Random hyperparameters, shapes (some with no elements), gradients (some None): the very same bits
    as torch.optim.SGD, parameters and momentum buffers."""
    dtype, shapes, hyper, n_steps, seed = case
    gen = torch.Generator().manual_seed(seed)
    ours = [torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in shapes]
    ref = [p.detach().clone().requires_grad_() for p in ours]
    opt, ref_opt = FusedSGD(ours, backend="torch", **hyper), torch.optim.SGD(ref, **hyper)
    for _ in range(n_steps):
        for p, q in zip(ours, ref):
            if torch.rand((), generator=gen) < 0.2:
                p.grad = q.grad = None
            else:
                g = torch.randn(p.shape, generator=gen, dtype=dtype)
                p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        ref_opt.step()
    for p, q in zip(ours, ref):
        assert torch.equal(p, q)
        a = opt.state[p].get("momentum_buffer") if p in opt.state else None
        b = ref_opt.state[q].get("momentum_buffer") if q in ref_opt.state else None
        assert (a is None) == (b is None) and (a is None or torch.equal(a, b))


# torch.optim.SGD's own words for a negative value (FusedSGD keeps them); other bad values name the argument.
_TORCH_WORDS = {"lr": "learning rate", "momentum": "momentum", "weight_decay": "weight_decay"}


@FUZZ
@given(st.sampled_from(["lr", "momentum", "dampening", "weight_decay"]), st.data())
def test_fused_sgd_one_bad_hyperparameter(name, data):
    p = torch.zeros(3, requires_grad=True)
    if name != "dampening" and data.draw(st.booleans()):  # negative: torch's check and message
        rejected(FusedSGD, _TORCH_WORDS[name], [p], **{name: data.draw(st.floats(-1e9, -1e-9))})
    else:
        bad = data.draw(st.one_of(not_finite, not_a_number, st.just(torch.tensor(0.1))))
        rejected(FusedSGD, name, [p], **{name: bad})


@FEW
@given(lr=anything, momentum=anything, dampening=anything, weight_decay=anything, nesterov=anything,
       backend=st.one_of(st.sampled_from(["auto", "torch", "x"]), anything), schedule=st.one_of(st.none(), anything))
def test_fused_sgd_anything(lr, momentum, dampening, weight_decay, nesterov, backend, schedule):
    p = torch.ones(3, requires_grad=True)
    opt = clean_outcome(FusedSGD, [p], lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, backend=backend, schedule=schedule)
    if opt is not None:
        p.grad = torch.ones(3)
        opt.step()
        assert torch.isfinite(p).all() or not math.isfinite(float(lr))
