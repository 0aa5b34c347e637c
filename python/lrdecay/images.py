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
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import os
import pickle
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from lrdecay._validate import check_int
from lrdecay.idx import IDX_DATASETS
from lrdecay.noise import corrupt_labels

__all__ = [
    "ImageDataset",
    "DatasetNotFoundError",
    "cifar10",
    "cifar100",
    "image_folder",
    "digits",
    "load_images",
    "IMAGE_DATASETS",
    "IMAGE_EXTENSIONS",
    "channel_stats",
    "write_cifar",
]

#: Names accepted by :func:`load_images` (and ``TrainConfig.data`` / ``lrdecay train --data``).
IMAGE_DATASETS = ("cifar10", "cifar100", "digits", "folder", *IDX_DATASETS)
#: File endings :func:`image_folder` decodes (case-insensitive).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

_SPLITS = ("train", "test")
_FOLDER_CACHE_FORMAT = 1


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


# ====================================================================== CIFAR
_CIFAR = {
    "cifar10": {
        "title": "CIFAR-10",
        "folder": "cifar-10-batches-py",
        "archive": "cifar-10-python.tar.gz",
        "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test": ("test_batch",),
        "meta": "batches.meta",
        "labels": {"fine": ("labels", "label_names", 10)},
        "rows": {"train": 50_000, "test": 10_000},
    },
    "cifar100": {
        "title": "CIFAR-100",
        "folder": "cifar-100-python",
        "archive": "cifar-100-python.tar.gz",
        "train": ("train",),
        "test": ("test",),
        "meta": "meta",
        "labels": {"fine": ("fine_labels", "fine_label_names", 100), "coarse": ("coarse_labels", "coarse_label_names", 20)},
        "rows": {"train": 50_000, "test": 10_000},
    },
}

# What a CIFAR pickle may construct: numpy arrays (and bytes, which protocol-2 pickles written by
# Python 3 encode with _codecs.encode). Anything else is refused: unpickling runs code otherwise.
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR batch holds only arrays, "
                                         f"lists and strings")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core."):]  # numpy 2 moved it; avoid the shim's warning
        return getattr(importlib.import_module(module), name)


def _unpickle(path: str) -> Any:
    """Load one batch file with the arrays-only unpickler; damaged files raise ValueError naming them."""
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    try:
        with f:
            # latin1: the official files were written by Python 2, whose str holds the pixel bytes
            obj = _ArraysOnlyUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        if "refusing" in str(exc):
            raise ValueError(f"{path}: {exc}") from None
        raise ValueError(f"{path} is truncated or corrupt ({exc}); extract the archive again") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, OverflowError, MemoryError,
            UnicodeDecodeError, ImportError, OSError) as exc:
        raise ValueError(
            f"{path} is truncated or corrupt ({type(exc).__name__}: {exc}); extract the archive again"
        ) from None
    if isinstance(obj, dict):
        obj = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}
    return obj


def _cifar_layout(spec: dict, split: str) -> str:
    files = [spec["meta"], *spec[split]]
    shown = ", ".join(files) if len(files) < 5 else f"{files[0]}, {files[1]} ... {files[-1]}"
    return (f"the {spec['title']} python folder '{spec['folder']}/' as extracted from {spec['archive']} "
            f"(files {shown}), passed as root or inside root")


def _locate_cifar(root, spec: dict, split: str) -> str:
    """The folder holding the split's files: ``root`` itself or ``root/<folder>``."""
    base = _check_root(root, _cifar_layout(spec, split))
    need = [spec["meta"], *spec[split]]
    looked = []
    for cand in (base, os.path.join(base, spec["folder"])):
        if not os.path.isdir(cand):
            looked.append(f"  {cand}: no such folder")
            continue
        missing = [f for f in need if not os.path.isfile(os.path.join(cand, f))]
        if not missing:
            return cand
        looked.append(f"  {cand}: missing {', '.join(missing)}")
    hint = ""
    if os.path.isfile(os.path.join(base, spec["archive"])):
        hint = f"\n{spec['archive']} is in {base}: extract it there (tar xzf {spec['archive']} -C {base})."
    raise DatasetNotFoundError(
        f"{spec['title']} ({split}) not found: expected {_cifar_layout(spec, split)}. Looked in:\n"
        + "\n".join(looked) + hint
        + f"\nlrdecay never downloads: get {spec['archive']} from the CIFAR page and extract it into root."
    )


