"""Helpers shared by the test modules; test modules import from here, never from each other.

This package holds the small shared pieces (toy data, configs, run comparisons, sweep helpers, the numpy
reference of the image pipeline); its modules hold the larger ones:

- ``support.fuzz``: strategies and checks of the hypothesis fuzz suite (tests/test_fuzz_*.py);
- ``support.image_files``: CIFAR-format folders and image trees, made on the spot;
- ``support.optim_parity``: FusedSGD against torch.optim.SGD, for any backend;
- ``support.stacked_parity``: StackedSGD against one torch.optim.SGD per member, for any backend.

``tests/`` is on ``sys.path`` when pytest imports a test module there (and ``tests/kernels/conftest.py``
puts it there for the kernel tests), so ``import support`` works from every test module.
"""

from __future__ import annotations

import csv

import numpy as np
import torch

from lrdecay.trainer import TrainConfig

TIME_KEYS = ("time", "elapsed")  # wall-clock fields: the only ones two equal runs may differ in


def strip(history):
    """Epoch records without their wall-clock fields, for comparing two runs."""
    return [{k: v for k, v in r.items() if k not in TIME_KEYS} for r in history]


# ---------------------------------------------------------------------------- trainer
def clusters(n, *, d=12, k=4, seed=0, noise=0.0, sep=3.0, draw=0):
    """Gaussian clusters in two groups (``easy``: far-apart centres, ``hard``: close ones) with optional
    symmetric label flips; centres from ``seed``, samples from (``seed``, ``draw``). Independent of the
    code under test."""
    centres = np.random.default_rng(seed).normal(size=(2, k, d)) * np.array([sep, sep / 6])[:, None, None]
    rng = np.random.default_rng([seed, draw])
    group = (rng.random(n) < 0.5).astype(np.int32)
    y_clean = rng.integers(0, k, n)
    x = (centres[group, y_clean] + rng.normal(size=(n, d))).astype(np.float32)
    y = y_clean.copy()
    flipped = np.zeros(n, bool)
    n_flip = int(round(noise * n))
    if n_flip:
        idx = rng.choice(n, n_flip, replace=False)
        y[idx] = (y[idx] + rng.integers(1, k, n_flip)) % k
        flipped[idx] = True
    return {"x": x, "y": y, "y_clean": y_clean, "group": group, "flipped": flipped,
            "group_names": ("easy", "hard"), "n_classes": k}


def small_config(**kw):
    """A 3-epoch CPU run of a 2×16 MLP with torch's SGD, no ledger, no plots; ``kw`` overrides."""
    base = dict(
        epochs=3, batch_size=32, optimizer="torch", ledger=False, width=16, depth=2, milestones=[2],
        device="cpu", progress=False, plots=False,
    )
    base.update(kw)
    return TrainConfig(**base)


def assert_same_run(a, b):
    """Two trainers ran the same run: equal epoch records (but time), ledgers and parameters, bitwise."""
    assert strip(a.history) == strip(b.history)
    if a.ledger is not None:
        assert np.array_equal(a.ledger.history(), b.ledger.history())
        assert np.array_equal(a.ledger.forgetting_events, b.ledger.forgetting_events)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ---------------------------------------------------------------------------- sweeps
def tiny(**kw) -> TrainConfig:
    """A run of a fraction of a second: 4-class toy data, a 2×8 MLP with BatchNorm, 3 epochs."""
    base = dict(preset="toy", n_train=300, n_test=100, label_noise=0.2, width=8, depth=2, epochs=3,
                milestones=[2], batch_size=64, device="cpu", progress=False, plots=False)
    base.update(kw)
    return TrainConfig(**base)


def member_configs() -> list[TrainConfig]:
    """Runs that stack together but differ in every per-member setting (seed, data noise, optimizer,
    lr, momentum, dampening, weight decay, Nesterov, schedule)."""
    return [
        tiny(seed=0),
        tiny(seed=1, lr=0.05, schedule="constant", optimizer="torch"),
        tiny(seed=0, lr=0.2, momentum=0.0, weight_decay=0.0, schedule="cosine"),
        tiny(seed=2, label_noise=0.0, nesterov=True, schedule="step", step_size=1, gamma=0.5),
        tiny(seed=3, dampening=0.3, schedule="exponential", gamma=0.7, optimizer="torch"),
    ]


def fused_configs() -> list[TrainConfig]:
    """member_configs() all with optimizer="fused": stacked or alone, bit for bit the same numbers."""
    return [c.replace(optimizer="fused") for c in member_configs()]


def kill_configs() -> list[TrainConfig]:
    """fused_configs() at 5 epochs: the sweep whose worker a test makes exit after its epoch-2 checkpoint
    (:func:`worker_exits_after_checkpoint`)."""
    return [c.replace(epochs=5, milestones=[3]) for c in fused_configs()]


