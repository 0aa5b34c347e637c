"""Timing a baseline against lrdecay in one benchmark, rounds alternating (baseline, ours, baseline, ...)
so that machine load hits both alike."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def alternate(benchmark, baseline: Callable[[], object], ours: Callable[[], object], rounds: int) -> tuple[float, float]:
    """Median seconds of ``baseline()`` and of ``ours()`` over ``rounds`` alternating calls, ``ours`` timed by
    pytest-benchmark too. Under ``--benchmark-disable`` each runs once."""
    base_times: list[float] = []
    ours_times: list[float] = []

    def run_baseline():
        t = time.perf_counter()
        baseline()
        base_times.append(time.perf_counter() - t)

    def run_ours():
        t = time.perf_counter()
        ours()
        ours_times.append(time.perf_counter() - t)

    if benchmark.disabled:
        run_baseline()
        benchmark(run_ours)
    else:
        benchmark.pedantic(run_ours, setup=run_baseline, rounds=rounds, iterations=1)
    return statistics.median(base_times), statistics.median(ours_times)
