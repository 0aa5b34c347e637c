"""Shared checks: FusedSGD against torch.optim.SGD (and torch's LR schedulers), for any backend.

Used by tests/test_optim.py (backend "torch") and tests/kernels/test_sgd_triton.py (backend "triton"
under TRITON_INTERPRET=1). The reference is always torch.optim.SGD on an identical copy of the parameters
fed the identical gradient sequence.
"""

from __future__ import annotations

import copy
import io
import itertools

import torch

from lrdecay import schedules as S
from lrdecay.optim import FusedSGD

RTOL = 1e-6  # fp32: max |a - b| / max |b| per tensor

# Every valid (momentum, dampening, nesterov, weight_decay, maximize); Nesterov needs momentum and no dampening.
COMBOS = [
    dict(momentum=m, dampening=d, nesterov=n, weight_decay=wd, maximize=mx)
    for m, d, n, wd, mx in itertools.product((0.0, 0.9), (0.0, 0.5), (False, True), (0.0, 1e-2), (False, True))
    if not (n and (m == 0 or d != 0))
]

# Awkward sizes: 1, odd, and (1500, 3195) larger than the kernel's 1024 block, not a multiple of it.
SHAPES = [(1,), (7,), (5, 3), (1500,), (45, 71)]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (0 when both are all-zero)."""
    den = b.abs().max().item()
    num = (a.double() - b.double()).abs().max().item()
    return num / den if den > 0 else num


def make_params(shapes, seed: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g).to(dtype).requires_grad_() for s in shapes]


def clone_params(params):
    return [p.detach().clone().requires_grad_() for p in params]


def feed_grads(ours, ref, gen: torch.Generator, none_prob: float, inplace: bool) -> None:
    """The same random gradients (or None) for both parameter lists.

    ``inplace``: write into FusedSGD's existing ``.grad`` (the fast path on the triton backend) instead of
    assigning a new tensor (which FusedSGD must copy into its flat buffer).
    """
    for p, q in zip(ours, ref):
        if none_prob and torch.rand((), generator=gen).item() < none_prob:
            p.grad = None
            q.grad = None
            continue
        g = torch.randn(p.shape, generator=gen).to(p.dtype)
        q.grad = g.clone()
        if inplace and p.grad is not None:
            p.grad.copy_(g)
        else:
            p.grad = g.clone()


def assert_close_state(ours_opt, ours, ref_opt, ref, rtol=RTOL) -> None:
    for i, (p, q) in enumerate(zip(ours, ref)):
        e = rel_err(p.detach(), q.detach())
        assert e <= rtol, f"param {i}: rel err {e}"
        mb_ref = ref_opt.state[q].get("momentum_buffer") if q in ref_opt.state else None
        mb = ours_opt.state[p].get("momentum_buffer") if p in ours_opt.state else None
        assert (mb is None) == (mb_ref is None), f"param {i}: momentum buffer presence differs"
        if mb is not None:
            e = rel_err(mb, mb_ref)
            assert e <= rtol, f"param {i}: momentum buffer rel err {e}"


def check_groups_parity(backend: str, combos, shapes, steps: int, none_prob: float, seed: int) -> None:
    """One param group per hyperparameter combination (group-specific lr too); ``steps`` steps."""
    ours = make_params(shapes * len(combos), seed)
    ref = clone_params(ours)
    k = len(shapes)

    def groups(ps):
        return [dict(params=ps[i * k : (i + 1) * k], lr=0.05 + 0.01 * i, **c) for i, c in enumerate(combos)]

    opt = FusedSGD(groups(ours), lr=0.1, backend=backend)
    ref_opt = torch.optim.SGD(groups(ref), lr=0.1)
    gen = torch.Generator().manual_seed(seed + 1)
    for t in range(steps):
        feed_grads(ours, ref, gen, none_prob, inplace=t % 3 != 0)
        opt.step()
        ref_opt.step()
    assert_close_state(opt, ours, ref_opt, ref)


def check_torch_scheduler_drives_lr(backend: str, steps: int, seed: int) -> None:
    """schedule=None: MultiStepLR changes group['lr'] and FusedSGD follows it."""
    ours = make_params(SHAPES, seed)
    ref = clone_params(ours)
    kw = dict(lr=0.2, momentum=0.9, weight_decay=5e-4)
    opt = FusedSGD(ours, backend=backend, **kw)
    ref_opt = torch.optim.SGD(ref, **kw)
    s1 = torch.optim.lr_scheduler.MultiStepLR(opt, [10, 30, 31], 0.3)
    s2 = torch.optim.lr_scheduler.MultiStepLR(ref_opt, [10, 30, 31], 0.3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        feed_grads(ours, ref, gen, 0.0, inplace=True)
        opt.step()
        ref_opt.step()
        s1.step()
        s2.step()
    assert opt.param_groups[0]["lr"] == ref_opt.param_groups[0]["lr"] < 0.2 * 0.3**2
    assert_close_state(opt, ours, ref_opt, ref)


def _sequential(ref_opt, torch_factory, warm_steps, start_factor):
    lin = torch.optim.lr_scheduler.LinearLR(ref_opt, start_factor, 1.0, total_iters=warm_steps)
    return torch.optim.lr_scheduler.SequentialLR(ref_opt, [lin, torch_factory(ref_opt)], milestones=[warm_steps])


def schedule_cases():
    """(id, our schedule, factory of the matching torch scheduler or None for a hand-set LR)."""
    LR = torch.optim.lr_scheduler
    return [
        ("multistep", S.MultiStep([10, 40, 40, 75], 0.3), lambda o: LR.MultiStepLR(o, [10, 40, 40, 75], 0.3)),
        ("step", S.Step(17, 0.5), lambda o: LR.StepLR(o, 17, 0.5)),
        ("exponential", S.Exponential(0.97), lambda o: LR.ExponentialLR(o, 0.97)),
        ("cosine", S.Cosine(37, 0.01), lambda o: LR.CosineAnnealingLR(o, 37, 0.01)),
        (
            "warmup_multistep",
            S.Warmup(6, S.MultiStep([20, 50], 0.1), start_factor=0.25),
            lambda o: _sequential(o, lambda o2: LR.MultiStepLR(o2, [20, 50], 0.1), 6, 0.25),
        ),
        ("piecewise", S.Piecewise([5, 60], [0.3, 0.05, 0.007]), None),
        ("constant", S.Constant(), lambda o: LR.ConstantLR(o, 1.0, total_iters=1)),
    ]


def check_schedule_parity(backend: str, schedule, torch_factory, steps: int, seed: int) -> None:
    """Our schedule inside FusedSGD vs torch.optim.SGD driven by the matching torch scheduler."""
    ours = make_params(SHAPES[:3] + [(33,)], seed)
    ref = clone_params(ours)
    kw = dict(lr=0.1, momentum=0.9, weight_decay=1e-3, nesterov=True)
    opt = FusedSGD(ours, schedule=schedule, backend=backend, **kw)
    ref_opt = torch.optim.SGD(ref, **kw)
    sched = torch_factory(ref_opt) if torch_factory is not None else None
    gen = torch.Generator().manual_seed(seed)
    for t in range(steps):
        if sched is None:
            ref_opt.param_groups[0]["lr"] = [0.3, 0.05, 0.007][(t >= 5) + (t >= 60)]
        lr_ref = ref_opt.param_groups[0]["lr"]
        lr_ours = opt.param_groups[0]["lr"]
        assert abs(lr_ours - lr_ref) <= 1e-12 * lr_ref + 1e-15, (t, lr_ours, lr_ref)
        feed_grads(ours, ref, gen, 0.0, inplace=t % 2 == 0)
        opt.step()
        ref_opt.step()
        if sched is not None:
            sched.step()
    assert opt.step_count == steps
    assert_close_state(opt, ours, ref_opt, ref)


def _roundtrip(sd):
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def check_state_dict_interchange(backend: str, steps: int, seed: int) -> None:
    """FusedSGD -> torch.optim.SGD and torch.optim.SGD -> FusedSGD, training continues identically."""
    kw = dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3)
    gen = torch.Generator().manual_seed(seed)
    # Two param groups; a parameter without a gradient in phase 1 has no buffer yet.
    a = make_params(SHAPES, seed)
    b = clone_params(a)
    opt_a = FusedSGD([dict(params=a[:2]), dict(params=a[2:], lr=0.02)], backend=backend, **kw)
    opt_b = torch.optim.SGD([dict(params=b[:2]), dict(params=b[2:], lr=0.02)], **kw)
    for _ in range(steps):
        feed_grads(a, b, gen, 0.0, inplace=True)
        a[0].grad = b[0].grad = None
        opt_a.step()
        opt_b.step()
    # Swap: torch SGD continues from FusedSGD's state, FusedSGD continues from torch SGD's state.
    a2, b2 = clone_params(a), clone_params(b)
    new_torch = torch.optim.SGD([dict(params=a2[:2]), dict(params=a2[2:])], lr=1.0)
    new_ours = FusedSGD([dict(params=b2[:2]), dict(params=b2[2:])], lr=1.0, backend=backend)
    new_torch.load_state_dict(_roundtrip(opt_a.state_dict()))
    new_ours.load_state_dict(_roundtrip(opt_b.state_dict()))
    assert [g["lr"] for g in new_ours.param_groups] == [0.05, 0.02]
    assert b2[0] not in new_ours.state or "momentum_buffer" not in new_ours.state[b2[0]]
    for _ in range(steps):
        # The same gradients for both continuations and for the uninterrupted torch run (opt_b on b).
        feed_grads(b2, a2, gen, 0.0, inplace=False)
        for p, q in zip(b, a2):
            p.grad = q.grad.clone()
        new_torch.step()
        new_ours.step()
        opt_b.step()
    assert_close_state(new_ours, b2, new_torch, a2)
    assert_close_state(new_ours, b2, opt_b, b)


def check_schedule_resume(backend: str, seed: int) -> None:
    """Checkpointing mid-schedule and resuming gives the same parameters as not stopping."""
    sched = S.MultiStep([4, 9], 0.2)
    kw = dict(lr=0.1, momentum=0.9)
    a = make_params(SHAPES[:3], seed)
    b = clone_params(a)
    opt_a = FusedSGD(a, schedule=sched, backend=backend, **kw)
    gen = torch.Generator().manual_seed(seed)
    grads = [[torch.randn(p.shape, generator=gen) for p in a] for _ in range(14)]
    for t in range(14):
        for p, g in zip(a, grads[t]):
            p.grad = g.clone()
        opt_a.step()
    opt_b = FusedSGD(b, schedule=sched, backend=backend, **kw)
    for t in range(6):
        for p, g in zip(b, grads[t]):
            p.grad = g.clone()
        opt_b.step()
    sd = _roundtrip(opt_b.state_dict())
    assert all(g["step_count"] == 6 for g in sd["param_groups"])
    c = [p.detach().clone().requires_grad_() for p in b]
    opt_c = FusedSGD(c, schedule=sched, backend=backend, **kw)
    opt_c.load_state_dict(sd)
    assert opt_c.step_count == 6 and opt_c.param_groups[0]["lr"] == sched.lr_at(6, 0.1)
    for t in range(6, 14):
        for p, g in zip(c, grads[t]):
            p.grad = g.clone()
        opt_c.step()
    for p, q in zip(c, a):
        assert torch.equal(p.detach(), q.detach())
    assert opt_c.param_groups[0]["lr"] == opt_a.param_groups[0]["lr"] == sched.lr_at(14, 0.1)


def check_real_model(backend: str, steps: int, seed: int) -> None:
    """A real model with backward() and zero_grad(): autograd accumulates into FusedSGD's gradient views."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    ref_model = copy.deepcopy(model)
    kw = dict(lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True)
    opt = FusedSGD(model.parameters(), backend=backend, **kw)
    ref_opt = torch.optim.SGD(ref_model.parameters(), **kw)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(9, 5, generator=gen)
        y = torch.randint(0, 3, (9,), generator=gen)
        for m, o in ((model, opt), (ref_model, ref_opt)):
            o.zero_grad()
            # Two backward passes: gradients must accumulate, as torch's do.
            torch.nn.functional.cross_entropy(m(x), y).backward()
            torch.nn.functional.cross_entropy(m(x[:4]), y[:4]).backward()
            o.step()
    assert_close_state(opt, list(model.parameters()), ref_opt, list(ref_model.parameters()))