def _read_cifar(name: str, root, split: str, labels: str) -> ImageDataset:
    spec = _CIFAR[name]
    split = _check_split(split)
    if labels not in spec["labels"]:
        raise ValueError(f"labels must be one of {list(spec['labels'])} for {spec['title']}, got {labels!r}")
    label_key, names_key, k = spec["labels"][labels]
    folder = _locate_cifar(root, spec, split)

    meta_path = os.path.join(folder, spec["meta"])
    meta = _unpickle(meta_path)
    names = meta.get(names_key) if isinstance(meta, dict) else None
    if not isinstance(names, (list, tuple)) or len(names) != k or not all(isinstance(s, (str, bytes)) for s in names):
        raise ValueError(f"{meta_path}: expected a dict whose {names_key!r} is a list of {k} class names; "
                         f"not a {spec['title']} meta file")
    class_names = tuple(s.decode() if isinstance(s, bytes) else s for s in names)

    parts_x, parts_y = [], []
    for fname in spec[split]:
        path = os.path.join(folder, fname)
        batch = _unpickle(path)
        if not isinstance(batch, dict) or "data" not in batch or label_key not in batch:
            got = sorted(map(str, batch)) if isinstance(batch, dict) else type(batch).__name__
            raise ValueError(f"{path}: expected a dict with 'data' and {label_key!r}, got {got}; "
                             f"not a {spec['title']} batch file")
        data = batch["data"]
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            shape = getattr(data, "shape", None)
            raise ValueError(
                f"{path}: 'data' must be a uint8 array of shape (n, 3072) (n images of 3 x 32 x 32, channel-major), "
                f"got {getattr(data, 'dtype', type(data).__name__)} {shape}"
            )
        y = np.asarray(batch[label_key])
        if y.dtype.kind not in "iu" or y.shape != (data.shape[0],):
            raise ValueError(f"{path}: {label_key!r} must hold {data.shape[0]} integer labels (one per row of "
                             f"'data'), got {y.dtype} {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= k):
            raise ValueError(f"{path}: labels must be in [0, {k}), found {int(y.min() if y.min() < 0 else y.max())}")
        parts_x.append(data)
        parts_y.append(y.astype(np.int64))
    n = sum(p.shape[0] for p in parts_x)
    if n == 0:
        raise ValueError(f"{folder}: the {split} batch files hold no images")
    x = np.empty((n, 3, 32, 32), dtype=np.uint8)
    off = 0
    for p in parts_x:
        x[off : off + p.shape[0]] = p.reshape(-1, 3, 32, 32)
        off += p.shape[0]
    expected = spec["rows"][split]
    if n != expected:
        warnings.warn(f"{spec['title']} {split} in {folder} has {n} images, not the official {expected}",
                      stacklevel=3)
    return ImageDataset(
        x=x, y=np.concatenate(parts_y), class_names=class_names, name=name if labels == "fine" else f"{name}-{labels}",
        split=split, default_augment="crop+flip",
    )


def cifar10(root: str | os.PathLike, split: str = "train") -> ImageDataset:
    """CIFAR-10 from its python batch folder: 50,000 train / 10,000 test images, 3 x 32 x 32, 10 classes.

    Parameters
    ----------
    root:
        The folder ``cifar-10-batches-py/`` extracted from ``cifar-10-python.tar.gz`` (files
        ``batches.meta``, ``data_batch_1`` ... ``data_batch_5``, ``test_batch``), or its parent.
    split:
        ``"train"`` (the five data batches, in order) or ``"test"``.

    Raises
    ------
    DatasetNotFoundError
        (a FileNotFoundError) when the files are not there; the message lists the expected layout and
        every folder looked in. Nothing is downloaded.
    ValueError
        When a file is truncated, corrupt, or holds anything but CIFAR arrays (the batch files are
        pickles: only numpy arrays, lists and strings are unpickled, never arbitrary objects).
    """
    return _read_cifar("cifar10", root, split, "fine")


def cifar100(root: str | os.PathLike, split: str = "train", *, labels: str = "fine") -> ImageDataset:
    """CIFAR-100 from its python folder: 50,000 train / 10,000 test images, 3 x 32 x 32.

    Parameters
    ----------
    root:
        The folder ``cifar-100-python/`` extracted from ``cifar-100-python.tar.gz`` (files ``meta``,
        ``train``, ``test``), or its parent.
    split:
        ``"train"`` or ``"test"``.
    labels:
        ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses).

    Raises as :func:`cifar10`.
    """
    return _read_cifar("cifar100", root, split, labels)


def write_cifar(
    root: str | os.PathLike,
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    class_names: Sequence[str],
    *,
    coarse: tuple[np.ndarray, np.ndarray, Sequence[str]] | None = None,
) -> str:
    """Write ``(x, y)`` arrays in the python batch layout that :func:`cifar10` / :func:`cifar100` read
    (``root/cifar-10-batches-py/`` or ``root/cifar-100-python/``); returns that folder.

    For tests, benchmarks on generated data, and converting another dataset to the format. ``x`` is uint8
    (n, 3, 32, 32); CIFAR-10's training set is split over five batch files in order. For CIFAR-100,
    ``coarse=(y_train, y_test, names)`` gives the 20 superclass labels (default: all 0, names "coarse0"...).
    """
    if name not in _CIFAR:
        raise ValueError(f"name must be one of {list(_CIFAR)}, got {name!r}")
    spec = _CIFAR[name]
    k = spec["labels"]["fine"][2]
    if len(class_names) != k:
        raise ValueError(f"class_names must have {k} names for {spec['title']}, got {len(class_names)}")
    for what, (x, y) in (("train", train), ("test", test)):
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (3, 32, 32):
            raise ValueError(f"{what}: x must be uint8 (n, 3, 32, 32), got {getattr(x, 'dtype', None)} "
                             f"{getattr(x, 'shape', None)}")
        if np.shape(y) != (x.shape[0],):
            raise ValueError(f"{what}: y must have shape ({x.shape[0]},), got {np.shape(y)}")
    folder = os.path.join(os.fspath(root), spec["folder"])
    os.makedirs(folder, exist_ok=True)

    def dump(fname: str, obj: dict) -> None:
        from lrdecay._atomic import atomic_write

        with atomic_write(os.path.join(folder, fname)) as f:
            pickle.dump(obj, f)

    def batch(x, y, label, extra=None):
        d = {"batch_label": label, "data": x.reshape(x.shape[0], -1), "filenames": [f"{i}.png" for i in range(len(y))]}
        d.update(extra or {})
        return d

    if name == "cifar10":
        dump("batches.meta", {"label_names": list(class_names), "num_cases_per_batch": 10000, "num_vis": 3072})
        xs, ys = train
        parts = np.array_split(np.arange(xs.shape[0]), len(spec["train"]))
        for i, (fname, part) in enumerate(zip(spec["train"], parts), 1):
            dump(fname, batch(xs[part], ys[part], f"training batch {i} of 5", {"labels": [int(v) for v in ys[part]]}))
        dump("test_batch", batch(test[0], test[1], "testing batch 1 of 1", {"labels": [int(v) for v in test[1]]}))
        return folder
    c_train, c_test, c_names = coarse if coarse is not None else (
        np.zeros(len(train[1]), np.int64), np.zeros(len(test[1]), np.int64), [f"coarse{i}" for i in range(20)])
    dump("meta", {"fine_label_names": list(class_names), "coarse_label_names": list(c_names)})
    for fname, (x, y), c in (("train", train, c_train), ("test", test, c_test)):
        dump(fname, batch(x, y, fname, {"fine_labels": [int(v) for v in y], "coarse_labels": [int(v) for v in c]}))
    return folder


# ====================================================================== image folders
def _default_cache_dir() -> str:
    env = os.environ.get("LRDECAY_CACHE")
    if env:
        return os.path.join(env, "image_folder")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lrdecay", "image_folder")


def _check_size(size) -> tuple[int, int]:
    if isinstance(size, (list, tuple)) and len(size) == 2:
        h, w = (check_int(f"size[{i}]", s, 1, 65536) for i, s in enumerate(size))
        return h, w
    s = check_int("size", size, 1, 65536) if not isinstance(size, (list, tuple)) else None
    if s is None:
        raise ValueError(f"size must be an int or a pair (height, width), got {size!r}")
    return s, s


def _class_folders(root: str) -> list[str]:
    return sorted(e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=True) and not e.name.startswith("."))


