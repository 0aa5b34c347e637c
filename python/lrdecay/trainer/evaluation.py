"""Eval-mode passes of a model: test sets (overall and per group), the training set (the memorized
fraction of one fixed model), and penultimate features.

Every pass runs the model in eval mode (BatchNorm running statistics; no parameter or statistic changes)
in chunks of ``batch_size`` samples, through the run's input preparation (``prepare``: image
normalization) and autocast, and restores the model's mode afterwards.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lrdecay.trainer.stats import label_statistics

__all__ = ["evaluate_sets", "evaluate_train", "extract_features", "last_linear_input"]

Prepare = Callable[[torch.Tensor], torch.Tensor]


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate_sets(model: nn.Module, sets: Mapping[str, Any], *, prepare: Prepare, autocast: Callable,
                  batch_size: int) -> dict[str, dict]:
    """Accuracy and loss of ``model`` on each device dataset of ``sets``, overall and per group:
    ``{name: {"acc", "loss", "acc_group": {group: acc}}}`` (only the groups a set has samples of)."""
    out: dict[str, dict] = {}
    with _eval_mode(model):
        for name, d in sets.items():
            device = d.y.device
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            correct = torch.empty(d.n, dtype=torch.bool, device=device)
            for s in range(0, d.n, batch_size):
                yb = d.y[s : s + batch_size]
                with autocast():
                    logits = model(prepare(d.x[s : s + batch_size]))
                    loss = F.cross_entropy(logits, yb, reduction="sum")
                loss_sum += loss.double()
                correct[s : s + batch_size] = logits.argmax(1) == yb
            hits = correct.sum()
            res: dict[str, Any] = {"acc": None, "loss": None}
            if d.group is not None:
                # integer counts: deterministic on every device
                tot = torch.bincount(d.group, minlength=d.n_groups)
                hit = torch.bincount(d.group[correct], minlength=d.n_groups)
                tot_h, hit_h = tot.cpu().numpy(), hit.cpu().numpy()
                res["acc_group"] = {g: float(hit_h[i] / tot_h[i]) for i, g in enumerate(d.group_names) if tot_h[i]}
            res["acc"] = float(hits.item()) / d.n
            res["loss"] = float(loss_sum.item()) / d.n
            out[name] = res
    return out


@torch.no_grad()
def evaluate_train(model: nn.Module, data, *, prepare: Prepare, autocast: Callable, batch_size: int) -> dict:
    """``model`` (eval mode) on the whole training set ``data`` against its observed labels:
    ``{"loss", "acc", "acc_group", "acc_clean", "memorized", "predicted_clean"}`` (as the data allows)."""
    d = data
    device = d.y.device
    with _eval_mode(model):
        pred = torch.empty(d.n, dtype=torch.int64, device=device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        for s in range(0, d.n, batch_size):
            with autocast():
                logits = model(prepare(d.x[s : s + batch_size]))
                loss = F.cross_entropy(logits, d.y[s : s + batch_size], reduction="sum")
            loss_sum += loss.double()
            pred[s : s + batch_size] = logits.argmax(1)
    out: dict[str, Any] = {"loss": float(loss_sum.item()) / d.n}
    out.update(label_statistics(d, pred.cpu().numpy(), np.ones(d.n, dtype=bool), prefix=""))
    return out


@torch.no_grad()
def extract_features(model: nn.Module, x: torch.Tensor, *, prepare: Prepare, autocast: Callable,
                     batch_size: int) -> torch.Tensor:
    """Penultimate activations (float32) of ``model`` (eval mode) for the device tensor ``x``: its
    ``features`` method, or the input of its last ``nn.Linear`` for a model without one."""
    with _eval_mode(model):
        chunks = []
        feat = getattr(model, "features", None)
        for s in range(0, x.shape[0], batch_size):
            xb = prepare(x[s : s + batch_size])
            with autocast():
                chunks.append((feat(xb) if callable(feat) else last_linear_input(model, xb)).float())
        return torch.cat(chunks)


def last_linear_input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input of ``model``'s last ``nn.Linear`` on ``x`` (captured with a forward hook)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("model has no features() method and no nn.Linear layer to take features from")
    box: list[torch.Tensor] = []
    handle = linears[-1].register_forward_hook(lambda m, inp, out: box.append(inp[0]))
    try:
        model(x)
    finally:
        handle.remove()
    return box[0]