def check_float64_exact(backend: str, steps: int, seed: int, schedule=None, torch_factory=None) -> None:
    """float64 parameters: every hyperparameter combination (one param group each, awkward sizes, some
    gradients None) gives exactly torch.optim.SGD's bits: parameters and momentum buffers. With
    ``schedule``, the LR comes from it (on the device for the triton backend) and the reference is driven
    by ``torch_factory``'s scheduler. Hyperparameters are chosen with many significant bits, so an update
    done in float32 (or hyperparameters rounded to float32) cannot pass."""
    shapes = [(1,), (7,), (5, 3), (1500,)]
    ours = make_params(shapes * len(COMBOS), seed, dtype=torch.float64)
    ref = clone_params(ours)
    k = len(shapes)

    def groups(ps):
        return [
            dict(params=ps[i * k : (i + 1) * k], lr=0.0123456789 + 0.001 * i,
                 **{**c, "momentum": c["momentum"] and 0.9123456789, "dampening": c["dampening"] and 0.1234567891,
                    "weight_decay": c["weight_decay"] and 1.23456789e-2})
            for i, c in enumerate(COMBOS)
        ]

    opt = FusedSGD(groups(ours), lr=0.1, backend=backend, schedule=schedule)
    ref_opt = torch.optim.SGD(groups(ref), lr=0.1)
    sched = torch_factory(ref_opt) if torch_factory is not None else None
    gen = torch.Generator().manual_seed(seed + 1)
    for t in range(steps):
        feed_grads(ours, ref, gen, 0.2, inplace=t % 3 != 0)
        opt.step()
        ref_opt.step()
        if sched is not None:
            sched.step()
    for i, (p, q) in enumerate(zip(ours, ref)):
        assert p.dtype == torch.float64
        assert torch.equal(p.detach(), q.detach()), f"param {i}: max diff {(p - q).abs().max().item()}"
        mb_ref = ref_opt.state[q].get("momentum_buffer") if q in ref_opt.state else None
        mb = opt.state[p].get("momentum_buffer") if p in opt.state else None
        assert (mb is None) == (mb_ref is None), f"param {i}: momentum buffer presence differs"
        if mb is not None:
            assert torch.equal(mb, mb_ref), f"param {i}: momentum buffer differs"


