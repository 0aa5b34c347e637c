"""StackedSGD on the "triton" backend: the one-launch stacked kernel run by Triton's CPU interpreter."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")

from support import stacked_parity as P  # noqa: E402
from lrdecay.kernels.stacked_sgd_step import make_tiles  # noqa: E402

RTOL = 1e-6


def test_runs_interpreted():
    import lrdecay.kernels.stacked_sgd_step as k

    assert type(k._stacked_sgd_kernel).__name__ == "InterpretedFunction"


@pytest.mark.slow
def test_every_member_combination_and_schedule_like_torch_sgd():
    # 13 members over tiles that hold several members (small segments) and members spread over several
    # tiles ((1100,) per member), 2 interpreter programs walking them; host-set LRs changed mid-run.
    assert P.run_parity("triton", 13, steps=8, host_lr_at=4) <= RTOL


@pytest.mark.slow
def test_single_member():
    assert P.run_parity("triton", 1, steps=4, seed=5) <= RTOL


@pytest.mark.slow
def test_one_launch_per_step_and_the_device_counter_advances():
    import lrdecay.kernels.stacked_sgd_step as k

    stacked, opt, refs = P.make("triton", 4)
    calls = []
    orig = k._stacked_sgd_kernel
    real_getitem = type(orig).__getitem__

    class Spy:
        def __getitem__(self, grid):
            launch = real_getitem(orig, grid)

            def run(*a, **kw):
                calls.append(grid)
                return launch(*a, **kw)

            return run

    k._stacked_sgd_kernel = Spy()
    try:
        gen = torch.Generator().manual_seed(0)
        for t in range(3):
            P.feed(stacked, opt, refs, gen, t)
    finally:
        k._stacked_sgd_kernel = orig
    assert len(calls) == 3
    assert int(opt._step_t.item()) == 3 and int(opt._arrive_t.item()) == 0


@pytest.mark.parametrize("members,sizes", [(1, [1]), (3, [7, 1100]), (13, [1, 150]), (2, [512, 513])])
def test_tiles_cover_each_segment_once_without_crossing(members, sizes):
    tiles = make_tiles(members, sizes, block=1024)
    covered = []
    off = 0
    bounds = []
    for n in sizes:
        bounds.append((off, off + members * n, n))
        off += members * n
    for start, end, seg, n in tiles:
        assert 0 < end - start <= 1024
        assert any(a == seg and start >= a and end <= b and n == m for a, b, m in bounds)
        covered.extend(range(start, end))
    assert covered == list(range(off))
