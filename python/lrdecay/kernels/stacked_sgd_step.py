"""One Triton launch for the SGD-momentum step of K stacked members, each with its own hyperparameters
and device-side LR schedule.

The parameters live in one flat buffer, one segment per stacked parameter of shape ``(K, ...)``
(contiguous, members on dim 0), so within a segment that starts at ``off`` with ``n`` elements per member
an element's member is ``(offset - off) // n``. The host cuts the buffer into tiles of at most ``BLOCK``
elements that never straddle two segments (``tiles[i] = (start, end, segment offset, n)``); programs walk
the tiles. Per member the kernel reads its
hyperparameters (float32 momentum, 1 - dampening, weight decay; int flags nesterov and "has momentum")
and evaluates its schedule from the shared int64 step counter with the evaluator :mod:`sgd_step` uses
(:func:`lrdecay.kernels.lr_schedule.schedule_lr`, float64, cast to float32), then applies torch.optim.SGD's update in
torch's operation order with fused multiply-adds::

    g = fma(p, wd, g) if wd != 0
    buf = g (first step) | fma(g, 1 - dampening, buf * momentum)      (members with momentum != 0)
    g = fma(buf, momentum, g) if nesterov else buf                    (members with momentum != 0)
    p = fma(g, -lr, p)

A tile spans one member, or a few when a member's share of the segment is smaller than ``BLOCK``; the
kernel loops over the members its tile touches, so the per-member scalars are computed once per tile, not
per element.

Schedules are packed per member: ``meta[m] = (kind, warmup, ints offset, floats offset)`` into one
int64 and one float64 table holding each member's :class:`lrdecay.schedules.ScheduleCode` (a host-set
LR is a one-value PIECEWISE code that the host rewrites). As in :mod:`sgd_step`, the last program to
arrive advances the step counter, so a step is one launch with no host sync, capturable in a CUDA graph.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from lrdecay.kernels import interpreting
from lrdecay.kernels.lr_schedule import advance_step, max_programs, schedule_lr

__all__ = ["stacked_sgd_step", "make_tiles", "BLOCK", "interpreting"]

BLOCK = 1024


def make_tiles(members: int, sizes: list[int], block: int = BLOCK) -> list[tuple[int, int, int, int]]:
    """Tiles ``(start, end, segment offset, elements per member)`` covering segments of ``members * n``
    elements each (``sizes`` = n per segment, in buffer order), none longer than ``block`` nor crossing a
    segment boundary."""
    out = []
    off = 0
    for n in sizes:
        length = members * n
        for a in range(off, off + length, block):
            out.append((a, min(a + block, off + length), off, n))
        off += length
    return out


@triton.jit
def _member_lr(t, m, meta_ptr, si_ptr, sf_ptr):
    # The LR of member m at step t: its ScheduleCode, found through meta[m], evaluated by the shared
    # evaluator with the kind and warmup read at run time.
    kind = tl.load(meta_ptr + 4 * m)
    warmup = tl.load(meta_ptr + 4 * m + 1) != 0
    si = si_ptr + tl.load(meta_ptr + 4 * m + 2)
    sf = sf_ptr + tl.load(meta_ptr + 4 * m + 3)
    return schedule_lr(t, kind, warmup, si, sf)


@triton.jit
def _stacked_sgd_kernel(
    p_ptr,
    g_ptr,
    m_ptr,
    tiles_ptr,
    n_tiles,
    hyper_ptr,  # float32 (M, 3): momentum, 1 - dampening, weight decay
    flags_ptr,  # int32 (M, 2): nesterov, has momentum
    meta_ptr,
    si_ptr,
    sf_ptr,
    step_ptr,
    arrive_ptr,
    BLOCK: tl.constexpr,
    FIRST_STEP: tl.constexpr,
    ANY_MOMENTUM: tl.constexpr,
):
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    t = tl.load(step_ptr)
    for tile in range(pid, n_tiles, nprog):
        start = tl.load(tiles_ptr + 4 * tile)
        end = tl.load(tiles_ptr + 4 * tile + 1)
        seg = tl.load(tiles_ptr + 4 * tile + 2)
        per_member = tl.load(tiles_ptr + 4 * tile + 3)
        offs = start + tl.arange(0, BLOCK)
        mask = offs < end
        p_raw = tl.load(p_ptr + offs, mask=mask)
        p = p_raw.to(tl.float32)
        g_in = tl.load(g_ptr + offs, mask=mask).to(tl.float32)
        if ANY_MOMENTUM:
            if FIRST_STEP:
                buf_in = g_in
            else:
                buf_in = tl.load(m_ptr + offs, mask=mask).to(tl.float32)
        else:
            buf_in = g_in
        member = (offs - seg) // per_member
        new_p = p
        new_buf = buf_in
        m_lo = (start - seg) // per_member
        m_hi = (end - 1 - seg) // per_member
        for m in range(m_lo, m_hi + 1):
            sel = mask & (member == m)
            lr32 = _member_lr(t, m, meta_ptr, si_ptr, sf_ptr).to(tl.float32)
            mu = tl.load(hyper_ptr + 3 * m)
            omd = tl.load(hyper_ptr + 3 * m + 1)
            wd = tl.load(hyper_ptr + 3 * m + 2)
            nesterov = tl.load(flags_ptr + 2 * m) != 0
            has_mom = tl.load(flags_ptr + 2 * m + 1) != 0
            g = tl.where(wd != 0.0, tl.fma(p, wd, g_in), g_in)
            if ANY_MOMENTUM:
                if FIRST_STEP:
                    buf = g
                else:
                    buf = tl.fma(g, omd, buf_in * mu)
                d = tl.where(nesterov, tl.fma(buf, mu, g), buf)
                d = tl.where(has_mom, d, g)
                new_buf = tl.where(sel & has_mom, buf, new_buf)
            else:
                d = g
            new_p = tl.where(sel, tl.fma(d, -lr32, p), new_p)
        if ANY_MOMENTUM:
            tl.store(m_ptr + offs, new_buf.to(p_raw.dtype), mask=mask)
        tl.store(p_ptr + offs, new_p.to(p_raw.dtype), mask=mask)
    advance_step(step_ptr, arrive_ptr, t)


def stacked_sgd_step(
    p: torch.Tensor,
    g: torch.Tensor,
    m: torch.Tensor | None,
    *,
    tiles: torch.Tensor,
    hyper: torch.Tensor,
    flags: torch.Tensor,
    meta: torch.Tensor,
    ints: torch.Tensor,
    floats: torch.Tensor,
    step: torch.Tensor,
    arrive: torch.Tensor,
    first_step: bool,
) -> None:
    """One step over the flat buffers ``p``, ``g`` (and ``m`` when any member has momentum), in place,
    advancing the step counter ``step`` by one.

    ``tiles``: int64 (T, 4) from :func:`make_tiles`; ``hyper``: float32 (M, 3) momentum / 1 - dampening / weight decay; ``flags``: int32 (M, 2) nesterov /
    has momentum; ``meta``: int64 (M, 4) schedule kind / warmup / offset into ``ints`` (int64) / offset
    into ``floats`` (float64); ``step``: int64 (1,); ``arrive``: int32 (1,) zero between launches.
    Members whose momentum is 0 leave their part of ``m`` untouched.
    """
    n_tiles = tiles.shape[0]
    grid = (max(1, min(n_tiles, max_programs(p.device))),)
    any_momentum = m is not None
    _stacked_sgd_kernel[grid](
        p,
        g,
        m if any_momentum else p,
        tiles,
        n_tiles,
        hyper,
        flags,
        meta,
        ints,
        floats,
        step,
        arrive,
        BLOCK=BLOCK,
        FIRST_STEP=bool(first_step),
        ANY_MOMENTUM=any_momentum,
        num_warps=4,
    )
