"""An epoch's statistics from its per-sample predictions and losses, and the ledger that keeps them.

Once per epoch the step engine's device buffers (a prediction and a loss per training sample, -1 for a
sample not presented) come to the host in one copy; :func:`epoch_statistics` turns them into the
epoch's record entries and feeds the :class:`lrdecay.Ledger`. :func:`label_statistics` is the shared
accounting of predictions against the training labels (also used by the eval-mode pass over the
training set).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["build_ledger", "epoch_statistics", "label_statistics"]


def build_ledger(data):
    """A :class:`lrdecay.Ledger` for the training set ``data`` (groups, flipped samples, clean labels)."""
    from lrdecay.ledger import Ledger

    group = data.host("group")
    flipped = data.host("flipped")
    ledger = Ledger(
        data.n,
        groups=None if group is None else group.astype(np.int32),
        group_names=list(data.group_names) if group is not None else None,
        flipped=flipped,
    )
    if data.y_clean is not None:
        ledger.set_clean_labels(data.host("y_clean"))
    return ledger


def epoch_statistics(data, pred_buf: torch.Tensor, loss_buf: torch.Tensor, ledger=None) -> dict:
    """Copy the epoch's device buffers to the host once; statistics (``presented``, ``train_loss`` and
    :func:`label_statistics` with prefix ``train_``) and the ledger's epoch."""
    pred = pred_buf.cpu().numpy()
    loss = loss_buf.cpu().numpy()
    presented = pred >= 0
    correct = pred == data.host("y")
    stats: dict[str, Any] = {"presented": int(presented.sum())}
    stats["train_loss"] = float(loss[presented].astype(np.float64).mean())
    stats.update(label_statistics(data, pred, presented, prefix="train_"))
    if ledger is not None:
        if bool(presented.all()):
            ledger.record_epoch(correct, pred=pred)
        else:
            idx = np.flatnonzero(presented).astype(np.int64)
            ledger.record_batch(idx, correct[idx], pred=pred[idx])
            ledger.end_epoch()
    return stats


def label_statistics(data, pred: np.ndarray, presented: np.ndarray, *, prefix: str) -> dict:
    """Accuracy of host predictions ``pred`` against the training labels of ``data``, over the
    ``presented`` samples: overall (``{prefix}acc``), per group (``{prefix}acc_group``), on clean samples
    (``{prefix}acc_clean``), and on label-flipped samples against their noisy label (``memorized``) and
    their clean label (``predicted_clean``)."""
    d = data
    correct = pred == d.host("y")
    p = presented
    stats: dict[str, Any] = {f"{prefix}acc": float(correct[p].mean())}
    group = d.host("group")
    if group is not None:
        tot = np.bincount(group[p], minlength=d.n_groups)
        hit = np.bincount(group[p & correct], minlength=d.n_groups)
        stats[f"{prefix}acc_group"] = {
            name: (float(hit[i] / tot[i]) if tot[i] else None) for i, name in enumerate(d.group_names)
        }
    flipped = d.host("flipped")
    if flipped is not None:
        f = p & flipped
        c = p & ~flipped
        stats[f"{prefix}acc_clean"] = float(correct[c].mean()) if c.any() else None
        # memorized = flipped samples predicted as their (noisy) observed label
        stats["memorized"] = float(correct[f].mean()) if f.any() else None
        y_clean = d.host("y_clean")
        if y_clean is not None:
            stats["predicted_clean"] = float((pred[f] == y_clean[f]).mean()) if f.any() else None
    return stats
