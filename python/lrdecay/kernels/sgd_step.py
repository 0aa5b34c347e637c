"""One Triton launch for the (optionally scheduled) SGD-momentum step over a flat parameter buffer.

Per element, in torch.optim.SGD's operation order, with each ``a + alpha * b`` of torch done as one fused
multiply-add as torch's CPU and CUDA kernels do::

    g = -g if maximize;  g = fma(p, wd, g)
    buf = g (first step)  |  fma(g, 1 - dampening, buf * momentum)
    g = fma(buf, momentum, g) if nesterov else buf
    p = fma(g, -lr, p)

The math is float64 for float64 parameters (bit-equal to torch.optim.SGD) and float32 for every other
storage dtype (float32, float16, bfloat16: float32 math, rounded to the storage dtype on store; torch
rounds after every op instead, so half-precision results differ from torch's in the last bits).

The hyperparameters travel as the int64 bit patterns of the Python floats (Triton passes a Python float
argument as float32, which would round a float64 parameter's LR); the kernel rounds them to float32 for
float32 math exactly as torch rounds a Python-float ``alpha`` for a float32 tensor (to nearest even).

Traffic: read p, g, m and write p, m: 20 bytes per fp32 parameter (12 without momentum).

With a schedule the LR is computed inside the kernel (float64, then cast to float32 as torch casts its
Python-float LR) from an int64 step counter on the device by :func:`lrdecay.kernels.lr_schedule.schedule_lr`
(specialized at compile time on the schedule's kind and warmup), and the last program to arrive increments
the counter, so the step needs no host sync and can be captured in a CUDA graph and replayed.
"""

from __future__ import annotations

import struct

import torch
import triton
import triton.language as tl

from lrdecay.kernels import interpreting
from lrdecay.kernels.lr_schedule import KINDS, advance_step, max_programs, schedule_lr

__all__ = ["sgd_step", "BLOCK", "interpreting", "float_bits", "DTYPES", "constexprs", "launch_variants"]

BLOCK = 1024
NO_SCHEDULE = 0
#: The parameter dtypes the kernel steps (FusedSGD refuses others).
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
# Arithmetic exactly as written: the fused multiply-adds torch does are explicit tl.fma calls, and no
# other multiply and add may be contracted into one (Triton's default for this is changing).
_COMPILE_OPTIONS = {"enable_fp_fusion": False}


def float_bits(x: float) -> int:
    """The IEEE-754 float64 bit pattern of ``x`` as a signed int64 (how the kernel receives a float)."""
    return struct.unpack("<q", struct.pack("<d", float(x)))[0]


@triton.jit
def _from_bits(bits, F64: tl.constexpr):
    # int64 bit pattern -> float64 -> the compute dtype (round to nearest even, as torch rounds a
    # Python-float alpha for a float32 tensor). Zero arrives as an i32 argument, hence the widening.
    x = bits.to(tl.int64).to(tl.float64, bitcast=True)
    if not F64:
        x = x.to(tl.float32)
    return x