def worker_exits_after_checkpoint(monkeypatch, epoch: int = 2) -> None:
    """The next sweep's first worker to write a run's checkpoint of ``epoch`` exits right there, as if
    killed (the sweep's test hook, read by the driver when it plans its tasks; the driver never exits)."""
    from lrdecay.sweep.tasks import TEST_WORKER_EXIT_ENV

    monkeypatch.setenv(TEST_WORKER_EXIT_ENV, str(epoch))


def killed_sweep_configs() -> list[TrainConfig]:
    """fused_configs() at 8 epochs of 2000 samples: the sweep a test kills from outside and reruns."""
    return [c.replace(epochs=8, milestones=[4], n_train=2000, batch_size=100) for c in fused_configs()]


def table(path) -> list[dict]:
    """A sweep's table.csv as rows of strings, without the wall-clock columns."""
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIME_KEYS} for row in csv.DictReader(f)]


# ---------------------------------------------------------------------------- image pipeline
M32 = np.uint64(0xFFFFFFFF)


def np_mix32(x):
    """The pipeline's 32-bit integer hash, in numpy."""
    x = x.astype(np.uint64)
    x = (((x >> np.uint64(16)) ^ x) * np.uint64(0x45D9F3B)) & M32
    x = (((x >> np.uint64(16)) ^ x) * np.uint64(0x45D9F3B)) & M32
    return (x >> np.uint64(16)) ^ x


def np_draws(idx, seed, n):
    """The pipeline's ``n`` per-sample random draws for sample ids ``idx`` under ``seed``, in numpy."""
    k0, k1 = np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32)
    base = np_mix32((idx.astype(np.uint64) & M32) ^ k0)
    return [np_mix32(base ^ np_mix32(np.array([(int(k1) + j * 0x9E3779B9) & 0xFFFFFFFF], np.uint64))) for j in range(n)]


def augment_reference(x, idx, seed, mean, std, augment, p):
    """Per image: zero-pad, cut the window, mirror, then (x * scale + shift) in float32."""
    crop, flip = augment in ("crop", "crop+flip"), augment in ("flip", "crop+flip")
    p = p if crop else 0
    r = np_draws(idx, seed, 3)
    b, c, h, w = x.shape
    out = np.empty((b, c, h, w), np.float32)
    scale = (1.0 / (255.0 * np.asarray(std, np.float64))).astype(np.float32)
    shift = (-np.asarray(mean, np.float64) / np.asarray(std, np.float64)).astype(np.float32)
    for i in range(b):
        img = x[i]
        if crop or flip:
            padded = np.zeros((c, h + 2 * p, w + 2 * p), np.uint8)
            padded[:, p : p + h, p : p + w] = img
            dy, dx = int(r[0][i] % (2 * p + 1)), int(r[1][i] % (2 * p + 1))
            img = padded[:, dy : dy + h, dx : dx + w]
            if flip and (int(r[2][i]) >> 16) & 1:
                img = img[:, :, ::-1]
        out[i] = img.astype(np.float32) * scale[:, None, None] + shift[:, None, None]
    return out


def run_cli(argv, capsys):
    """(exit code, stdout, stderr) of ``lrdecay argv`` run in this process (``main``'s return value or
    the code of the ``SystemExit`` argparse raises)."""
    from lrdecay.cli import main

    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def train_args(tmp_path, *extra):
    """``lrdecay train`` arguments for a 3-epoch run on a small random .npz (written once into ``tmp_path``)."""
    rng = np.random.default_rng(0)
    if not (tmp_path / "d.npz").exists():
        np.savez(tmp_path / "d.npz", x=rng.normal(size=(90, 5)).astype(np.float32), y=rng.integers(0, 3, 90),
                 n_classes=np.int64(3))
    return ["train", "--data", str(tmp_path / "d.npz"), "--epochs", "3", "--batch-size", "30", "--width", "8",
            "--depth", "1", "--milestones", "2", "--optimizer", "torch", "--device", "cpu", "--no-ledger", *extra]


def toy_spec(name: str, seeds: str, *, epochs: int = 2, milestones: str = "[1]", tail: str = "") -> str:
    """The TOML text of a small sweep spec on the toy preset (``seeds``: its TOML value, e.g. ``"2"`` or
    ``"[0, 1]"``), each line on its own so tests can replace one; ``tail`` is appended (settings, grid)."""
    return (f'name = "{name}"\nseeds = {seeds}\n[base]\npreset = "toy"\nn_train = 200\nn_test = 50\nwidth = 8\n'
            f'depth = 2\nepochs = {epochs}\nmilestones = {milestones}\nbatch_size = 50\ndevice = "cpu"\n{tail}')
