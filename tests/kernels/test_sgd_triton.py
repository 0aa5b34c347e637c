"""FusedSGD on the "triton" backend, the kernel run by Triton's CPU interpreter (TRITON_INTERPRET=1).

Each launch costs ~10 ms in the interpreter, so hyperparameter combinations share one optimizer as
separate param groups (one launch per group per step) instead of one optimizer each.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")

from support import optim_parity as P  # noqa: E402
from lrdecay import schedules as S  # noqa: E402
from lrdecay.optim import FusedSGD, SparseGradientError  # noqa: E402

BACKEND = "triton"


def test_runs_interpreted():
    import lrdecay.kernels.sgd_step as k

    assert type(k._sgd_step_kernel).__name__ == "InterpretedFunction"


@pytest.mark.slow
def test_every_combination_as_groups_100_steps():
    # One param of an awkward size per group, a different one per group; grads None at random.
    shapes = [(1,), (7,), (5, 3), (13,)]
    combos = [c for c in P.COMBOS]
    ours = P.make_params([shapes[i % 4] for i in range(len(combos))] + [(45, 71)], seed=1)
    ref = P.clone_params(ours)

    def groups(ps):
        gs = [dict(params=[ps[i]], lr=0.05 + 0.01 * i, **c) for i, c in enumerate(combos)]
        gs[-1]["params"] = [ps[len(combos) - 1], ps[-1]]  # a 3195-element param: several blocks/programs
        return gs

    opt = FusedSGD(groups(ours), lr=0.1, backend=BACKEND)
    ref_opt = torch.optim.SGD(groups(ref), lr=0.1)
    gen = torch.Generator().manual_seed(2)
    for t in range(100):
        P.feed_grads(ours, ref, gen, 0.15, inplace=t % 3 != 0)
        opt.step()
        ref_opt.step()
    P.assert_close_state(opt, ours, ref_opt, ref)


@pytest.mark.slow
def test_none_grads_inside_one_group_100_steps():
    combo = dict(momentum=0.9, dampening=0.0, nesterov=True, weight_decay=1e-2, maximize=False)
    P.check_groups_parity(BACKEND, [combo], P.SHAPES, steps=100, none_prob=0.3, seed=4)


@pytest.mark.slow
def test_multisteplr_drives_group_lr():
    P.check_torch_scheduler_drives_lr(BACKEND, steps=100, seed=7)


@pytest.mark.parametrize("case", P.schedule_cases(), ids=lambda c: c[0])
@pytest.mark.slow
def test_schedule_vs_torch_scheduler(case):
    _, schedule, factory = case
    P.check_schedule_parity(BACKEND, schedule, factory, steps=100, seed=11)


@pytest.mark.slow
def test_state_dict_interchange_both_ways():
    P.check_state_dict_interchange(BACKEND, steps=8, seed=13)


@pytest.mark.slow
def test_schedule_position_survives_checkpoint():
    P.check_schedule_resume(BACKEND, seed=17)


@pytest.mark.slow
def test_real_model_backward_and_zero_grad():
    P.check_real_model(BACKEND, steps=15, seed=19)


def test_params_and_grads_are_flat_views():
    ps = P.make_params([(3,), (2, 2)], seed=0)
    opt = FusedSGD(ps, lr=0.1, backend=BACKEND)
    (b,) = opt._buckets[0]
    assert ps[0].data_ptr() == b.flat_p.data_ptr()
    assert ps[1].data_ptr() == b.flat_p.data_ptr() + 3 * 4
    assert ps[1].grad.data_ptr() == b.flat_g.data_ptr() + 3 * 4
    ps[1].grad.fill_(1.0)
    opt.zero_grad()  # set_to_none=True by default: ignored, the views stay
    assert ps[1].grad is not None and ps[1].grad.data_ptr() == b.flat_g.data_ptr() + 3 * 4
    assert float(b.flat_g.abs().sum()) == 0.0


@pytest.mark.slow
def test_device_step_counter_and_group_lr():
    p = torch.zeros(1500, requires_grad=True)
    sched = S.Warmup(3, S.Cosine(5, 0.001))
    opt = FusedSGD([p], lr=0.2, schedule=sched, backend=BACKEND)
    expected = torch.zeros(1500)
    for t in range(12):
        assert opt.param_groups[0]["lr"] == sched.lr_at(t, 0.2)
        p.grad.fill_(1.0)
        opt.step()
        expected.add_(torch.ones(1500), alpha=-sched.lr_at(t, 0.2))
    counter, arrive = opt._counters[p.device]
    assert int(counter) == 12 == opt.sync_step_count() and int(arrive) == 0
    assert torch.equal(p.detach(), expected)


def test_sparse_gradient_raises_and_changes_nothing():
    ps = P.make_params([(4, 3), (5,)], seed=0)
    opt = FusedSGD(ps, lr=0.1, momentum=0.9, backend=BACKEND, schedule=S.Constant())
    before = [p.detach().clone() for p in ps]
    ps[1].grad.fill_(1.0)
    ps[0].grad = torch.ones(4, 3).to_sparse()
    with pytest.raises(SparseGradientError, match="sparse gradients"):
        opt.step()
    for b, p in zip(before, ps):
        assert torch.equal(b, p.detach())
    assert opt.step_count == 0 and int(opt._counters[ps[0].device][0]) == 0


@pytest.mark.slow
def test_fp16_params_fp32_math():
    # torch rounds to fp16 after every op; the kernel only on store, so compare with an fp32 run.
    ps16 = P.make_params([(7,), (33,)], seed=3, dtype=torch.float16)
    ps32 = [p.detach().float().requires_grad_() for p in ps16]
    kw = dict(lr=0.05, momentum=0.9, weight_decay=1e-3)
    opt = FusedSGD(ps16, backend=BACKEND, **kw)
    ref = torch.optim.SGD(ps32, **kw)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        for p, q in zip(ps16, ps32):
            g = torch.randn(p.shape, generator=gen).half()
            p.grad.copy_(g)
            q.grad = g.float()
        opt.step()
        ref.step()
        for p in ps32:  # the fp32 reference also stores fp16-rounded params and buffers
            p.data.copy_(p.data.half().float())
            ref.state[p]["momentum_buffer"].copy_(ref.state[p]["momentum_buffer"].half().float())
    for p, q in zip(ps16, ps32):
        assert P.rel_err(p.detach().float(), q.detach()) <= 1e-3


@pytest.mark.slow
def test_float64_params_step_exactly_like_torch():
    # Regression: the kernel computed float64 parameters in float32 (0.9990000128746033 for 1 - 1e-3).
    p = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    p.grad = torch.ones(1, dtype=torch.float64)
    FusedSGD([p], lr=1e-3, backend=BACKEND).step()
    assert p.item() == 0.999
    P.check_float64_exact(BACKEND, steps=6, seed=23)


@pytest.mark.slow
def test_float64_with_device_schedule_exactly_like_torch():
    LR = torch.optim.lr_scheduler
    P.check_float64_exact(
        BACKEND, steps=7, seed=29, schedule=S.MultiStep([2, 5], 0.3123456789),
        torch_factory=lambda o: LR.MultiStepLR(o, [2, 5], 0.3123456789),
    )


@pytest.mark.slow
def test_compiled_step_advances_the_device_schedule():
    # Regression on the triton backend: a torch.compile-d step gives the eager numbers.
    import warnings

    torch._dynamo.reset()
    results = []
    for compiled in (False, True):
        p = torch.nn.Parameter(torch.ones(5))
        opt = FusedSGD([p], lr=1.0, schedule=S.MultiStep([2], 0.1), backend=BACKEND)

        def step_fn():  # called only within this iteration, so the late binding of p and opt is intended
            p.grad = torch.ones(5)  # noqa: B023
            opt.step()  # noqa: B023

        fn = torch.compile(step_fn, backend="eager") if compiled else step_fn
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(4):
                fn()
        results.append((opt.step_count, opt.sync_step_count(), opt.param_groups[0]["lr"], p.detach().clone()))
    (c0, d0, lr0, p0), (c1, d1, lr1, p1) = results
    assert c0 == d0 == c1 == d1 == 4 and lr0 == lr1 == pytest.approx(0.1)
    assert torch.equal(p0, p1)


def test_parameters_with_no_elements():
    P.check_empty_params(BACKEND, steps=2)
