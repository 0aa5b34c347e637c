"""One training epoch: the lrdecay trainer vs the plain PyTorch loop a user would write.

Same model (MLP 3×512 with BatchNorm), same data (ps10 pattern dataset, 50k samples), batch 128, same
run. The plain loop: TensorDataset + DataLoader(shuffle=True) + torch.optim.SGD + MultiStepLR, with the
per-sample bookkeeping done per batch on the host (``.cpu()``, ``.item()``). The trainer: data resident
on the device, index-gather batches, per-sample predictions/losses kept on the device and ingested into
the ledger once per epoch.

Epochs of the two alternate (plain, trainer, plain, ...) so machine load hits both alike; the ratio of
medians is ``extra_info["speedup_vs_plain_loop"]``. Under ``--benchmark-disable`` a tiny size runs once.
"""

from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from lrdecay.models import MLP
from lrdecay.trainer import Trainer, TrainConfig
from paired import alternate

FULL = dict(n=50_000, width=512, rounds=5)
QUICK = dict(n=512, width=32, rounds=1)


def _dataset(n: int):
    from lrdecay.data import pattern_dataset

    return pattern_dataset(n, preset="ps10", seed=0, label_noise=0.2)


class PlainLoop:
    """What a user would write without the trainer (the baseline)."""

    def __init__(self, ds, width: int, seed: int = 0) -> None:
        torch.manual_seed(seed)
        n = len(ds.y)
        self.model = MLP(ds.x.shape[1], ds.n_classes, width=width, depth=3)
        self.loader = DataLoader(
            TensorDataset(torch.from_numpy(ds.x), torch.from_numpy(ds.y), torch.arange(n)),
            batch_size=128,
            shuffle=True,
        )
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        self.sched = torch.optim.lr_scheduler.MultiStepLR(self.opt, [10, 20], 0.1)
        self.correct = np.zeros(n, bool)
        self.pred = np.zeros(n, np.int64)
        self.history = []

    def epoch(self) -> None:
        self.model.train()
        loss_sum, hits, seen = 0.0, 0, 0
        for xb, yb, ib in self.loader:
            out = self.model(xb)
            loss = F.cross_entropy(out, yb)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            pred = out.argmax(1)
            idx = ib.cpu().numpy()
            self.pred[idx] = pred.cpu().numpy()
            self.correct[idx] = (pred == yb).cpu().numpy()
            loss_sum += loss.item() * len(yb)
            hits += int((pred == yb).sum().item())
            seen += len(yb)
        self.sched.step()
        self.history.append((loss_sum / seen, hits / seen))


def test_epoch_trainer_vs_plain_loop(benchmark):
    size = QUICK if benchmark.disabled else FULL
    ds = _dataset(size["n"])
    ledger = True
    cfg = TrainConfig(
        epochs=size["rounds"] + 2,
        batch_size=128,
        width=size["width"],
        depth=3,
        device="cpu",
        ledger=ledger,
        progress=False,
        plots=False,
    )
    trainer = Trainer(cfg, dataset=ds, test_sets={})
    plain = PlainLoop(ds, size["width"])
    plain_s, ours_s = alternate(benchmark, plain.epoch, trainer.run_epoch, size["rounds"])
    assert trainer.history[-1]["presented"] == size["n"]
    benchmark.extra_info.update(
        n=size["n"],
        width=size["width"],
        optimizer=cfg.optimizer,
        ledger=ledger,
        threads=torch.get_num_threads(),
        plain_loop_s_per_epoch=plain_s,
        trainer_s_per_epoch=ours_s,
        plain_samples_per_s=size["n"] / plain_s,
        trainer_samples_per_s=size["n"] / ours_s,
        speedup_vs_plain_loop=plain_s / ours_s,
    )
