"""scikit-learn's bundled handwritten digits as an :class:`ImageDataset` (never downloaded)."""

from __future__ import annotations

import numpy as np

from lrdecay.data.image_dataset import _SPLITS, ImageDataset

__all__ = ["digits"]


def digits(split: str = "all") -> ImageDataset:
    """scikit-learn's bundled handwritten digits (UCI optdigits test part): 1,797 images of 1 x 8 x 8, 10
    classes. Needs scikit-learn (``pip install 'lrdecay[digits]'``); ships with it, never downloaded.

    Pixels (integers 0-16 in the source) are scaled to 0-255 as ``(v * 255 + 8) // 16`` (rounded).

    Parameters
    ----------
    split:
        ``"all"`` (1,797), ``"test"`` (within each class, every fifth image in source order: the 5th,
        10th, ...; 355 images) or ``"train"`` (the other 1,442): a fixed, class-stratified split.
    """
    if not isinstance(split, str) or split not in ("all", *_SPLITS):
        raise ValueError(f"split must be 'all', 'train' or 'test', got {split!r}")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("digits() needs scikit-learn, which ships the data: pip install 'lrdecay[digits]' "
                          "(or pip install scikit-learn)") from None
    d = load_digits()
    v = np.asarray(d.images)
    if v.shape[1:] != (8, 8) or v.min() < 0 or v.max() > 16:
        raise ValueError(f"scikit-learn's digits have an unexpected form: shape {v.shape}, range "
                         f"[{v.min()}, {v.max()}]")
    x = ((np.rint(v).astype(np.int64) * 255 + 8) // 16).astype(np.uint8)[:, None]
    y = np.asarray(d.target, dtype=np.int64)
    if split != "all":
        rank = np.zeros(len(y), dtype=np.int64)  # position of each image among its class, in source order
        for k in range(10):
            members = np.flatnonzero(y == k)
            rank[members] = np.arange(members.size)
        test = rank % 5 == 4
        keep = test if split == "test" else ~test
        x, y = np.ascontiguousarray(x[keep]), y[keep]
    return ImageDataset(x=x, y=y, class_names=tuple(str(c) for c in range(10)), name="digits", split=split,
                        default_augment="none")