def check_empty_params(backend: str, steps: int = 3) -> None:
    """Parameters with no elements (``nn.Linear(0, 3)``'s weight, a ``zeros(0)``) beside normal ones:
    stepped like torch.optim.SGD steps them, momentum buffers included."""
    for kw in (dict(lr=0.1), dict(lr=0.1, momentum=0.9, weight_decay=1e-2, nesterov=True)):
        torch.manual_seed(0)
        model = torch.nn.Linear(0, 3)
        extra = torch.zeros(0, requires_grad=True)
        ours = [*model.parameters(), extra]
        ref = clone_params(ours)
        opt = FusedSGD(ours, backend=backend, **kw)
        ref_opt = torch.optim.SGD(ref, **kw)
        gen = torch.Generator().manual_seed(1)
        for _ in range(steps):
            feed_grads(ours, ref, gen, 0.0, inplace=False)
            opt.step()
            ref_opt.step()
        for p, q in zip(ours, ref):
            assert torch.equal(p.detach(), q.detach())
            a = opt.state[p].get("momentum_buffer") if p in opt.state else None
            b = ref_opt.state[q].get("momentum_buffer") if q in ref_opt.state else None
            assert (a is None) == (b is None)
            if a is not None:
                assert a.shape == b.shape and torch.equal(a, b)
