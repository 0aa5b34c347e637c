"""A plain numpy + PyTorch re-implementation of the prototype of PROTOTYPE.md ("What did"), with one switch
per candidate cause of the memorization gap between the package and the prototype
(docs/memorization-vs-prototype.md).

Default = the prototype as described, with the data built the way the package builds it (blank block =
noise of the pattern's own spread, exact symmetric flips to another class). Each flag changes one thing:

  --data package        train on the package's own arrays (lrdecay.data.pattern_dataset), not numpy's
  --blank zero|unit     a blank block is zeros / N(0, 1) noise instead of N(0, spread^2) noise
  --flips uniform       label noise = each sample's label redrawn uniformly with prob. rate (keeps ~1/K)
  --wd-no-bn            no weight decay on BatchNorm weights/biases and the head's bias
  --bias                nn.Linear bias before BatchNorm (torch's default layer)
  --opt fused           lrdecay.optim.FusedSGD instead of torch.optim.SGD
  --groups random       group of each sample drawn at random (binomial sizes) instead of exact 50/50
  --bn-pos post         Linear -> ReLU -> BatchNorm instead of Linear -> BatchNorm -> ReLU
  --order fixed|once    no reshuffling: the generated order every epoch / one shuffle reused every epoch
  --reset-momentum      a fresh optimizer (no momentum buffers) at each LR decay
  --l2-in-loss          weight decay as a loss term wd * sum(p^2) (gradient 2 wd p: twice --wd)
  --bn-frozen-after E   train in eval mode after epoch E (BatchNorm running statistics, frozen): what a
                        loop that calls model.eval() to measure at a stage end and never model.train() does
  --batch-size, --n-train, --label-noise, --wd, --width, --depth, --epochs, --milestones

Memorization (fraction of label-flipped samples predicted as their noisy label) is measured three ways:
  inep  predictions made during the epoch in training mode while the weights move (the package's
        `memorized`, from the ledger)
  eval  one eval-mode pass over the training set at the epoch end (BatchNorm running statistics; the
        package's `train_eval.memorized`)
  trbn  one pass at the epoch end in training mode (batch statistics of shuffled batches of 128), no update

Prints one JSON line per eval epoch and a summary line. Example:
    python docs/memorization-vs-prototype/proto.py --n-train 20000 --seed 500
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

K = 10
EASY = dict(dim=64, m=1, radius=4.0, spread=1.0)
COMPLEX = dict(dim=64, m=4, radius=0.5, spread=0.05)


def centres(rng, p):
    c = rng.standard_normal((K * p["m"], p["dim"]))
    return c / np.linalg.norm(c, axis=1, keepdims=True) * p["radius"]


def make_data(n, rng, cents, *, blank, groups, label_noise=0.0, flips="exact"):
    """Two groups of equal weight (easy, complex), each carrying one pattern, the other block blank."""
    if groups == "exact":
        g = np.repeat([0, 1], [n - n // 2, n // 2])
        rng.shuffle(g)
    else:
        g = rng.integers(0, 2, n)
    y = rng.integers(0, K, n)
    x = np.empty((n, 128), np.float32)
    for p, (pat, cen) in enumerate(zip((EASY, COMPLEX), cents)):
        cl = rng.integers(0, pat["m"], n)
        noise = rng.standard_normal((n, pat["dim"]))
        carried = g == p
        blank_scale = {"spread": pat["spread"], "zero": 0.0, "unit": 1.0}[blank]
        block = noise * np.where(carried, pat["spread"], blank_scale)[:, None]
        block[carried] += cen[y[carried] * pat["m"] + cl[carried]]
        x[:, p * 64:(p + 1) * 64] = block
    y_obs = y.copy()
    if label_noise:
        if flips == "exact":  # exactly round(rate n) samples, each to a different class
            idx = rng.choice(n, int(round(label_noise * n)), replace=False)
            y_obs[idx] = (y[idx] + rng.integers(1, K, idx.size)) % K
        else:  # each sample redrawn uniformly with prob. rate (1/K of the redraws keep their label)
            idx = np.flatnonzero(rng.random(n) < label_noise)
            y_obs[idx] = rng.integers(0, K, idx.size)
    return x, y_obs, y, g


def package_data(n, seed, split, label_noise):
    from lrdecay.data import pattern_dataset

    ds = pattern_dataset(n, preset="ps10-clean", split=split, seed=seed, label_noise=label_noise)
    return ds.x, ds.y, ds.y_clean, ds.group.astype(np.int64)


class MLP(nn.Module):
    def __init__(self, d_in, width, depth, bias, bn_pos="pre"):
        super().__init__()
        layers = []
        for i in range(depth):
            lin, bn = nn.Linear(d_in if i == 0 else width, width, bias=bias), nn.BatchNorm1d(width)
            layers += [lin, bn, nn.ReLU()] if bn_pos == "pre" else [lin, nn.ReLU(), bn]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, K)

    def forward(self, x):
        return self.head(self.body(x))


@torch.no_grad()
def predict(model, x, *, train_mode=False, gen=None, bs=128):
    """Predictions of a fixed model: eval mode, or training-mode BatchNorm on shuffled batches of bs
    (on a copy, so running statistics are left alone)."""
    n = x.shape[0]
    pred = torch.empty(n, dtype=torch.int64)
    if train_mode:
        model = copy.deepcopy(model).train()
        order = torch.randperm(n, generator=gen)
        for s in range(0, n, bs):
            i = order[s:s + bs]
            pred[i] = model(x[i]).argmax(1)
    else:
        model.eval()
        for s in range(0, n, 4096):
            pred[s:s + 4096] = model(x[s:s + 4096]).argmax(1)
        model.train()
    return pred


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=500)
    ap.add_argument("--n-train", type=int, default=50_000)
    ap.add_argument("--n-test", type=int, default=5_000)
    ap.add_argument("--label-noise", type=float, default=0.2)
    ap.add_argument("--data", choices=["numpy", "package"], default="numpy")
    ap.add_argument("--blank", choices=["spread", "zero", "unit"], default="spread")
    ap.add_argument("--flips", choices=["exact", "uniform"], default="exact")
    ap.add_argument("--groups", choices=["exact", "random"], default="exact")
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--bias", action="store_true")
    ap.add_argument("--bn-pos", choices=["pre", "post"], default="pre")
    ap.add_argument("--order", choices=["shuffle", "fixed", "once"], default="shuffle")
    ap.add_argument("--reset-momentum", action="store_true")
    ap.add_argument("--l2-in-loss", action="store_true")
    ap.add_argument("--bn-frozen-after", type=int, default=None)
    ap.add_argument("--opt", choices=["torch", "fused"], default="torch")
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--wd-no-bn", action="store_true")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--milestones", type=int, nargs="*", default=[10, 20])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--tag", default="")
    a = ap.parse_args(argv)
    if not 500 <= a.seed <= 599:
        ap.error("this investigation uses seeds 500-599 only")
    torch.set_num_threads(1)
    t0 = time.time()

    if a.data == "package":
        x, y, y_clean, g = package_data(a.n_train, a.seed, "train", a.label_noise)
        xt, yt, _, gt = package_data(a.n_test, a.seed, "test", None)
    else:
        rng = np.random.default_rng(a.seed)
        cents = [centres(rng, EASY), centres(rng, COMPLEX)]
        x, y, y_clean, g = make_data(a.n_train, rng, cents, blank=a.blank, groups=a.groups,
                                     label_noise=a.label_noise, flips=a.flips)
        xt, yt, _, gt = make_data(a.n_test, rng, cents, blank=a.blank, groups=a.groups)
    x, y, xt, yt = map(torch.from_numpy, (x, y, xt, yt))
    flipped = torch.from_numpy(y.numpy() != y_clean)
    g, gt = torch.from_numpy(g), torch.from_numpy(gt)

    torch.manual_seed(a.seed)
    model = MLP(x.shape[1], a.width, a.depth, a.bias, a.bn_pos)
    if a.wd_no_bn:
        decay = [p for n_, p in model.named_parameters() if p.dim() > 1]
        rest = [p for n_, p in model.named_parameters() if p.dim() <= 1]
        params = [{"params": decay}, {"params": rest, "weight_decay": 0.0}]
    else:
        params = model.parameters()
    params = list(params)
    wd = 0.0 if a.l2_in_loss else a.wd

    def make_opt(lr):
        if a.opt == "fused":
            from lrdecay.optim import FusedSGD

            return FusedSGD(params, lr=lr, momentum=0.9, weight_decay=wd)
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)

    opt = make_opt(a.lr)
    gen = torch.Generator().manual_seed(a.seed)
    n = x.shape[0]
    once = torch.randperm(n, generator=torch.Generator().manual_seed(a.seed + 1))
    out = {"args": vars(a), "epochs": {}}
    for ep in range(1, a.epochs + 1):
        lr = a.lr * 0.1 ** sum(m < ep for m in a.milestones)  # MultiStepLR stepped once per epoch
        if a.reset_momentum and ep - 1 in a.milestones:
            opt = make_opt(lr)
        for group in opt.param_groups:
            group["lr"] = lr
        model.train(a.bn_frozen_after is None or ep <= a.bn_frozen_after)
        pred = torch.full((n,), -1, dtype=torch.int64)
        order = {"shuffle": lambda: torch.randperm(n, generator=gen), "fixed": lambda: torch.arange(n),
                 "once": lambda: once}[a.order]()
        for s in range(0, n, a.batch_size):
            i = order[s:s + a.batch_size]
            logits = model(x[i])
            loss = F.cross_entropy(logits, y[i])
            if a.l2_in_loss:
                loss = loss + a.wd * sum((p * p).sum() for p in model.parameters())
            opt.zero_grad()
            loss.backward()
            opt.step()
            pred[i] = logits.detach().argmax(1)
        if ep % a.eval_every and ep != a.epochs:
            continue
        pe = predict(model, x)
        pt = predict(model, x, train_mode=True, gen=gen)
        ptest = predict(model, xt)
        rec = {
            "inep": float((pred[flipped] == y[flipped]).float().mean()),
            "eval": float((pe[flipped] == y[flipped]).float().mean()),
            "trbn": float((pt[flipped] == y[flipped]).float().mean()),
            "inep_easy": float((pred == y)[flipped & (g == 0)].float().mean()),
            "inep_complex": float((pred == y)[flipped & (g == 1)].float().mean()),
            "eval_easy": float((pe == y)[flipped & (g == 0)].float().mean()),
            "eval_complex": float((pe == y)[flipped & (g == 1)].float().mean()),
            "train_acc_inep": float((pred == y).float().mean()),
            "train_acc_eval": float((pe == y).float().mean()),
            "test": float((ptest == yt).float().mean()),
            "test_easy": float((ptest == yt)[gt == 0].float().mean()),
            "test_complex": float((ptest == yt)[gt == 1].float().mean()),
        }
        out["epochs"][ep] = rec
        print(json.dumps({"epoch": ep, **{k: round(v, 4) for k, v in rec.items()}}), flush=True)
    out["wall"] = time.time() - t0
    out["n_flipped"] = int(flipped.sum())
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
