"""Shared checks: StackedSGD against one torch.optim.SGD per member, for any backend.

Used by tests/test_stacked_optim.py (backend "torch") and tests/kernels/test_stacked_sgd_triton.py
(backend "triton" under TRITON_INTERPRET=1). Member m's reference is torch.optim.SGD on a copy of member
m's slices with member m's hyperparameters, its LR set before every step to its schedule's value (what a
solo FusedSGD uses) or to the host-set value, fed the same gradients.
"""

from __future__ import annotations

import itertools

import torch

from lrdecay import schedules as S
from lrdecay.optim import StackedSGD

# Every valid (momentum, dampening, nesterov, weight_decay) for a member; Nesterov needs momentum, no dampening.
MEMBER_COMBOS = [
    dict(momentum=m, dampening=d, nesterov=n, weight_decay=wd)
    for m, d, n, wd in itertools.product((0.0, 0.9), (0.0, 0.5), (False, True), (0.0, 1e-2))
    if not (n and (m == 0 or d != 0))
]

# One schedule of every device form (and a host-set LR: None), cycled over the members.
SCHEDULES = [
    S.MultiStep([3, 6], 0.1),
    None,
    S.Cosine(5, 0.001),
    S.Step(2, 0.5),
    S.Warmup(3, S.Exponential(0.9)),
    S.Constant(),
    S.Piecewise([2, 4], [0.3, 0.03, 0.003]),
]

# Awkward per-member shapes: 1, odd, 2-D, and (1100,) whose member share alone is longer than a block.
SHAPES = [(1,), (7,), (5, 3), (150,), (1100,)]


def make(backend: str, members: int, shapes=SHAPES, seed: int = 0):
    """(stacked params, optimizer, per-member reference [(params, torch SGD, schedule, lr)])."""
    g = torch.Generator().manual_seed(seed)
    base = [torch.randn(members, *s, generator=g) for s in shapes]
    combos = [MEMBER_COMBOS[m % len(MEMBER_COMBOS)] for m in range(members)]
    scheds = [SCHEDULES[m % len(SCHEDULES)] for m in range(members)]
    lrs = [0.05 + 0.02 * m for m in range(members)]
    stacked = [b.clone().requires_grad_() for b in base]
    opt = StackedSGD(
        stacked, members, lr=lrs, momentum=[c["momentum"] for c in combos],
        dampening=[c["dampening"] for c in combos], nesterov=[c["nesterov"] for c in combos],
        weight_decay=[c["weight_decay"] for c in combos], schedules=scheds, backend=backend,
    )
    refs = []
    for m in range(members):
        ps = [b[m].clone().requires_grad_() for b in base]
        refs.append([ps, torch.optim.SGD(ps, lr=lrs[m], **combos[m]), scheds[m], lrs[m]])
    return stacked, opt, refs


def feed(stacked, opt, refs, gen, t: int) -> None:
    """One step of both sides with the same fresh gradients."""
    grads = [torch.randn(p.shape, generator=gen) for p in stacked]
    opt.zero_grad()
    for p, gr in zip(stacked, grads):
        p.grad.copy_(gr)
    opt.step()
    for m, (ps, ref, sched, lr) in enumerate(refs):
        for p, gr in zip(ps, grads):
            p.grad = gr[m].clone()
        for group in ref.param_groups:
            group["lr"] = sched.lr_at(t, lr) if sched is not None else lr
        ref.step()


def max_rel_err(stacked, opt, refs) -> float:
    """Largest relative error over members' parameters and momentum buffers."""
    worst = 0.0
    for m, (ps, ref, _s, _lr) in enumerate(refs):
        bufs = opt.member_momentum(m)
        for j, p in enumerate(ps):
            pairs = [(stacked[j].detach()[m], p.detach())]
            rb = ref.state[p].get("momentum_buffer")
            if rb is not None:
                pairs.append((bufs[j], rb))
            else:
                assert bufs is None, f"member {m} has a momentum buffer that torch.optim.SGD does not"
            for a, b in pairs:
                den = b.abs().max().item() or 1.0
                worst = max(worst, (a.double() - b.double()).abs().max().item() / den)
    return worst


def run_parity(backend: str, members: int, steps: int, *, seed: int = 0, host_lr_at=None) -> float:
    """Run ``steps`` steps (changing host-set LRs at step ``host_lr_at``); returns the worst error."""
    stacked, opt, refs = make(backend, members, seed=seed)
    gen = torch.Generator().manual_seed(seed + 100)
    for t in range(steps):
        if host_lr_at is not None and t == host_lr_at:
            for m, r in enumerate(refs):
                if r[2] is None:
                    r[3] = r[3] * 0.1
                    opt.set_lr(m, r[3])
        feed(stacked, opt, refs, gen, t)
        assert opt.step_count == t + 1
        for m, r in enumerate(refs):  # host mirror of the next step's LR
            want = r[2].lr_at(t + 1, r[3]) if r[2] is not None else r[3]
            assert opt.member_lrs()[m] == want
    return max_rel_err(stacked, opt, refs)
