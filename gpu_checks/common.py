"""What the GPU check scripts share: device sync, epoch timing, the plain DataLoader epoch they compare
the trainer with, and writing their numbers for ``run_all.py``."""

from __future__ import annotations

import json
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (timings must not stop at a kernel launch)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_epochs(fn, device: torch.device, rounds: int) -> tuple[float, float]:
    """(median seconds of ``fn()`` over ``rounds`` calls after a first one, the first call's seconds): the
    first call holds worker start-up, warm-up and CUDA-graph capture."""
    times = []
    for _ in range(rounds + 1):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:]), times[0]


def dataloader_epoch(model, loader, opt, sched, correct: np.ndarray, device: torch.device) -> float:
    """One epoch of the loop a user writes without the trainer: batches from ``loader`` (x, y, index) moved
    to the device, per-sample correctness copied to the host per batch; returns the mean loss."""
    model.train()
    loss_sum, n = 0.0, 0
    for xb, yb, ib in loader:
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        out = model(xb)
        loss = F.cross_entropy(out, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        correct[ib.numpy()] = (out.argmax(1) == yb).cpu().numpy()
        loss_sum += loss.item() * len(yb)
        n += len(yb)
    sched.step()
    return loss_sum / max(n, 1)


def write_json(name: str, res: dict) -> None:
    """Write ``res`` to ``$OUT/<name>.json`` when ``$OUT`` is set (``run_all.py`` reads it)."""
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, f"{name}.json"), "w") as f:
            json.dump(res, f, indent=2)
