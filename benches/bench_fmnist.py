"""One Fashion-MNIST epoch on the CPU: the lrdecay trainer vs a plain torchvision-style ``DataLoader`` loop.

Same model (the quick preset's BatchNorm MLP, 2×256, built with the same seed), same data (the 60,000
Fashion-MNIST training images with 20% symmetric label noise), batch 128, SGD momentum 0.9, weight decay
5e-4. The plain loop is what the torchvision MNIST examples do: a ``Dataset`` whose ``__getitem__`` turns one
uint8 image into a normalized float tensor (``ToTensor`` + ``Normalize``), ``DataLoader(shuffle=True)``
collating them, ``torch.optim.SGD``, and the per-sample bookkeeping (which images are right, for the
flipped-label statistics) done per batch on the host. The trainer keeps the uint8 images resident on the
device, gathers and normalizes a batch in one op, and keeps per-sample predictions on the device for the
ledger.

Epochs alternate (plain, trainer, ...) so machine load hits both alike; the ratio of medians (plain /
trainer, > 1: the trainer is faster) is ``extra_info["speedup_vs_dataloader"]``.

Data: Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``) or ``$LRDECAY_DATA`` when
installed; otherwise a generated IDX folder of the same shape (random pixels: the timing does not depend on
what the images show), so CI runs it anyway; ``extra_info["data"]`` says which. Under
``--benchmark-disable`` a 2,000-image subset runs one epoch each.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from lrdecay.data.idx import mnist_family, write_mnist_family
from lrdecay.images import DatasetNotFoundError
from lrdecay.models import make_model
from lrdecay.trainer import Trainer, TrainConfig
from paired import alternate

WIDTH, DEPTH, BATCH = 256, 2, 128


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, request):
    """(folder or None for the search, what it is): the installed Fashion-MNIST, else generated IDX files
    (60,000 + 10,000 images when timed; 2,000 + 500 under --benchmark-disable, which uses 2,000)."""
    try:
        mnist_family("fashion-mnist", None, "test")
        return None, "fashion-mnist (installed)"
    except DatasetNotFoundError:
        rng = np.random.default_rng(0)
        folder = tmp_path_factory.mktemp("idx")
        make = lambda n: (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),  # noqa: E731
                          rng.integers(0, 10, n, dtype=np.uint8))
        n_train, n_test = (2_000, 500) if request.config.getoption("benchmark_disable", False) else (60_000, 10_000)
        write_mnist_family(folder, make(n_train), make(n_test))
        return str(folder), f"generated IDX files ({n_train:,} random 28×28 images)"


class TorchvisionStyle(Dataset):
    """Per-image ``ToTensor`` + ``Normalize``, as torchvision's MNIST datasets do."""

    def __init__(self, x: np.ndarray, y: np.ndarray, mean: float, std: float) -> None:
        self.x, self.y, self.mean, self.std = x, y, mean, std

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        img = torch.from_numpy(self.x[i]).float().div_(255)
        return (img - self.mean) / self.std, int(self.y[i]), i


def test_epoch_trainer_vs_dataloader(benchmark, data_dir):
    torch.set_num_threads(1)
    folder, what = data_dir
    subset = 2_000 if benchmark.disabled else None
    rounds = 1 if benchmark.disabled else 3
    cfg = TrainConfig(data="fashion-mnist", data_dir=folder, model="mlp", width=WIDTH, depth=DEPTH,
                      batch_size=BATCH, lr=0.1, momentum=0.9, weight_decay=5e-4, label_noise=0.2,
                      train_subset=subset, epochs=rounds + 1, milestones=[100], n_test=0, device="cpu",
                      progress=False, plots=False)
    trainer = Trainer(cfg)
    x = trainer.data.x.numpy()
    y = trainer.data.host("y")
    n = len(y)
    mean, std = float(trainer.data.mean[0]), float(trainer.data.std[0])
    torch.manual_seed(0)
    model = make_model("mlp", in_features=784, n_classes=10, width=WIDTH, depth=DEPTH)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    loader = DataLoader(TorchvisionStyle(x, y, mean, std), batch_size=BATCH, shuffle=True)
    correct = np.zeros(n, bool)

    def plain_epoch():
        model.train()
        for xb, yb, ib in loader:
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            correct[ib.numpy()] = (out.argmax(1) == yb).numpy()

    plain_s, ours_s = alternate(benchmark, plain_epoch, trainer.run_epoch, rounds)
    assert trainer.history[-1]["presented"] == n
    benchmark.extra_info.update(
        data=what, n=n, model=f"mlp {DEPTH}x{WIDTH} batchnorm", batch=BATCH, threads=torch.get_num_threads(),
        dataloader_s_per_epoch=plain_s, trainer_s_per_epoch=ours_s, speedup_vs_dataloader=plain_s / ours_s,
    )
