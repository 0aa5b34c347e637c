"""Real images on the CPU: augmenting a batch on the device vs per-image transforms, and reading CIFAR.

1. One training batch of 128 CIFAR images (uint8, 3×32×32): the trainer's pipeline (gather from the
   resident uint8 tensor, random crop with 4-pixel zero padding, horizontal flip, normalization, all as
   batch ops) vs what a torchvision-style Dataset does per image before ``default_collate`` (pad, crop,
   flip in numpy, to a float tensor, normalize, then ``torch.stack``). ``extra_info["speedup_vs_per_image"]``.
2. Reading CIFAR-10 (50k + 10k images, a generated folder): ``lrdecay.data.cifar10`` (arrays-only
   unpickler, checks, one preallocated array) vs the loop users copy from the CIFAR page (``pickle.load``,
   ``np.concatenate``). ``extra_info["ratio_vs_plain_pickle"]`` (>= 1: faster).

Under ``--benchmark-disable`` tiny sizes run once.
"""

from __future__ import annotations

import os
import pickle
import warnings

import numpy as np
import torch

from lrdecay.augment import ImagePipeline
from lrdecay.data import cifar10
from lrdecay.images import write_cifar
from paired import alternate

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


def _per_image_batch(x: np.ndarray, idx: np.ndarray, rng) -> torch.Tensor:
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    out = []
    for i in idx:
        padded = np.pad(x[i], ((0, 0), (4, 4), (4, 4)))
        dy, dx = rng.integers(0, 9, 2)
        img = padded[:, dy : dy + 32, dx : dx + 32]
        if rng.random() < 0.5:
            img = img[:, :, ::-1]
        t = torch.from_numpy(np.ascontiguousarray(img)).float().div_(255)
        out.append((t - mean) / std)
    return torch.stack(out)


def test_augment_batch_vs_per_image(benchmark):
    torch.set_num_threads(1)
    n, batch = (10_000, 128) if not benchmark.disabled else (300, 16)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    xt = torch.from_numpy(x)
    pipe = ImagePipeline(MEAN, STD, augment="crop+flip", padding=4)
    pipe.set_epoch(1)
    batches = [rng.choice(n, batch, replace=False) for _ in range(20)]

    def baseline():
        for idx in batches:
            _per_image_batch(x, idx, rng)

    def pipeline():
        for idx in batches:
            i = torch.from_numpy(idx)
            pipe.train_batch(xt.index_select(0, i), i)

    a, b = (t / len(batches) for t in alternate(benchmark, baseline, pipeline, 5))
    benchmark.extra_info.update(batch=batch, per_image_s_per_batch=a, pipeline_s_per_batch=b,
                                speedup_vs_per_image=a / b, threads=torch.get_num_threads())


def _plain_read(folder: str):
    xs, ys = [], []
    for i in range(1, 6):
        with open(os.path.join(folder, f"data_batch_{i}"), "rb") as f:
            d = pickle.load(f, encoding="latin1")
        xs.append(d["data"])
        ys += d["labels"]
    return np.concatenate(xs).reshape(-1, 3, 32, 32), np.array(ys)


def test_read_cifar10_vs_plain_pickle(benchmark, tmp_path):
    n = 50_000 if not benchmark.disabled else 500
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, n)
    folder = write_cifar(tmp_path, "cifar10", (x, y), (x[: n // 5], y[: n // 5]), [str(i) for i in range(10)])

    def baseline():
        px, _ = _plain_read(folder)
        assert px.shape == (n, 3, 32, 32)

    def read():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = cifar10(folder)
        assert np.array_equal(ds.y, y)

    a, b = alternate(benchmark, baseline, read, 3)
    benchmark.extra_info.update(n=n, plain_pickle_s=a, cifar10_s=b, ratio_vs_plain_pickle=a / b)
