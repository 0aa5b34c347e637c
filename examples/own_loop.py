"""lrdecay as a backend in a training loop you already have.

Your model, your ``Dataset`` and ``DataLoader``, your loop. lrdecay adds three things:

- ``FusedSGD`` with the learning-rate schedule evaluated on the device (here: two decays at fixed epochs,
  ``MultiStep``), a drop-in for ``torch.optim.SGD`` + ``MultiStepLR``;
- ``AutoDecay``, which decides *when* to decay from the training loss (a second run: FusedSGD with
  ``schedule=None`` so the host sets the LR);
- the ``Ledger``: per-sample correctness every epoch, fed by the indices your loader yields; at the end it
  says which images were forgotten and which flipped labels the network memorized.

Data: Fashion-MNIST (or MNIST/KMNIST) IDX files with ``--data fashion-mnist`` (found as ``lrdecay`` finds
them: ``--data-dir``, ``$LRDECAY_DATA``, ``/usr/share/datasets/fashion-mnist``), or scikit-learn's digits
(``--data digits``, what CI runs: a few seconds). 20% of the training labels are flipped (symmetric noise)
so there is something to memorize.

    python examples/own_loop.py --data digits
    python examples/own_loop.py --data fashion-mnist --epochs 15 --subset 20000
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lrdecay import Ledger
from lrdecay import schedules as S
from lrdecay.data import digits, mnist_family
from lrdecay.optim import FusedSGD
from lrdecay.schedules import AutoDecay


# ----------------------------------------------------------------------------- the researcher's own code
class Images(Dataset):
    """uint8 images (n, 1, H, W) → normalized float tensors, with the sample's index (for the ledger)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, mean: float, std: float) -> None:
        self.x, self.y, self.mean, self.std = x, y, mean, std

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        img = (torch.from_numpy(self.x[i]).float() / 255 - self.mean) / self.std
        return img, int(self.y[i]), i


def make_model(side: int, n_classes: int) -> nn.Module:
    """A plain MLP with BatchNorm (anything that maps images to logits works)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(side * side, 256), nn.BatchNorm1d(256), nn.ReLU(),
                         nn.Linear(256, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Linear(256, n_classes))


def evaluate(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    hits = seen = 0
    with torch.no_grad():
        for x, y, _ in loader:
            hits += int((model(x).argmax(1) == y).sum())
            seen += len(y)
    return hits / seen


def run(train_set, test_loader, side, n_classes, epochs, milestones, *, auto: bool, flipped, y_clean, seed):
    """One training run in the usual loop; returns (test accuracy, ledger, epochs where the LR decayed)."""
    torch.manual_seed(seed)
    loader = DataLoader(train_set, batch_size=128, shuffle=True, generator=torch.Generator().manual_seed(seed))
    model = make_model(side, n_classes)
    if auto:   # the host decides: FusedSGD reads group["lr"], AutoDecay sets it after each epoch
        opt = FusedSGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, backend="torch")
        decider = AutoDecay(opt, gamma=0.1, window=3, max_decays=len(milestones))
    else:      # the device decides: the schedule counts optimizer steps, no host sync per step
        opt = FusedSGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, backend="torch",
                       schedule=S.MultiStep.from_epochs(milestones, 0.1, steps_per_epoch=len(loader)))
        decider = None
    ledger = Ledger(len(train_set), flipped=flipped)
    ledger.set_clean_labels(y_clean)
    decays, lr = [], opt.param_groups[0]["lr"]
    for epoch in range(epochs):
        model.train()
        loss_sum = 0.0
        for x, y, idx in loader:
            out = model(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            pred = out.argmax(1)
            ledger.record_batch(idx.numpy(), (pred == y).numpy(), pred=pred.numpy())
            loss_sum += float(loss.detach()) * len(y)
        ledger.end_epoch()
        if decider is not None:
            decider.step(loss_sum / len(train_set))
        if opt.param_groups[0]["lr"] < lr:
            decays.append(epoch + 1)   # the LR of the next epoch is smaller
        lr = opt.param_groups[0]["lr"]
    return evaluate(model, test_loader), ledger, decays


# ----------------------------------------------------------------------------- what the ledger found
def report(name: str, acc: float, ledger: Ledger, decays, flipped: np.ndarray, milestones) -> None:
    s = ledger.summary()
    mem = s["memorized"]
    first = int(milestones[0])
    print(f"{name}: test accuracy {acc:.3f}; LR decayed after epoch(s) {decays or 'none'}")
    print("  memorized flipped labels (train-mode predictions = the noisy label), by epoch: "
          + " ".join(f"{m:.2f}" for m in mem))
    print(f"    before the first decay (epoch {first}): {mem[first - 1]:.3f}; at the end: {mem[-1]:.3f}")
    forgot = ledger.forgetting_events
    clean = ~flipped
    print(f"  forgetting events (right → wrong between presentations): {int(forgot.sum()):,}; "
          f"clean images forgotten at least once: {(forgot[clean] > 0).mean():.1%}, flipped ones: "
          f"{(forgot[flipped] > 0).mean():.1%}")
    never = ledger.never_learned
    print(f"  never fitted: {never[clean].mean():.1%} of clean images, {never[flipped].mean():.1%} of flipped ones "
          f"(a flipped image 'fitted' means it was predicted as its wrong label)")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="digits", choices=["digits", "mnist", "fashion-mnist", "kmnist"])
    p.add_argument("--data-dir", default=None, help="folder holding the IDX files (default: lrdecay's search)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--subset", type=int, default=None, help="use this many training images (class-balanced)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    if args.data == "digits":
        train, test = digits("train"), digits("test")
    else:
        train, test = mnist_family(args.data, args.data_dir, "train"), mnist_family(args.data, args.data_dir, "test")
    if args.subset:
        train = train.balanced_subset(args.subset, seed=args.seed)
    train = train.with_label_noise(0.2, seed=args.seed)      # y noisy, y_clean, flipped
    mean, std = train.mean[0], train.std[0]
    side = train.x.shape[-1]
    train_set = Images(train.x, train.y, mean, std)
    test_loader = DataLoader(Images(test.x, test.y, mean, std), batch_size=512)
    milestones = [args.epochs // 2, 3 * args.epochs // 4]
    print(f"{train.name}: {len(train):,} training images ({int(train.flipped.sum()):,} labels flipped), "
          f"{len(test):,} test; {args.epochs} epochs")
    for auto in (False, True):
        name = "AutoDecay (host decides)" if auto else f"FusedSGD + MultiStep{milestones} (on the device)"
        acc, ledger, decays = run(train_set, test_loader, side, train.n_classes, args.epochs, milestones, auto=auto,
                                  flipped=train.flipped, y_clean=train.y_clean, seed=args.seed)
        report(name, acc, ledger, decays, train.flipped, decays or milestones)


if __name__ == "__main__":
    main()
