"""The SGD-momentum update as functions over tensor lists, one per backend (torch's ``optim/sgd.py`` shape).

Every backend computes torch.optim.SGD's update in torch's operation order::

    g = -g if maximize;  g = g + wd * p
    buf = g (first step)  |  buf * momentum + (1 - dampening) * g
    g = g + momentum * buf if nesterov else buf
    p = p - lr * g

- :func:`foreach_sgd`: torch's multi-tensor (``torch._foreach_*``) ops; any device and dtype.
- :func:`native_sgd` / :func:`native_sgd_ptrs`: float32 CPU tensors in one Rust pass per tensor
  (``lrdecay._native.sgd_step_f32_ptrs``), bit-equal to the foreach ops and several times less memory
  traffic.
- :func:`triton_bucket_step` / :func:`triton_stacked_step`: one Triton launch over flat buffers
  (:mod:`lrdecay.kernels`), the LR evaluated on the device from a schedule code and a step counter.

The optimizer classes (:class:`~lrdecay.optim.FusedSGD`, :class:`~lrdecay.optim.StackedSGD`) own the state
and choose the backend; these functions own the arithmetic.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from lrdecay import _native
from lrdecay.optim._checks import SparseGradientError

__all__ = [
    "foreach_sgd",
    "native_sgd",
    "native_sgd_ptrs",
    "triton_bucket_step",
    "triton_stacked_step",
]

_SPARSE = "FusedSGD does not support sparse gradients (torch: `_fused_sgd` does not support sparse gradients)"


def foreach_sgd(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    bufs: list[torch.Tensor | None] | None,
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first_step: bool = False,
) -> list[torch.Tensor] | None:
    """One step with torch's multi-tensor ops, in place on ``params`` (and the momentum buffers).

    ``bufs`` (with momentum): one momentum buffer per parameter; a ``None`` entry is created from the
    gradient (that parameter's first momentum step), and ``first_step=True`` says the given buffers hold no
    state yet (they are overwritten with the gradient). Returns the buffers (created ones included), or
    None without momentum. ``grads`` are never written (fresh tensors are made where torch makes them).
    """
    # Like torch: `grads` holds fresh tensors only after maximize/weight decay made them.
    owned = False
    if maximize:
        grads = torch._foreach_neg(grads)
        owned = True
    if weight_decay != 0:
        if owned:
            torch._foreach_add_(grads, params, alpha=weight_decay)
        else:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)
            owned = True
    if momentum == 0:
        torch._foreach_add_(params, grads, alpha=-lr)
        return None
    old = list(bufs) if bufs is not None else [None] * len(params)
    if first_step:
        for b, g in zip(old, grads):
            if b is not None:
                b.copy_(g)
        out = [g.detach().clone() if b is None else b for b, g in zip(old, grads)]
    elif all(b is not None for b in old):
        out = old
        torch._foreach_mul_(out, momentum)
        torch._foreach_add_(out, grads, alpha=1 - dampening)
    else:
        out = []
        for b, g in zip(old, grads):
            if b is None:
                b = g.detach().clone()
            else:
                b.mul_(momentum).add_(g, alpha=1 - dampening)
            out.append(b)
    if nesterov:
        # Out of place when `grads` are the user's .grad tensors (torch's single-tensor path leaves
        # .grad untouched too).
        if owned:
            torch._foreach_add_(grads, out, alpha=momentum)
        else:
            grads = torch._foreach_add(grads, out, alpha=momentum)
    else:
        grads = out
    torch._foreach_add_(params, grads, alpha=-lr)
    return out


def native_sgd_ptrs(
    p_addrs: list[int],
    g_addrs: list[int],
    m_addrs: list[int] | None,
    sizes: list[int],
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first_step: bool,
) -> None:
    """One step over contiguous float32 CPU memory given by addresses and lengths, in one Rust pass per
    run: the same update as :func:`foreach_sgd`, bit for bit (one fused multiply-add per ``a + alpha*b``,
    coefficients rounded to float32 as torch rounds them). The caller guarantees the addresses."""
    _native.sgd_step_f32_ptrs(
        p_addrs, g_addrs, m_addrs if momentum != 0 else None, sizes,
        lr=float(lr), momentum=float(momentum), dampening=float(dampening), weight_decay=float(weight_decay),
        nesterov=bool(nesterov), maximize=bool(maximize), first_step=bool(first_step),
    )


def native_sgd(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    bufs: list[torch.Tensor | None] | None,
    **hyper: Any,
) -> list[torch.Tensor] | None | bool:
    """:func:`foreach_sgd`'s update in one Rust pass per parameter, where it applies: float32 CPU
    tensors, contiguous, and the momentum buffers all present or all missing (then created). Returns
    False, having changed nothing, where it does not apply; else the momentum buffers (None without
    momentum)."""
    p0 = params[0]
    if p0.device.type != "cpu" or p0.dtype != torch.float32:
        return False
    if not all(t.is_contiguous() and t.layout == torch.strided for t in (*params, *grads)):
        return False
    if not all(g.dtype == torch.float32 and g.device.type == "cpu" and g.shape == p.shape for p, g in zip(params, grads)):
        return False
    first = False
    out = None
    if hyper["momentum"] != 0:
        old = list(bufs) if bufs is not None else [None] * len(params)
        if all(b is None for b in old):
            first = True
            out = [torch.empty_like(g, memory_format=torch.contiguous_format) for g in grads]
        elif all(
            b is not None and b.is_contiguous() and b.dtype == torch.float32 and b.device.type == "cpu"
            and b.shape == p.shape for b, p in zip(old, params)
        ):
            out = old
        else:
            return False
    # Addresses, not numpy views: a torch -> numpy conversion costs more than a small tensor's update.
    # Every tensor was checked above to be a contiguous float32 CPU tensor (grads and buffers have their
    # parameter's shape), which is the contract of sgd_step_f32_ptrs.
    native_sgd_ptrs(
        [p.data_ptr() for p in params], [g.data_ptr() for g in grads],
        [b.data_ptr() for b in out] if out is not None else None, [p.numel() for p in params],
        first_step=first, **hyper,
    )
    return out


def check_dense(grads: list[torch.Tensor | None]) -> None:
    """Raise :class:`SparseGradientError` if any gradient is sparse (before anything is changed)."""
    for g in grads:
        if g is not None and g.is_sparse:
            raise SparseGradientError(_SPARSE)


def triton_bucket_step(
    param_groups: list[dict[str, Any]],
    buckets: list[list[Any]],
    state: Any,
    code_of: Callable[[int, torch.device], Any] | None,
    counters: dict[torch.device, tuple[torch.Tensor, torch.Tensor]],
) -> None:
    """FusedSGD's triton step: one launch per run of parameters that share (has a gradient, first momentum
    step) in each :class:`~lrdecay.optim.layout.Bucket` (one launch per bucket in the common case).

    ``code_of(group index, device)`` gives the group's device schedule code (None: no schedule, the LR is
    ``group['lr']``); the step counter of each device advances once, in that device's last launch.
    ``state[p]['momentum_buffer']`` is set to the flat buffer's view on a parameter's first momentum step.
    """
    from lrdecay.kernels.sgd_step import sgd_step

    # Pass 1: inspect everything and validate, so a bad input raises before anything changes.
    plans = []
    for gi, group in enumerate(param_groups):
        for b in buckets[gi]:
            b.check_storage()
            grads = [p.grad for p in b.params]
            if all(g is v for g, v in zip(grads, b.g_views)):
                plans.append((gi, group, b, None))
                continue
            check_dense(grads)
            plans.append((gi, group, b, grads))

    # Pass 2: pull foreign gradients into the flat buffer, build contiguous runs of parameters that
    # share (has a gradient, first momentum step), one launch per run: one in the common case.
    launches = []
    for gi, group, b, grads in plans:
        momentum = group["momentum"]
        if momentum != 0:
            b.ensure_momentum()
        if grads is None and (momentum == 0 or b.all_have_buf or not any(b.has_buf)):
            first = momentum != 0 and not b.all_have_buf
            launches.append((gi, group, b, 0, len(b.params), first))
            continue
        if grads is None:
            grads = b.g_views
        flags = []
        for idx, (p, g, gv) in enumerate(zip(b.params, grads, b.g_views)):
            if g is not None and g is not gv:
                gv.copy_(g)
                p.grad = gv
            flags.append((g is not None, momentum != 0 and not b.has_buf[idx]))
        i = 0
        while i < len(flags):
            j = i
            while j < len(flags) and flags[j] == flags[i]:
                j += 1
            if flags[i][0]:
                launches.append((gi, group, b, i, j, flags[i][1]))
            i = j

    # The step counter advances once per step, in the last launch on each device.
    last_on_dev: dict[torch.device, int] = {}
    for k, (_gi, _group, b, *_rest) in enumerate(launches):
        last_on_dev[b.flat_p.device] = k
    for k, (gi, group, b, i, j, first) in enumerate(launches):
        a, e = b.offsets[i], b.offsets[j]
        dev = b.flat_p.device
        sched = None
        if code_of is not None:
            sched = (*code_of(gi, dev), *counters[dev])
        momentum = group["momentum"]
        sgd_step(
            b.flat_p[a:e],
            b.flat_g[a:e],
            b.flat_m[a:e] if momentum != 0 else None,
            lr=group["lr"],
            momentum=momentum,
            dampening=group["dampening"],
            weight_decay=group["weight_decay"],
            nesterov=group["nesterov"],
            maximize=group["maximize"],
            first_step=first,
            schedule=sched,
            increment=last_on_dev.get(dev) == k,
        )
        if first:
            for idx in range(i, j):
                b.has_buf[idx] = True
                state[b.params[idx]]["momentum_buffer"] = b.m_views[idx]
            b.all_have_buf = all(b.has_buf)
    if code_of is not None:
        for dev, (step_t, _) in counters.items():
            if dev not in last_on_dev:
                step_t.add_(1)


def triton_stacked_step(layout: Any, tables: Any, *, first_step: bool) -> None:
    """StackedSGD's triton step: one launch over the stacked flat buffers of ``layout``
    (:class:`~lrdecay.optim.layout.StackedLayout`), the per-member hyperparameters and schedule codes in
    ``tables`` (``tiles``, ``hyper``, ``flags``, ``lrs``: a :class:`~lrdecay.optim.lr_table.MemberTable`,
    ``step``, ``arrive``); advances the step counter."""
    from lrdecay.kernels.stacked_sgd_step import stacked_sgd_step

    lrs = tables.lrs
    stacked_sgd_step(
        layout.flat_p, layout.flat_g, layout.flat_m, tiles=tables.tiles, hyper=tables.hyper,
        flags=tables.flags, meta=lrs.meta, ints=lrs.ints, floats=lrs.floats,
        step=tables.step, arrive=tables.arrive, first_step=first_step,
    )
