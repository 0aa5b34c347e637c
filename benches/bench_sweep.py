"""A sweep of the reproduction's 9 shared runs vs the same runs trained one after another.

The workload: the ``quick`` preset's lrDecay / large / small runs (3 schedules × 3 seeds; ps10, 32k
samples with 20% label noise, test set + 3 probe sets, MLP 3×64 + BatchNorm, batch 128, SGD momentum +
weight decay, ledger, eval-mode training-set pass and snapshots on, as the experiments train them), 2
epochs each, on the CPU with one torch thread per process (the preset's
setting). The baseline is what a user would otherwise do: ``lrdecay.train(cfg)`` for each config in turn.
The candidates are :func:`lrdecay.sweep.run_sweep` with each executor (``stack``: the 9 runs as one
stacked model in this process; ``process``: two worker processes, each a stacked model of 4-5 members;
``process`` without stacking), writing their folders, tables and manifests as a sweep always does.

Rounds alternate (baseline, then each executor) so that machine load hits all alike; each executor's
ratio is the baseline's median over its median, and ``extra_info["speedup_best"]`` is the best of them
(``extra_info["best_executor"]`` says which). Before timing, the baseline and every executor train a tiny
copy of the workload once (1 epoch, 512 samples): that pays the imports and torch's first-call costs in
this process and in each worker of the pool (a sweep keeps its pool for the process's later sweeps);
``extra_info["warmup_<executor>_s"]`` records those warm-up sweeps, the process pool's start included.
Under ``--benchmark-disable`` a tiny version runs once.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time

import torch

from lrdecay.trainer import train

FULL = dict(n_train=32_000, n_test=5_000, epochs=2, rounds=2)
QUICK = dict(n_train=600, n_test=200, epochs=1, rounds=1)


def shared_runs(size: dict) -> list:
    """The reproduction's shared runs (``experiments.base.base_runs``: lrDecay, large and small LR, with
    the eval-mode training-set pass and snapshots the experiments read), the quick preset's 3 seeds."""
    from lrdecay.experiments.base import BASE_PRESETS, base_runs

    # the workload the sweep engine was first measured on (the reproduction's earlier quick setting: ps10, 20% noise, MLP 3×64), kept
    # fixed so that the ratio stays comparable whatever setting the regime search picks for the presets
    s = dict(BASE_PRESETS["quick"], preset="ps10", label_noise=0.2, width=64, weight_decay=5e-4,
             n_train=size["n_train"], n_test=size["n_test"], epochs=size["epochs"], device="cpu")
    return [cfg for seed in s["seeds"] for cfg in base_runs(s, seed).values()]


CANDIDATES = {
    "stack": dict(executor="stack"),
    "process": dict(executor="process", workers=2),
    "process_unstacked": dict(executor="process", workers=2, stack=False),
}


def test_sweep_vs_sequential_runs(benchmark, tmp_path):
    from lrdecay.sweep import run_sweep

    size = QUICK if benchmark.disabled else FULL
    cfgs = shared_runs(size)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # warm-up, alike for every contender: each trains a tiny copy of the workload once, so first-call
        # costs (torch's lazy op setup, imports) are paid before timing, in this process and in every
        # worker of the pool that later sweeps reuse. The first, cold sweep of the pool is timed apart.
        tiny = [c.replace(epochs=1, n_train=512, n_test=128) for c in cfgs]
        for c in tiny:
            train(c)
        times_cold: dict[str, float] = {}
        for name, kw in CANDIDATES.items():
            t = time.perf_counter()
            run_sweep(tiny, tmp_path / f"warm-{name}", progress=False, **kw)
            times_cold[name] = time.perf_counter() - t
        times: dict[str, list[float]] = {"sequential": [], **{k: [] for k in CANDIDATES}}
        tables = {}

        def sequential():
            t = time.perf_counter()
            for c in cfgs:
                train(c)
            times["sequential"].append(time.perf_counter() - t)

        def sweeps():
            for name, kw in CANDIDATES.items():
                out = tempfile.mkdtemp(dir=tmp_path, prefix=name)
                t = time.perf_counter()
                res = run_sweep(cfgs, out, progress=False, **kw)
                times[name].append(time.perf_counter() - t)
                assert res.complete
                tables[name] = [{k: v for k, v in r.items() if k not in ("time", "elapsed")} for r in res.rows]
                shutil.rmtree(out, ignore_errors=True)

        if benchmark.disabled:
            sequential()
            benchmark(sweeps)
        else:
            benchmark.pedantic(sweeps, setup=sequential, rounds=size["rounds"], iterations=1)
    finally:
        torch.set_num_threads(threads)
    # every executor produced the same table (one torch thread everywhere: the same bits)
    first = next(iter(tables.values()))
    assert all(t == first for t in tables.values())
    base = statistics.median(times["sequential"])
    ratios = {k: base / statistics.median(v) for k, v in times.items() if k != "sequential"}
    best = max(ratios, key=ratios.get)
    benchmark.extra_info.update(
        runs=len(cfgs), n_train=size["n_train"], epochs=size["epochs"], threads_per_process=1,
        sequential_s=base, **{f"{k}_s": statistics.median(v) for k, v in times.items() if k != "sequential"},
        **{f"speedup_{k}": r for k, r in ratios.items()},
        speedup_best=ratios[best], best_executor=best,
        **{f"warmup_{k}_s": v for k, v in times_cold.items()},
    )