def _scan_folder(root: str, extensions: tuple[str, ...]) -> tuple[list[str], list[str], list[int]]:
    """(class names, relative file paths, labels) of a class-per-subfolder tree, in sorted order."""
    layout = (f"one subfolder per class holding its images (root/<class>/<image>, any depth below the class "
              f"folder; endings {', '.join(extensions)})")
    classes = _class_folders(root)
    if not classes:
        raise DatasetNotFoundError(f"image_folder: no class subfolders in {root}; expected {layout}")
    files, labels, empty = [], [], []
    for k, cls in enumerate(classes):
        found = []
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, cls), followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fn in sorted(filenames):
                if not fn.startswith(".") and fn.lower().endswith(extensions):
                    found.append(os.path.relpath(os.path.join(dirpath, fn), root))
        if not found:
            empty.append(cls)
        files.extend(found)
        labels.extend([k] * len(found))
    if empty:
        raise DatasetNotFoundError(
            f"image_folder: class folder(s) {empty} in {root} hold no images; expected {layout}"
        )
    return classes, files, labels


def _content_key(root: str, files: list[str], labels: list[int], params: dict) -> str:
    """Hash of every image's bytes, path and class, plus the decoding parameters and Pillow's version."""
    import PIL

    h = hashlib.blake2b(digest_size=20)
    h.update(repr(sorted(params.items())).encode())
    h.update(f"format={_FOLDER_CACHE_FORMAT};pillow={PIL.__version__}".encode())
    for rel, k in zip(files, labels):
        h.update(f"\0{rel}\0{k}\0".encode())
        with open(os.path.join(root, rel), "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


class _WrongSize(ValueError):
    pass


def _decode(path: str, size: tuple[int, int], resize: str, mode: str) -> np.ndarray:
    """One image as uint8 (C, H, W)."""
    from PIL import Image, ImageOps

    h, w = size
    with Image.open(path) as im:
        im.load()
        im = im.convert(mode)
        if resize == "crop":
            if im.size != (w, h):
                im = ImageOps.fit(im, (w, h), method=Image.Resampling.BILINEAR, centering=(0.5, 0.5))
        elif resize == "stretch":
            if im.size != (w, h):
                im = im.resize((w, h), Image.Resampling.BILINEAR)
        elif im.size != (w, h):
            raise _WrongSize(f"is {im.size[0]} x {im.size[1]} (width x height), but resize='none' needs every "
                             f"image to be {w} x {h}")
        a = np.asarray(im, dtype=np.uint8)
    return a[None] if a.ndim == 2 else np.ascontiguousarray(a.transpose(2, 0, 1))


def image_folder(
    root: str | os.PathLike,
    *,
    size: int | tuple[int, int] = 32,
    resize: str = "crop",
    channels: int = 3,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    on_error: str = "raise",
    workers: int | None = None,
    progress: bool = True,
) -> ImageDataset:
    """A class-per-subfolder image tree (``root/<class>/<image>``), decoded once and cached.

    Classes are the subfolders of ``root`` in sorted order (hidden ones skipped); each class's images are
    found at any depth below its folder, in sorted order. Every image is decoded with Pillow, converted
    to RGB (``channels=3``) or grayscale (``channels=1``) and brought to ``size``. The result is saved as
    a uint8 array file ``<cache_dir>/<key>.npz``, where ``key`` hashes every file's bytes and path, the
    decoding parameters and Pillow's version; the next call with the same files reads that file instead of
    decoding (changing, adding or removing any image makes a new key).

    Parameters
    ----------
    size:
        Output size: an int (square) or ``(height, width)``.
    resize:
        ``"crop"`` (scale the shorter side to fit, then centre-crop: keeps the aspect ratio),
        ``"stretch"`` (resize to ``size`` ignoring the aspect ratio) or ``"none"`` (every image must
        already have that size). Resampling is bilinear (antialiased when shrinking).
    channels:
        3 (RGB) or 1 (grayscale).
    extensions:
        File endings to read (case-insensitive); other files are ignored.
    cache, cache_dir:
        Read/write the decoded array there (default ``$LRDECAY_CACHE/image_folder``, else
        ``~/.cache/lrdecay/image_folder``). ``cache=False`` always decodes and writes nothing.
    on_error:
        ``"raise"``: an image Pillow cannot decode raises ValueError naming it. ``"skip"``: such images
        are left out, with a warning naming them (classes keep their ids).
    workers:
        Decoding threads (Pillow releases the GIL while decoding); default ``min(8, CPU count)``. The
        result does not depend on it.
    progress:
        A tqdm bar while decoding (quiet when stderr is not a terminal).

    Raises
    ------
    DatasetNotFoundError
        When ``root`` is missing, has no class subfolders, or a class folder holds no image.
    ValueError
        For an undecodable image (with ``on_error="raise"``) or a bad argument.
    """
    if not isinstance(resize, str) or resize not in ("crop", "stretch", "none"):
        raise ValueError(f"resize must be 'crop', 'stretch' or 'none', got {resize!r}")
    if isinstance(channels, bool) or channels not in (1, 3):
        raise ValueError(f"channels must be 3 (RGB) or 1 (grayscale), got {channels!r}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if isinstance(extensions, str) or not extensions or not all(isinstance(e, str) and e for e in extensions):
        raise TypeError(f"extensions must be a non-empty list of file endings like '.png', got {extensions!r}")
    exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
    hw = _check_size(size)
    if workers is not None:
        workers = check_int("workers", workers, 1, 1024)
    root = _check_root(root, "a class-per-subfolder image tree (root/<class>/<image>)")
    classes, files, labels = _scan_folder(root, exts)
    params = {"size": hw, "resize": resize, "channels": channels, "on_error": on_error}

    cache_path = None
    if cache:
        key = _content_key(root, files, labels, params)
        folder = os.fspath(cache_dir) if cache_dir is not None else _default_cache_dir()
        cache_path = os.path.join(folder, f"{key}.npz")
        hit = _read_folder_cache(cache_path, len(classes), hw, channels)
        if hit is not None:
            x, y, kept = hit
            return _folder_dataset(x, y, classes, kept, root)

    mode = "RGB" if channels == 3 else "L"
    n = len(files)
    x = np.empty((n, channels, *hw), dtype=np.uint8)
    ok = np.ones(n, dtype=bool)
    errors: list[str] = []

    def work(i: int) -> None:
        path = os.path.join(root, files[i])
        try:
            x[i] = _decode(path, hw, resize, mode)
        except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError...
            if on_error == "raise" or isinstance(exc, _WrongSize):  # a wrong size is a setting, not damage
                raise ValueError(f"image_folder: cannot use {path}: {type(exc).__name__}: {exc}") from None
            ok[i] = False
            errors.append(f"{files[i]} ({type(exc).__name__}: {exc})")

    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    n_workers = workers or min(8, os.cpu_count() or 1)
    with tqdm(total=n, desc="decode images", unit="img", disable=None if progress else True) as bar:
        if n_workers == 1:
            for i in range(n):
                work(i)
                bar.update(1)
        else:
            with ThreadPoolExecutor(n_workers) as pool:
                for _ in pool.map(work, range(n)):
                    bar.update(1)
    if errors:
        errors.sort()
        warnings.warn(f"image_folder: skipped {len(errors)} image(s) Pillow could not decode: "
                      + "; ".join(errors[:5]) + (" ..." if len(errors) > 5 else ""), stacklevel=2)
        if not ok.any():
            raise ValueError(f"image_folder: no image in {root} could be decoded")
        x = np.ascontiguousarray(x[ok])
    y = np.asarray(labels, dtype=np.int64)[ok]
    kept = [f for f, keep in zip(files, ok) if keep]
    if cache_path is not None:
        _write_folder_cache(cache_path, x, y, classes, kept)
    return _folder_dataset(x, y, classes, kept, root)


def _folder_dataset(x, y, classes, files, root) -> ImageDataset:
    return ImageDataset(x=x, y=y, class_names=tuple(classes), name=f"folder:{root}", split="all",
                        default_augment="crop+flip", files=tuple(files))


def _write_folder_cache(path: str, x, y, classes, files) -> None:
    from lrdecay._atomic import atomic_write

    try:
        with atomic_write(path) as f:
            np.savez(f, x=x, y=y, classes=np.array(classes, dtype=str), files=np.array(files, dtype=str))
    except OSError as exc:  # a read-only cache folder costs a decode next time, not the run
        warnings.warn(f"image_folder: could not write the cache {path}: {exc}", stacklevel=3)


def _read_folder_cache(path: str, n_classes: int, hw, channels: int):
    """(x, y, files) from a cache file, or None when there is none or it is unusable (then rebuilt)."""
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            x, y, files = z["x"], z["y"], [str(s) for s in z["files"]]
            classes = [str(s) for s in z["classes"]]
        if (x.dtype != np.uint8 or x.shape[1:] != (channels, *hw) or y.shape != (x.shape[0],)
                or len(files) != x.shape[0] or len(classes) != n_classes
                or (y.size and (y.min() < 0 or y.max() >= n_classes))):
            raise ValueError("unexpected shapes")
    except Exception as exc:
        warnings.warn(f"image_folder: ignoring the damaged cache file {path} ({exc}); decoding again",
                      stacklevel=3)
        return None
    return np.ascontiguousarray(x), y.astype(np.int64), files


# ====================================================================== digits
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


# ====================================================================== by name
def load_images(name: str, root: str | os.PathLike | None = None, split: str = "train", **kwargs) -> ImageDataset | None:
    """A dataset of :data:`IMAGE_DATASETS` by name: what ``TrainConfig.data`` and ``lrdecay train --data``
    use.

    ``"cifar10"``, ``"cifar100"``: ``root`` as for :func:`cifar10`. ``"digits"``: ``root`` must be None.
    ``"mnist"``, ``"fashion-mnist"``, ``"kmnist"``: IDX files, ``root`` optional (see
    :func:`lrdecay.idx.mnist_family`).
    ``"folder"``: ``root/train`` and ``root/test`` (or ``root/val``) when they exist, else ``root`` is the
    training set and there is no test split (returns None for ``split="test"``); ``kwargs`` go to
    :func:`image_folder`.
    """
    if not isinstance(name, str) or name not in IMAGE_DATASETS:
        raise ValueError(f"data must be one of {list(IMAGE_DATASETS)}, got {name!r}")
    split = _check_split(split)
    if name == "digits":
        if root is not None:
            raise ValueError("data='digits' ships with scikit-learn: it takes no data_dir")
        return digits(split)
    if name in IDX_DATASETS:  # without root: $LRDECAY_DATA, then Debian's folder
        from lrdecay.idx import mnist_family

        return mnist_family(name, root, split)
    if root is None:
        raise ValueError(f"data={name!r} needs data_dir (--data-dir): the folder holding it; nothing is downloaded")
    if name == "cifar10":
        return cifar10(root, split)
    if name == "cifar100":
        return cifar100(root, split, **kwargs)
    base = _check_root(root, "an image tree: root/<class>/<image>, or root/train/<class>/... and root/test/<class>/...")
    parts = {s: os.path.join(base, s) for s in ("train", "test", "val")}
    if not os.path.isdir(parts["train"]):
        return image_folder(base, **kwargs) if split == "train" else None
    if split == "train":
        return image_folder(parts["train"], **kwargs)
    for s in ("test", "val"):
        if os.path.isdir(parts[s]):
            test = image_folder(parts[s], **kwargs)
            train_classes = _class_folders(parts["train"])
            if list(test.class_names) != train_classes:
                raise ValueError(
                    f"{parts[s]} has classes {list(test.class_names)} but {parts['train']} has "
                    f"{train_classes}: the test tree needs the same class folders"
                )
            return test
    return None
