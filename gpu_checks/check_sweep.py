"""GPU check of the stacked sweep engine, in one device call: parity with solo runs, throughput vs
sequential CUDA-graph runs, and the stacked optimizer step against the copy bandwidth.

    python gpu_checks/check_sweep.py                 # on a CUDA machine (prints a table, writes JSON to $OUT)
    python gpu_checks/check_sweep.py --device cpu    # smoke test of the same code paths, tiny sizes, seconds

1. Parity: K members (different seeds, label noise, LRs, momentum / Nesterov / weight decay, multistep,
   cosine, constant and AutoDecay schedules) trained stacked vs each alone with the trainer (CUDA graph
   on for both where the schedule allows): per-epoch train loss / accuracy, memorized fraction and test
   accuracy, max abs difference per metric (bitwise is not expected on a GPU: cuBLAS batched and single
   GEMMs may block their sums differently; differences start at float32 rounding and grow like any two
   float orderings of SGD do).
2. Throughput, MLP 3×512 + BatchNorm, ps10 50k samples, batch 128, ledger on, 32 members: samples/s of
   one solo run with the CUDA graph (the sequential baseline: 32 such runs one after another take 32× its
   epoch time) vs the stacked engine's 32 members (CUDA graph). Target >= 10x.
3. The stacked optimizer step (StackedSGD, one Triton launch, 32 members × ~0.4 M params, per-member
   schedules) vs ``dst.copy_(src)`` bandwidth: an fp32 SGD-momentum step moves 20 bytes per parameter.

It imports ``lrdecay`` from ``python/`` (the compiled ``_native`` must be there: ``pip install -e .`` builds
it; on a device machine carry ``python/lrdecay/_native.abi3.so``). Expected well under 5 minutes on an H200.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

from lrdecay.trainer import Trainer, TrainConfig  # noqa: E402
from lrdecay.trainer.logs import flatten_record  # noqa: E402
from common import sync, time_epochs, write_json  # noqa: E402

METRICS = ("train_loss", "train_acc", "memorized", "test.test.acc", "test.test.loss")


def member_configs(k: int, base: dict, *, host: bool = True) -> list[TrainConfig]:
    """K members that differ in every per-member setting (``host``: one in six with AutoDecay, decided on
    the host, which keeps the whole stacked step out of a CUDA graph)."""
    out = []
    kinds = [
        dict(schedule="multistep", lr=0.1),
        dict(schedule="constant", lr=0.01),
        dict(schedule="cosine", lr=0.2, momentum=0.8),
        dict(schedule="constant", lr=0.1, nesterov=True),
        dict(schedule="auto", lr=0.1, gamma=0.5, auto_window=3, auto_fraction=5.0) if host else
        dict(schedule="step", lr=0.1, step_size=1, gamma=0.7),
        dict(schedule="multistep", lr=0.05, weight_decay=0.0, label_noise=0.0),
    ]
    for i in range(k):
        kw = dict(base)
        kw.update(kinds[i % len(kinds)])
        kw["seed"] = i // len(kinds)
        out.append(TrainConfig(**kw))
    return out


def stacked_trainers(cfgs):
    from lrdecay.trainer.stacked import StackedEngine

    data = {}
    trainers = []
    for c in cfgs:
        key = Trainer.data_key(c)
        ds, tests = data[key] if key in data else Trainer.build_datasets(c)
        t = Trainer(c, dataset=ds, test_sets=tests)
        data.setdefault(key, (t.data, dict(t.test_data)))
        trainers.append(t)
    return trainers, StackedEngine(trainers)


def parity(device: torch.device, k: int, n: int, width: int, epochs: int, host: bool) -> dict:
    base = dict(preset="ps10", n_train=n, n_test=max(n // 10, 100), label_noise=0.2, width=width, depth=3,
                epochs=epochs, milestones=[max(1, epochs // 2)], batch_size=128, device=str(device),
                progress=False, plots=False)
    cfgs = member_configs(k, base, host=host)
    trainers, engine = stacked_trainers(cfgs)
    engine.fit()
    worst = {m: 0.0 for m in METRICS}
    bitwise = True
    for c, t in zip(cfgs, trainers):
        solo = Trainer(c).fit()
        for a, b in zip(t.history, solo.history, strict=True):
            fa, fb = flatten_record(a), flatten_record(b)
            for m in METRICS:
                if fa.get(m) is not None and fb.get(m) is not None:
                    worst[m] = max(worst[m], abs(fa[m] - fb[m]))
            bitwise &= {k_: v for k_, v in fa.items() if k_ not in ("time", "elapsed")} == \
                {k_: v for k_, v in fb.items() if k_ not in ("time", "elapsed")}
    return {"members": k, "epochs": epochs, "n_train": n, "graph": engine.use_graph, "bitwise": bitwise,
            "max_abs_diff": worst}


def throughput(device: torch.device, k: int, n: int, width: int, rounds: int) -> dict:
    base = dict(preset="ps10", n_train=n, n_test=0, label_noise=0.2, width=width, depth=3, epochs=rounds + 2,
                milestones=[10, 20], batch_size=128, device=str(device), progress=False, plots=False)
    cfgs = member_configs(k, base, host=False)
    # the sequential baseline: one solo run's epoch (CUDA graph, ledger on); 32 runs take 32x as long
    solo = Trainer(cfgs[0])
    solo_s, _ = time_epochs(solo.run_epoch, device, rounds)
    trainers, engine = stacked_trainers(cfgs)
    stacked_s, _ = time_epochs(engine.run_epoch, device, rounds)
    return {"members": k, "n_train": n, "width": width, "solo_graph": solo.use_graph, "stacked_graph": engine.use_graph,
            "solo_epoch_s": solo_s, "stacked_epoch_s": stacked_s, "sequential_epoch_s": k * solo_s,
            "solo_samples_per_s": n / solo_s, "stacked_samples_per_s": k * n / stacked_s,
            "speedup_vs_sequential": k * solo_s / stacked_s, "target": 10.0}


def optimizer_step(device: torch.device, k: int, width: int, rounds: int) -> dict:
    from lrdecay import schedules as S
    from lrdecay.optim import StackedSGD

    shapes = [(width, 128), (width,), (width,), (width, width), (width,), (width,), (width, width), (width,),
              (width,), (10, width), (10,)]
    params = [torch.randn(k, *s, device=device, requires_grad=True) for s in shapes]
    opt = StackedSGD(params, k, lr=[0.1 * (1 + i % 3) for i in range(k)], momentum=0.9, weight_decay=5e-4,
                     schedules=[S.MultiStep([1000], 0.1), S.Cosine(500), None, S.Step(100, 0.5)] * (k // 4) +
                     [None] * (k % 4))
    for p in params:
        p.grad.normal_()
    n = opt.flat_p.numel()
    for _ in range(3):
        opt.step()
    sync(device)
    reps = max(rounds * 20, 20)
    t = time.perf_counter()
    for _ in range(reps):
        opt.step()
    sync(device)
    step_s = (time.perf_counter() - t) / reps
    src = torch.empty(64 << 20, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sync(device)
    t = time.perf_counter()
    for _ in range(10):
        dst.copy_(src)
    sync(device)
    copy_bw = 2 * src.numel() * 4 * 10 / (time.perf_counter() - t)
    step_bw = 20 * n / step_s
    return {"params": n, "backend": opt.backend, "step_us": step_s * 1e6, "copy_GBps": copy_bw / 1e9,
            "step_GBps": step_bw / 1e9, "fraction_of_copy": step_bw / copy_bw}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (smoke test, tiny sizes)")
    args = ap.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)
        device = torch.device("cpu")
        par = dict(k=6, n=1000, width=32, epochs=3)
        thr = dict(k=4, n=2000, width=32, rounds=1)
        opt = dict(k=4, width=64, rounds=1)
    else:
        if not torch.cuda.is_available():
            print("no CUDA device; use --device cpu for a smoke test", file=sys.stderr)
            return 2
        device = torch.device(args.device)
        par = dict(k=12, n=10_000, width=512, epochs=3)
        thr = dict(k=32, n=50_000, width=512, rounds=3)
        opt = dict(k=32, width=512, rounds=5)
    res = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "torch": torch.__version__}
    res["parity"] = parity(device, **par, host=False)
    print(f"parity (stacked vs solo, fixed schedules): {json.dumps(res['parity'])}", flush=True)
    res["parity_host"] = parity(device, **par, host=True)
    print(f"parity (stacked vs solo, with AutoDecay members): {json.dumps(res['parity_host'])}", flush=True)
    res["throughput"] = throughput(device, **thr)
    t = res["throughput"]
    print(f"{'what':<34}{'s/epoch':>10}{'samples/s':>14}")
    print(f"{'one solo run (graph)':<34}{t['solo_epoch_s']:>10.4f}{t['solo_samples_per_s']:>14.0f}")
    seq = f"{t['members']} solo runs one after another"
    print(f"{seq:<34}{t['sequential_epoch_s']:>10.4f}{t['solo_samples_per_s']:>14.0f}")
    print(f"{'stacked, all members':<34}{t['stacked_epoch_s']:>10.4f}{t['stacked_samples_per_s']:>14.0f}")
    print(f"speedup vs sequential: {t['speedup_vs_sequential']:.1f}x (target >= 10x)", flush=True)
    res["optimizer"] = optimizer_step(device, **opt)
    o = res["optimizer"]
    print(f"StackedSGD step ({o['backend']}): {o['params']:,} params, {o['step_us']:.1f} us, {o['step_GBps']:.0f} GB/s "
          f"= {o['fraction_of_copy']:.0%} of copy ({o['copy_GBps']:.0f} GB/s)")
    write_json("check_sweep", res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
