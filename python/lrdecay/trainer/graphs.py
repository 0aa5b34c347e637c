"""Capturing a training step in a CUDA graph and replaying it.

A step function reads everything it needs from tensors whose addresses never change (the resident
dataset, a permutation buffer, a device step counter) and writes its results in place (parameters,
optimizer state, the per-epoch bookkeeping buffers). Such a function can be captured once and replayed.

The first ``warmup`` calls run eagerly on a side stream, as CUDA graph capture requires (lazy cuBLAS
handles, autograd buffers); they are real training steps, not throw-away ones, so capturing changes no
number: after warm-up the graph is recorded (recording executes nothing) and every later call replays it.
"""

from __future__ import annotations

from typing import Callable

import torch

__all__ = ["GraphedStep"]


class GraphedStep:
    """Callable wrapper: eager for the first ``warmup`` calls, then a captured CUDA graph.

    Args:
        fn: the step; takes no arguments, touches only static tensors.
        warmup: eager calls before capture (>= 1).
        pool: a graph memory pool handle to share with sibling graphs (``torch.cuda.graph_pool_handle()``).
    """

    def __init__(self, fn: Callable[[], None], *, warmup: int = 3, pool=None) -> None:
        self.fn = fn
        self.warmup = max(1, int(warmup))
        self.pool = pool
        self.graph: torch.cuda.CUDAGraph | None = None
        self.calls = 0

    def __call__(self) -> None:
        if self.graph is not None:
            self.graph.replay()
        elif self.calls < self.warmup:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self.fn()
            torch.cuda.current_stream().wait_stream(side)
        else:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                self.fn()
            self.graph = graph
            graph.replay()  # capture recorded the step without running it
        self.calls += 1
