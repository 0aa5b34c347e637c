"""Optimizer-step benchmarks: FusedSGD against torch.optim.SGD, same parameter set, same run.

- CPU: FusedSGD (backend "torch") vs torch's foreach SGD on a ResNet-56-shaped set (0.85 M params,
  167 tensors); ``extra_info["speedup_vs_torch_foreach"]``.
- CUDA (skipped without a GPU): FusedSGD (backend "triton", eager and CUDA-graph-replayed) vs torch's
  fused SGD on ResNet-56- and ResNet-18-shaped sets; every timed call synchronizes before returning.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gpu_checks"))
from check_sgd import make, resnet18_shapes, resnet56_shapes  # noqa: E402

from lrdecay import schedules as S  # noqa: E402
from lrdecay.optim import FusedSGD  # noqa: E402

HYPER = dict(lr=0.1, momentum=0.9, weight_decay=5e-4)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _with_grads(shapes, device):
    ps = make(shapes, device)
    for p in ps:
        p.grad = torch.randn_like(p)
    return ps


def _mean_time(fn, reps: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def test_cpu_fusedsgd_vs_torch_foreach_resnet56(benchmark):
    shapes = resnet56_shapes()
    ours = FusedSGD(_with_grads(shapes, "cpu"), backend="torch", **HYPER)
    ref = torch.optim.SGD(_with_grads(shapes, "cpu"), foreach=True, **HYPER)
    disabled = getattr(benchmark, "disabled", False)
    reps = 1 if disabled else 20
    t_ref = _mean_time(ref.step, reps)
    t_ours = _mean_time(ours.step, reps)
    benchmark.extra_info["torch_foreach_us"] = t_ref * 1e6
    benchmark.extra_info["fusedsgd_torch_backend_us"] = t_ours * 1e6
    benchmark.extra_info["speedup_vs_torch_foreach"] = t_ref / t_ours
    benchmark(ours.step)


def _sync(fn):
    def run():
        fn()
        torch.cuda.synchronize()

    return run


@cuda
@pytest.mark.gpu
@pytest.mark.parametrize("name, shapes", [("resnet56", resnet56_shapes()), ("resnet18", resnet18_shapes())])
@pytest.mark.parametrize("mode", ["eager", "graph"])
def test_cuda_fusedsgd_vs_torch_fused(benchmark, name, shapes, mode):
    ps = _with_grads(shapes, "cuda")
    ours = FusedSGD(ps, schedule=S.MultiStep([10**9], 0.1), backend="triton", **HYPER)
    ref = torch.optim.SGD(_with_grads(shapes, "cuda"), fused=True, **HYPER)
    step = ours.step
    if mode == "graph":
        ours.step()
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            ours.step()
        step = graph.replay
    reps = 1 if getattr(benchmark, "disabled", False) else 50
    t_ref = _mean_time(_sync(ref.step), reps)
    t_ours = _mean_time(_sync(step), reps)
    benchmark.extra_info["torch_fused_us"] = t_ref * 1e6
    benchmark.extra_info["fusedsgd_us"] = t_ours * 1e6
    benchmark.extra_info["speedup_vs_torch_fused"] = t_ref / t_ours
    benchmark(_sync(step))
