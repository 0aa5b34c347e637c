"""Real image datasets from local files: CIFAR-10/100, class-per-folder trees, scikit-learn's digits.

Every reader returns an :class:`ImageDataset`: ``uint8`` pixels ``(n, C, H, W)`` (channel-major, as
the CIFAR batch files store them), ``int64`` labels and the class names. Nothing is ever downloaded: a
missing or partial folder raises :class:`DatasetNotFoundError` saying which layout is expected and where
the reader looked; a damaged file raises ``ValueError`` naming it.

>>> from lrdecay.data import cifar10, digits
>>> train = cifar10("~/data", split="train")             # ~/data/cifar-10-batches-py/ or that folder itself
>>> train.x.shape, train.x.dtype, train.class_names[:2]
((50000, 3, 32, 32), dtype('uint8'), ('airplane', 'automobile'))
>>> noisy = train.with_label_noise(0.2, mode="pairflip", seed=0)   # y, y_clean, flipped

This module holds the type every reader returns, the missing-files error and the checks the readers share.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from lrdecay._validate import check_int
from lrdecay.data.noise import corrupt_labels

__all__ = ["ImageDataset", "DatasetNotFoundError", "channel_stats"]

_SPLITS = ("train", "test")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where the reader looked (the message says which layout it expects)."""


@dataclass(frozen=True, eq=False, repr=False)
class ImageDataset:
    """Images with labels, as the trainer takes them (``uint8`` pixels stay ``uint8`` on the device).

    Attributes
    ----------
    x : uint8 array (n, C, H, W), C-contiguous.
    y : int64 array (n,), observed labels (after label noise, if any).
    class_names : one name per class; ``n_classes == len(class_names)``.
    name, split : where it came from (``"cifar10"``, ``"train"``, ...).
    y_clean, flipped : int64 labels before noise and the bool mask ``y != y_clean``; None without noise.
    mean, std : (properties) per-channel mean and standard deviation of ``x / 255`` over this set, exact
        (from pixel histograms), computed on first use; the trainer normalizes every split with the
        *training* set's values.
    default_augment : what ``augment="auto"`` means for this data, one of ``lrdecay.augment.AUGMENTS``:
        ``"crop+flip"`` for natural images, ``"none"`` for digits (a flip turns them into other shapes).
    files : for :func:`image_folder`, each image's path relative to the root; else None.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    name: str
    split: str
    y_clean: np.ndarray | None = None
    flipped: np.ndarray | None = None
    default_augment: str = "crop+flip"
    files: tuple[str, ...] | None = None

    @functools.cached_property
    def _stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return channel_stats(self.x)

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel mean of ``x / 255`` (computed once, on first use)."""
        return self._stats[0]

    @property
    def std(self) -> tuple[float, ...]:
        """Per-channel (population) standard deviation of ``x / 255`` (computed once, on first use)."""
        return self._stats[1]

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __repr__(self) -> str:
        noise = "" if self.flipped is None else f", flipped={int(self.flipped.sum())}"
        return (f"ImageDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"image_shape={self.image_shape}, n_classes={self.n_classes}{noise})")

    @property
    def n_classes(self) -> int:
        """Number of classes (``len(class_names)``)."""
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(int(s) for s in self.x.shape[1:])  # type: ignore[return-value]

    def with_label_noise(
        self, rate: float, *, mode: str = "symmetric", exact: bool = True, matrix=None, seed: int = 0
    ) -> "ImageDataset":
        """A copy with noisy labels from :func:`lrdecay.noise.corrupt_labels` (arguments as there):
        ``y`` noisy, ``y_clean`` the labels before, ``flipped`` the changed ones. Pixels are shared.

        Noise is drawn from the clean labels: applying it to a set that already has noise starts again
        from ``y_clean``.
        """
        clean = self.y if self.y_clean is None else self.y_clean
        y_noisy, flipped = corrupt_labels(clean, self.n_classes, rate, mode=mode, exact=exact, matrix=matrix, seed=seed)
        out = dataclasses.replace(self, y=y_noisy, y_clean=clean, flipped=flipped)
        if "_stats" in self.__dict__:  # same pixels, same statistics
            out.__dict__["_stats"] = self._stats
        return out

    def subset(self, indices) -> "ImageDataset":
        """The images at ``indices`` (an integer array or a bool mask), in that order."""
        idx = np.asarray(indices)
        if idx.dtype == np.bool_:
            if idx.shape != (len(self),):
                raise ValueError(f"indices: a bool mask must have shape ({len(self)},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        elif idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise TypeError(f"indices must be a 1-D integer array or a bool mask, got {idx.dtype} {idx.shape}")
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise ValueError(f"indices must be in [0, {len(self)}), got range [{idx.min()}, {idx.max()}]")
        if idx.size == 0:
            raise ValueError("indices must select at least one image")
        take = lambda a: None if a is None else np.ascontiguousarray(a[idx])  # noqa: E731
        return dataclasses.replace(
            self, x=take(self.x), y=take(self.y), y_clean=take(self.y_clean), flipped=take(self.flipped),
            files=None if self.files is None else tuple(self.files[i] for i in idx),
        )

    def balanced_subset(self, n: int, *, seed: int = 0) -> "ImageDataset":
        """``n`` images, as equal a number from every class as the classes allow (largest remainder),
        chosen by a seeded hash order (the same images for a seed on every machine and numpy version),
        kept in their original order. Class balance follows the clean labels when there are any."""
        n = check_int("n", n, 1, len(self))
        seed = check_int("seed", seed, 0, 2**64 - 1)
        labels = self.y if self.y_clean is None else self.y_clean
        counts = np.bincount(labels, minlength=self.n_classes)
        order = np.argsort(_hash64(np.arange(len(self), dtype=np.uint64), seed), kind="stable")
        quota = _balanced_quota(counts, n)
        ranked = labels[order]
        # rank of each image within its class in the hash order; keep those below the class quota
        rank = np.empty(len(self), dtype=np.int64)
        for k in range(self.n_classes):
            members = order[ranked == k]
            rank[members] = np.arange(members.size)
        keep = rank < quota[labels]
        return self.subset(np.flatnonzero(keep))

    def select_classes(self, classes: Sequence[int | str]) -> "ImageDataset":
        """Only the images of ``classes`` (indices or names), relabelled 0..len(classes)-1 in that order:
        e.g. a held-out class split for transfer experiments."""
        if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence) or not classes:
            raise TypeError("classes must be a non-empty list of class indices or names")
        ids = []
        for c in classes:
            if isinstance(c, str):
                if c not in self.class_names:
                    raise ValueError(f"classes: unknown class {c!r}; classes are {list(self.class_names)}")
                ids.append(self.class_names.index(c))
            else:
                ids.append(check_int("classes[i]", c, 0, self.n_classes - 1))
        if len(set(ids)) != len(ids) or len(ids) < 2:
            raise ValueError(f"classes must name at least 2 distinct classes, got {list(classes)}")
        remap = np.full(self.n_classes, -1, dtype=np.int64)
        remap[ids] = np.arange(len(ids))
        labels = self.y if self.y_clean is None else self.y_clean
        part = self.subset(remap[labels] >= 0)
        relabel = lambda a: None if a is None else remap[a]  # noqa: E731
        y = remap[part.y]
        if (y < 0).any():  # a noisy label pointing outside the kept classes
            raise ValueError("select_classes: some noisy labels fall outside the selected classes; "
                             "select classes on the clean set, then add label noise")
        return dataclasses.replace(
            part, y=y, y_clean=relabel(part.y_clean), class_names=tuple(self.class_names[i] for i in ids),
        )

    def to_torch(self, device=None) -> dict[str, Any]:
        """The arrays as torch tensors ``{"x", "y"}`` (+ ``"y_clean"``, ``"flipped"`` with noise) on
        ``device`` (CPU tensors sharing memory with the numpy arrays when ``device`` is None)."""
        import torch

        arrays = {"x": self.x, "y": self.y, "y_clean": self.y_clean, "flipped": self.flipped}
        out = {k: torch.from_numpy(v) for k, v in arrays.items() if v is not None}
        if device is not None:
            out = {k: v.to(device) for k, v in out.items()}
        return out