# The hyperparameter bit patterns are not specialized (divisibility by 16 would recompile per value).
@triton.jit(do_not_specialize=["lr_bits", "momentum_bits", "omd_bits", "wd_bits"])
def _sgd_step_kernel(
    p_ptr,
    g_ptr,
    m_ptr,
    n_elements,
    lr_bits,
    momentum_bits,
    omd_bits,
    wd_bits,
    step_ptr,
    arrive_ptr,
    si_ptr,
    sf_ptr,
    BLOCK: tl.constexpr,
    HAS_WD: tl.constexpr,
    HAS_MOMENTUM: tl.constexpr,
    FIRST_STEP: tl.constexpr,
    NESTEROV: tl.constexpr,
    MAXIMIZE: tl.constexpr,
    KIND: tl.constexpr,
    WARMUP: tl.constexpr,
    INCREMENT: tl.constexpr,
    F64: tl.constexpr,
):
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    if KIND != 0:
        t = tl.load(step_ptr)
        lr64 = schedule_lr(t, KIND, WARMUP, si_ptr, sf_ptr)
        if F64:
            lr = lr64
        else:
            lr = lr64.to(tl.float32)
        if INCREMENT:
            advance_step(step_ptr, arrive_ptr, t)
    else:
        lr = _from_bits(lr_bits, F64)
    mu = _from_bits(momentum_bits, F64)
    omd = _from_bits(omd_bits, F64)
    wd = _from_bits(wd_bits, F64)
    if F64:
        cdt = tl.float64
    else:
        cdt = tl.float32

    for start in range(pid * BLOCK, n_elements, nprog * BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mask = offs < n_elements
        p_raw = tl.load(p_ptr + offs, mask=mask)
        p = p_raw.to(cdt)
        g = tl.load(g_ptr + offs, mask=mask).to(cdt)
        if MAXIMIZE:
            g = -g
        if HAS_WD:
            g = tl.fma(p, wd, g)
        if HAS_MOMENTUM:
            if FIRST_STEP:
                buf = g
            else:
                buf = tl.load(m_ptr + offs, mask=mask).to(cdt)
                buf = tl.fma(g, omd, buf * mu)
            tl.store(m_ptr + offs, buf.to(p_raw.dtype), mask=mask)
            if NESTEROV:
                g = tl.fma(buf, mu, g)
            else:
                g = buf
        p = tl.fma(g, -lr, p)
        tl.store(p_ptr + offs, p.to(p_raw.dtype), mask=mask)


def constexprs(
    dtype: torch.dtype,
    *,
    momentum: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first_step: bool,
    kind: int,
    warmup: bool,
    increment: bool,
) -> dict[str, int | bool]:
    """The compile-time constants of the launch :func:`sgd_step` makes for these arguments (flags that
    cannot matter are normalised, so equivalent launches share one compiled kernel)."""
    has_momentum = momentum != 0
    scheduled = kind != NO_SCHEDULE
    return dict(
        BLOCK=BLOCK,
        HAS_WD=weight_decay != 0,
        HAS_MOMENTUM=has_momentum,
        FIRST_STEP=bool(first_step) and has_momentum,
        NESTEROV=bool(nesterov) and has_momentum,
        MAXIMIZE=bool(maximize),
        KIND=kind,
        WARMUP=bool(warmup) and scheduled,
        INCREMENT=bool(increment) and scheduled,
        F64=dtype == torch.float64,
    )


def launch_variants() -> list[tuple[torch.dtype, dict[str, int | bool]]]:
    """Every (parameter dtype, constexprs) that :func:`sgd_step` can launch, from :func:`constexprs`
    over every combination of its arguments (tests/kernels/test_aot_compile.py compiles them all)."""
    import itertools

    seen: dict[tuple, tuple[torch.dtype, dict]] = {}
    flags = (False, True)
    for dtype, momentum, wd, nesterov, maximize, first, kind, warmup, increment in itertools.product(
        DTYPES, (0.0, 0.9), (0.0, 1e-4), flags, flags, flags, (NO_SCHEDULE, *KINDS),
        flags, flags,
    ):
        if nesterov and momentum == 0:  # FusedSGD refuses Nesterov without momentum
            continue
        c = constexprs(dtype, momentum=momentum, weight_decay=wd, nesterov=nesterov, maximize=maximize,
                       first_step=first, kind=kind, warmup=warmup, increment=increment)
        seen.setdefault((dtype, *c.items()), (dtype, c))
    return list(seen.values())


def sgd_step(
    p: torch.Tensor,
    g: torch.Tensor,
    m: torch.Tensor | None,
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first_step: bool,
    schedule: tuple[int, bool, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    increment: bool = False,
) -> None:
    """One SGD step over flat 1-D contiguous ``p``, ``g`` (and ``m`` if momentum), in place.

    ``schedule`` is ``(kind, warmup, ints, floats, step_counter, arrive_counter)`` from a
    :class:`lrdecay.schedules.ScheduleCode` (ints/floats as int64/float64 device tensors, the counters
    int64 / int32 one-element device tensors); then ``lr`` is ignored, and ``increment`` makes this
    launch advance the step counter (set it on the last launch of an optimizer step).
    """
    n = p.numel()
    has_momentum = momentum != 0
    if p.dtype not in DTYPES:
        raise TypeError(f"sgd_step steps {[str(d) for d in DTYPES]} parameters, got {p.dtype}")
    if n == 0 and not (schedule is not None and increment):
        return
    grid = (max(1, min(triton.cdiv(n, BLOCK), max_programs(p.device))),)
    if schedule is None:
        kind, warmup = NO_SCHEDULE, False
        step_t = arrive_t = si = p  # never read: KIND == 0 compiles those loads away
        sf = p
        increment = False
    else:
        kind, warmup, si, sf, step_t, arrive_t = schedule
        if kind not in KINDS:
            raise ValueError(f"unknown schedule kind {kind}")
    _sgd_step_kernel[grid](
        p,
        g,
        m if has_momentum else p,
        n,
        float_bits(lr),
        float_bits(momentum),
        float_bits(1.0 - float(dampening)),
        float_bits(weight_decay),
        step_t,
        arrive_t,
        si,
        sf,
        **constexprs(
            p.dtype, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
            first_step=first_step, kind=kind, warmup=warmup, increment=increment,
        ),
        num_warps=4,
        **_COMPILE_OPTIONS,
    )
