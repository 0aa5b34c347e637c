#!/usr/bin/env python
"""Check and time the FusedSGD Triton kernel in one device call (see gpu_checks/README.md).

    python gpu_checks/check_sgd.py                 # CUDA: parity (eager + CUDA-graph replay) + timing table
    python gpu_checks/check_sgd.py --device cpu    # smoke test of the same code paths on the CPU (torch backend;
                                                # with TRITON_INTERPRET=1 also the triton backend)

Builds nothing: imports lrdecay from the installed wheel. On CUDA it:

1. checks FusedSGD (backend "triton") against torch.optim.SGD for 100 steps over awkward shapes and every
   hyperparameter combination (max relative error, fp32, must be <= 1e-6);
2. captures ``step()`` with a MultiStep schedule in a CUDA graph and replays it across two milestones,
   comparing with eager FusedSGD and with torch.optim.SGD + MultiStepLR;
3. times torch's for-loop, foreach and fused SGD against FusedSGD (eager and graph-replayed) on
   ResNet-56-shaped (0.85 M params, 167 tensors), ResNet-18-shaped (11.7 M) and 256 M flat parameter
   sets, printing us/step and TB/s (20 bytes per parameter) against a copy bandwidth measured in this run.

Writes the numbers to $OUT/check_sgd.json when $OUT is set (``run_all.py`` reads them).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time

import torch

if os.path.dirname(os.path.abspath(__file__)) == sys.path[0]:
    sys.path.pop(0)  # never import from the workbench folder

import lrdecay  # noqa: E402
from lrdecay import schedules as S  # noqa: E402
from lrdecay.optim import FusedSGD  # noqa: E402

RTOL = 1e-6
HYPER = dict(lr=0.1, momentum=0.9, weight_decay=5e-4)


# ----------------------------------------------------------------------------- parameter sets


def resnet56_shapes() -> list[tuple[int, ...]]:
    """CIFAR ResNet-56 (He et al. 2016, option-A shortcuts): 3 stages x 9 basic blocks, 16/32/64 channels."""
    shapes: list[tuple[int, ...]] = [(16, 3, 3, 3), (16,), (16,)]
    cin = 16
    for c in (16, 32, 64):
        for _ in range(9):
            shapes += [(c, cin, 3, 3), (c,), (c,), (c, c, 3, 3), (c,), (c,)]
            cin = c
    shapes += [(10, 64), (10,)]
    return shapes


def resnet18_shapes() -> list[tuple[int, ...]]:
    """ImageNet ResNet-18: 7x7 stem, 4 stages x 2 basic blocks (64..512), 1x1 downsamples, 1000-way fc."""
    shapes: list[tuple[int, ...]] = [(64, 3, 7, 7), (64,), (64,)]
    cin = 64
    for i, c in enumerate((64, 128, 256, 512)):
        for b in range(2):
            shapes += [(c, cin, 3, 3), (c,), (c,), (c, c, 3, 3), (c,), (c,)]
            if b == 0 and i > 0:
                shapes += [(c, cin, 1, 1), (c,), (c,)]
            cin = c
    shapes += [(1000, 512), (1000,)]
    return shapes


def numel(shapes) -> int:
    n = 0
    for s in shapes:
        k = 1
        for d in s:
            k *= d
        n += k
    return n


def make(shapes, device, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    return [torch.randn(s, generator=g).to(device).requires_grad_() for s in shapes]


def rel_err(a, b) -> float:
    den = b.abs().max().item()
    num = (a.double() - b.double()).abs().max().item()
    return num / den if den > 0 else num


# ----------------------------------------------------------------------------- parity


def check_parity(device, backend) -> float:
    shapes = [(1,), (7,), (5, 3), (1500,), (45, 71), (1025,)]
    combos = [
        dict(momentum=m, dampening=d, nesterov=n, weight_decay=wd, maximize=mx)
        for m, d, n, wd, mx in itertools.product((0.0, 0.9), (0.0, 0.5), (False, True), (0.0, 1e-2), (False, True))
        if not (n and (m == 0 or d != 0))
    ]
    worst = 0.0
    for i, c in enumerate(combos):
        a = make(shapes, device, seed=i)
        b = [p.detach().clone().requires_grad_() for p in a]
        oa = FusedSGD(a, lr=0.05, backend=backend, **c)
        ob = torch.optim.SGD(b, lr=0.05, **c)
        g = torch.Generator(device="cpu").manual_seed(100 + i)
        for t in range(100):
            for p, q in zip(a, b):
                if t % 7 == 3 and p.numel() == 7:
                    p.grad = q.grad = None
                    continue
                gr = torch.randn(p.shape, generator=g).to(device)
                q.grad = gr.clone()
                if p.grad is not None:
                    p.grad.copy_(gr)
                else:
                    p.grad = gr.clone()
            oa.step()
            ob.step()
        for p, q in zip(a, b):
            worst = max(worst, rel_err(p.detach(), q.detach()))
            if q in ob.state and ob.state[q].get("momentum_buffer") is not None:
                worst = max(worst, rel_err(oa.state[p]["momentum_buffer"], ob.state[q]["momentum_buffer"]))
    status = "OK" if worst <= RTOL else "FAIL"
    print(f"parity ({backend}, {len(combos)} combos x 100 steps): max rel err {worst:.2e} [{status}]")
    return worst


def check_graph(device) -> float:
    """step() captured once, replayed 18 times across MultiStep milestones 5 and 12."""
    shapes = [(1,), (7,), (1500,), (45, 71)]
    steps = 20
    g = torch.Generator(device="cpu").manual_seed(5)
    grads = [[torch.randn(s, generator=g).to(device) for s in shapes] for _ in range(steps)]
    sched = S.MultiStep([5, 12], 0.1)
    kw = dict(lr=0.1, momentum=0.9, weight_decay=1e-3, nesterov=True)

    eager = make(shapes, device, seed=1)
    graphed = [p.detach().clone().requires_grad_() for p in eager]
    ref = [p.detach().clone().requires_grad_() for p in eager]
    oe = FusedSGD(eager, schedule=sched, backend="triton", **kw)
    og = FusedSGD(graphed, schedule=sched, backend="triton", **kw)
    orf = torch.optim.SGD(ref, **kw)
    sch = torch.optim.lr_scheduler.MultiStepLR(orf, [5, 12], 0.1)
    for t in range(steps):
        for ps in (eager, ref):
            for p, gr in zip(ps, grads[t]):
                p.grad = gr.clone()
        oe.step()
        orf.step()
        sch.step()

    # Two eager steps (the first-step variant and the steady one compile), then capture the steady step.
    for t in range(2):
        for p, gr in zip(graphed, grads[t]):
            p.grad.copy_(gr)
        og.step()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        og.step()
    for t in range(2, steps):
        for p, gr in zip(graphed, grads[t]):
            p.grad.copy_(gr)
        graph.replay()
    torch.cuda.synchronize()
    n = og.sync_step_count()
    err_eager = max(rel_err(a.detach(), b.detach()) for a, b in zip(graphed, eager))
    err_torch = max(rel_err(a.detach(), b.detach()) for a, b in zip(graphed, ref))
    lr_ok = og.param_groups[0]["lr"] == orf.param_groups[0]["lr"]
    ok = err_eager <= RTOL and err_torch <= RTOL and n == steps and lr_ok
    print(
        f"graph replay (MultiStep [5, 12], {steps} steps, 18 replayed): vs eager {err_eager:.2e}, "
        f"vs torch SGD+MultiStepLR {err_torch:.2e}, step_count {n}, lr {og.param_groups[0]['lr']:.3g} "
        f"[{'OK' if ok else 'FAIL'}]"
    )
    return max(err_eager, err_torch) if ok else float("inf")


# ----------------------------------------------------------------------------- timing


class Timer:
    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __call__(self, fn, iters: int, warmup: int = 3) -> float:
        """Mean seconds per call of fn (device-synchronized)."""
        for _ in range(warmup):
            fn()
        if self.cuda:
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / 1e3 / iters
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        return (time.perf_counter() - t0) / iters


def copy_bandwidth(device, timer) -> float:
    n = (256 << 20) if device.type == "cuda" else (8 << 20)
    src = torch.empty(n, dtype=torch.float32, device=device).normal_()
    dst = torch.empty_like(src)
    sec = timer(lambda: dst.copy_(src), iters=50 if device.type == "cuda" else 5)
    return 2 * 4 * n / sec


def time_set(name, shapes, device, timer, iters, copy_bw, fused_backend) -> dict:
    """Times every variant on one parameter set; prints its table and returns ``{variant: us/step}``."""
    n = numel(shapes)
    nbytes = 20 * n
    rows = []

    def torch_opt(**flags):
        ps = make(shapes, device)
        for p in ps:
            p.grad = torch.randn_like(p)
        return torch.optim.SGD(ps, **HYPER, **flags)

    variants = [("torch for-loop", dict(foreach=False)), ("torch foreach", dict(foreach=True))]
    if device.type == "cuda":
        variants.append(("torch fused", dict(fused=True)))
    for label, flags in variants:
        o = torch_opt(**flags)
        rows.append((label, timer(o.step, iters)))
        del o
    ps = make(shapes, device)
    for p in ps:
        p.grad = torch.randn_like(p)
    o = FusedSGD(ps, **HYPER, schedule=S.MultiStep([10**9], 0.1), backend=fused_backend)
    rows.append((f"FusedSGD {fused_backend} eager", timer(o.step, iters)))
    if device.type == "cuda":
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            o.step()
        rows.append((f"FusedSGD {fused_backend} graph", timer(graph.replay, iters)))
    del o, ps
    print(f"\n{name}: {n / 1e6:.2f} M params in {len(shapes)} tensors ({nbytes / 1e6:.1f} MB moved per step)")
    print(f"  {'variant':<28}{'us/step':>12}{'TB/s':>10}{'% of copy':>11}")
    for label, sec in rows:
        bw = nbytes / sec
        print(f"  {label:<28}{sec * 1e6:>12.1f}{bw / 1e12:>10.3f}{100 * bw / copy_bw:>10.1f}%")
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {label: sec * 1e6 for label, sec in rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    print(f"lrdecay {lrdecay.__version__} from {os.path.dirname(lrdecay.__file__)}; torch {torch.__version__}")
    interp = os.environ.get("TRITON_INTERPRET") == "1"
    if device.type == "cuda":
        import triton

        print(f"triton {triton.__version__}; device {torch.cuda.get_device_name(device)}")
        fused_backend = "triton"
    else:
        print("no CUDA: CPU smoke test (no graph capture; timings are CPU numbers, not the GPU targets)")
        fused_backend = "triton" if interp else "torch"
    res = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
           "torch": torch.__version__, "backend": fused_backend}
    t0 = time.perf_counter()
    worst = check_parity(device, fused_backend)
    if fused_backend == "triton" and device.type == "cpu":
        worst = max(worst, check_parity(device, "torch"))
    if device.type == "cuda":
        worst = max(worst, check_graph(device))
    else:
        print("graph replay: skipped (needs CUDA)")
    timer = Timer(device)
    copy_bw = copy_bandwidth(device, timer)
    print(f"\ncopy bandwidth (torch copy_ of {'1 GiB' if device.type == 'cuda' else '32 MiB'}): {copy_bw / 1e12:.3f} TB/s")
    res["copy_TBps"] = copy_bw / 1e12
    res["us_per_step"] = sets = {}
    if interp and device.type == "cpu":
        print("timing skipped under the interpreter")
    else:
        cuda = device.type == "cuda"
        sets["resnet56"] = time_set("ResNet-56-shaped", resnet56_shapes(), device, timer, 200 if cuda else 5, copy_bw,
                                    fused_backend)
        sets["resnet18"] = time_set("ResNet-18-shaped", resnet18_shapes(), device, timer, 100 if cuda else 2, copy_bw,
                                    fused_backend)
        if cuda:
            sets["flat256M"] = time_set("256 M flat", [(256 << 20,)], device, timer, 20, copy_bw, fused_backend)
        else:
            print("\n256 M flat: skipped on CPU")
    print(f"\ntotal {time.perf_counter() - t0:.1f} s; parity {'OK' if worst <= RTOL else 'FAIL'}")
    res["parity_max_rel_err"] = worst
    res["ok"] = bool(worst <= RTOL)
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, "check_sgd.json"), "w") as f:
            json.dump(res, f, indent=2)
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