# ====================================================================== helpers
def channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) standard deviation of ``x / 255`` for uint8 ``x`` (n, C, H, W).

    Computed from exact pixel-value histograms, so the result does not depend on summation order,
    thread count or machine. A constant channel gets std 1 (normalization then only centres it).
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4:
        raise TypeError(f"x must be a uint8 array (n, C, H, W), got {getattr(x, 'dtype', type(x))} "
                        f"{getattr(x, 'shape', '')}")
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(x.shape[1]):
        hist = np.bincount(x[:, c].reshape(-1), minlength=256).astype(np.float64)
        total = hist.sum()
        mean = float((hist * values).sum() / total)
        var = float((hist * (values - mean) ** 2).sum() / total)
        means.append(mean)
        stds.append(var**0.5 if var > 0 else 1.0)
    return tuple(means), tuple(stds)


_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _hash64(i: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 of ``i + seed * golden``: a fixed, platform-independent pseudo-random key per index."""
    with np.errstate(over="ignore"):
        z = i.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _balanced_quota(counts: np.ndarray, n: int) -> np.ndarray:
    """Per-class quotas summing to ``n``, as equal as ``counts`` allow (water-filling, ties to low ids)."""
    quota = np.zeros_like(counts)
    left = n
    active = counts > 0
    while left > 0:
        k = int(active.sum())
        share = max(left // k, 1)
        room = counts - quota
        add = np.where(active, np.minimum(room, share), 0)
        if add.sum() > left:  # fewer than k images left to hand out: one each to the lowest ids
            add = np.zeros_like(add)
            add[np.flatnonzero(active)[:left]] = 1
        quota += add
        left -= int(add.sum())
        active = quota < counts
    return quota


def _check_split(split) -> str:
    if not isinstance(split, str):
        raise TypeError(f"split must be 'train' or 'test', got {type(split).__name__}")
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split


def _check_root(root, what: str) -> str:
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path (str or os.PathLike) to {what}, got {type(root).__name__}")
    path = os.path.abspath(os.path.expanduser(os.fspath(root)))
    if not os.path.isdir(path):
        raise DatasetNotFoundError(
            f"root {os.fspath(root)!r} is not a folder ({'does not exist' if not os.path.exists(path) else 'a file'}); "
            f"expected {what}"
        )
    return path
