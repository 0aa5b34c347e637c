"""The device side of :class:`lrdecay.schedules.ScheduleCode`: one ``@triton.jit`` LR evaluator and the
step counter's advance, shared by the solo (:mod:`.sgd_step`) and stacked (:mod:`.stacked_sgd_step`)
SGD kernels.

:func:`schedule_lr` evaluates a code exactly as :meth:`ScheduleCode.lr_at` does on the host (float64,
the same operations in the same order), so ``group['lr']`` on the host and the LR the kernel applies are
the same double. ``kind`` and ``warmup`` may be compile-time constants (the solo kernel specializes on
them, so each launch carries only its schedule's code) or values loaded at run time (the stacked kernel,
one schedule per member): the branches are the same code either way.

:func:`advance_step` is how a launch moves the int64 step counter on the device without a host sync:
every program reads ``t`` first, and the last program to arrive stores ``t + 1`` and resets the arrival
counter, so a step can be captured in a CUDA graph and replayed.

Why two SGD kernels and not one: the solo kernel is specialized at compile time on what a param group
fixes (float64 math for float64 parameters, bit-equal to torch.optim.SGD; maximize; the hyperparameters
as exact float64 bit patterns; the schedule kind) and walks one contiguous range, while the stacked kernel
reads per-member hyperparameters and schedules at run time and selects each element's member. Serving
FusedSGD from the stacked kernel would put the per-member selection and table loads into every solo
launch and drop the float64 path; whether that costs nothing on a GPU has not been measured (no GPU was
available to this change), so the two stay, and what they had in common (this evaluator, the counter
advance, the grid size) lives here once.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from lrdecay.schedules import GEOMETRIC, PERIODIC, PIECEWISE

__all__ = ["schedule_lr", "advance_step", "ipow", "max_programs", "KINDS"]

#: The schedule kinds the evaluator knows (:data:`lrdecay.schedules.PIECEWISE` and friends).
KINDS = (PIECEWISE, GEOMETRIC, PERIODIC)
_PIECEWISE: tl.constexpr = tl.constexpr(PIECEWISE)
_GEOMETRIC: tl.constexpr = tl.constexpr(GEOMETRIC)


@triton.jit
def ipow(x, k):
    """``x ** k`` by squaring, float64, in the operation order of :func:`lrdecay.schedules.ipow`."""
    r = x * 0.0 + 1.0
    for _ in range(63):
        r = tl.where((k & 1) == 1, r * x, r)
        x = x * x
        k = k >> 1
    return r


@triton.jit
def _inner_lr(u, kind, si_ptr, sf_ptr):
    # The code's kind-specific part at step u (warmup already taken off), as ScheduleCode._inner.
    lr = tl.load(sf_ptr + 1)
    if kind == _PIECEWISE:  # values[#boundaries <= u]
        n = tl.load(si_ptr + 1)
        k = u * 0
        for i in range(n):
            k += (tl.load(si_ptr + 2 + i) <= u).to(tl.int64)
        lr = tl.load(sf_ptr + 1 + k)
    elif kind == _GEOMETRIC:  # base * gamma ** (u // period)
        lr = tl.load(sf_ptr + 1) * ipow(tl.load(sf_ptr + 2), u // tl.load(si_ptr + 1))
    else:  # PERIODIC: mirrored table over one half period
        half = tl.load(si_ptr + 1)
        r = u % (2 * half)
        r = tl.where(r > half, 2 * half - r, r)
        lr = tl.load(sf_ptr + 1 + r)
    return lr


@triton.jit
def schedule_lr(t, kind, warmup, si_ptr, sf_ptr):
    """The float64 LR at step ``t`` (int64) of the ScheduleCode whose int64 and float64 tables start at
    ``si_ptr`` / ``sf_ptr`` (``ints[0]`` warmup steps, ``floats[0]`` warmup start factor)."""
    u = t
    if warmup:
        u = tl.where(t < tl.load(si_ptr), t * 0, t - tl.load(si_ptr))
    lr = _inner_lr(u, kind, si_ptr, sf_ptr)
    if warmup:
        warm = tl.load(si_ptr)
        start = tl.load(sf_ptr)
        ramp = start + (1.0 - start) * t.to(tl.float64) / tl.maximum(warm, 1).to(tl.float64)
        lr = tl.where(t < warm, lr * ramp, lr)
    return lr


@triton.jit
def advance_step(step_ptr, arrive_ptr, t):
    """Store ``t + 1`` in the step counter once every program of the launch has arrived (call after
    reading ``t``, once per program)."""
    arrived = tl.atomic_add(arrive_ptr, 1, sem="acq_rel")
    last = arrived == tl.num_programs(0) - 1
    tl.store(step_ptr, t + 1, mask=last)
    tl.store(arrive_ptr, arrived * 0, mask=last)


_SM_COUNT: dict[int, int] = {}


def max_programs(device: torch.device) -> int:
    """The grid size cap of the grid-stride kernels: 16 programs per SM on CUDA, 2 in the interpreter
    (few programs, so the grid-stride loop and the arrival counter are exercised on the CPU)."""
    if device.type != "cuda":
        return 2
    idx = device.index if device.index is not None else torch.cuda.current_device()
    if idx not in _SM_COUNT:
        _SM_COUNT[idx] = torch.cuda.get_device_properties(idx).multi_processor_count
    return _SM_COUNT[idx] * 16
