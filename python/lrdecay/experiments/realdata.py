"""The experiments on real images: which data a reproduction runs on, what is in it, and the checks made
before anything is trained.

A reproduction runs either on the synthetic pattern datasets (``data=None``, data kind ``"patterns"``) or
on one of :data:`lrdecay.images.IMAGE_DATASETS` (data kind ``"images"``). An experiment lists the kinds it
applies to (:attr:`~lrdecay.experiments.runner.Experiment.applies_to`); on another kind the report says it
does not apply and why.

Everything here runs in the main process before training: a missing folder, a subset larger than the
data or a missing test split is an error naming the setting, raised before a run starts or a file is
written. What a data set holds (:func:`info`) is read once per process and cached (the summary only, not
the pixels).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

__all__ = [
    "DATA_KINDS",
    "ImageInfo",
    "kind",
    "check_data_args",
    "info",
    "check_configs",
    "other_cifar",
    "class_split",
    "clear_cache",
    "TITLES",
]

DATA_KINDS = ("patterns", "images")
TITLES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "digits": "scikit-learn's digits", "folder": "an image folder",
          "mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "kmnist": "Kuzushiji-MNIST"}


def kind(data: str | None) -> str:
    """``"patterns"`` for the synthetic datasets (``data=None``), ``"images"`` for real images."""
    return "patterns" if data is None else "images"


def check_data_args(data: str | None, data_dir: str | os.PathLike | None) -> tuple[str | None, str | None]:
    """Validate a reproduction's ``data`` / ``data_dir`` pair; returns them with ``data_dir`` absolute
    (so that ``~/data`` and ``/home/me/data`` name the same runs)."""
    from lrdecay.data.load import IMAGE_DATASETS

    if data is not None and (not isinstance(data, str) or data not in IMAGE_DATASETS):
        raise ValueError(f"data must be None (the synthetic pattern datasets) or one of {list(IMAGE_DATASETS)}, "
                         f"got {data!r}")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir must be a path, got {type(data_dir).__name__}")
    if data is None and data_dir is not None:
        raise ValueError("data_dir (--data-dir) goes with data (--data cifar10|cifar100|folder); the pattern "
                         "datasets are generated")
    if data == "digits" and data_dir is not None:
        raise ValueError("data='digits' ships with scikit-learn: it takes no data_dir (--data-dir)")
    if data in ("cifar10", "cifar100", "folder") and data_dir is None:
        raise ValueError(f"data={data!r} needs data_dir (--data-dir): the folder holding it; nothing is downloaded")
    if data_dir is not None:
        data_dir = os.path.abspath(os.path.expanduser(os.fspath(data_dir)))
    return data, data_dir


@dataclass(frozen=True)
class ImageInfo:
    """What a real image data set holds (counts per class, not the pixels)."""

    data: str
    data_dir: str | None
    class_names: tuple[str, ...]
    train_per_class: tuple[int, ...]
    test_per_class: tuple[int, ...] | None  # None: no test split
    image_shape: tuple[int, int, int]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_train(self) -> int:
        return sum(self.train_per_class)

    @property
    def n_test(self) -> int | None:
        return None if self.test_per_class is None else sum(self.test_per_class)

    def n_train_of(self, classes: Iterable[int] | None) -> int:
        """Training images of ``classes`` (None: all)."""
        return self.n_train if classes is None else sum(self.train_per_class[c] for c in classes)

    def describe(self) -> str:
        """E.g. ``CIFAR-10 (/data/cifar-10-batches-py): 50,000 training / 10,000 test images 3×32×32, 10 classes``."""
        where = f" in {self.data_dir}" if self.data_dir else ""
        test = "no test split" if self.n_test is None else f"{self.n_test:,} test images"
        c, h, w = self.image_shape
        return (f"{TITLES[self.data]}{where}: {self.n_train:,} training / {test}, {c}×{h}×{w}, "
                f"{self.n_classes} classes")


@functools.lru_cache(maxsize=8)
def _info(data: str, data_dir: str | None, image_size: int) -> ImageInfo:
    from lrdecay.data.load import load_images

    kwargs: dict[str, Any] = {"size": image_size} if data == "folder" else {}
    train = load_images(data, data_dir, "train", **kwargs)
    test = load_images(data, data_dir, "test", **kwargs)
    per_class = lambda ds: tuple(int(v) for v in np.bincount(ds.y, minlength=ds.n_classes))  # noqa: E731
    return ImageInfo(data=data, data_dir=data_dir, class_names=tuple(train.class_names),
                     train_per_class=per_class(train), test_per_class=None if test is None else per_class(test),
                     image_shape=train.image_shape)


def info(data: str, data_dir: str | None = None, image_size: int = 32) -> ImageInfo:
    """What ``data`` in ``data_dir`` holds (read once per process; a folder tree is decoded into its cache
    the first time, so that training processes read the cache instead of decoding it each).

    Raises :class:`lrdecay.images.DatasetNotFoundError` (naming the expected layout and where it looked)
    when the data is not there, ValueError when a file is damaged.
    """
    data, data_dir = check_data_args(data, data_dir)
    return _info(data, data_dir, int(image_size))


def clear_cache() -> None:
    """Forget what :func:`info` read (the files may have changed)."""
    _info.cache_clear()


def check_configs(configs: Iterable[Any]) -> None:
    """Check the image runs among ``configs`` (TrainConfigs) against their data before any is trained:
    the data is there, ``classes`` are among its classes, ``train_subset`` fits in the (selected) training
    images and a batch in the run's training set, and a test split exists when the run evaluates one (every
    experiment compares test accuracy)."""
    for cfg in configs:
        if cfg.data is None:
            continue
        meta = info(cfg.data, cfg.data_dir, cfg.image_size)
        if cfg.classes is not None and max(cfg.classes) >= meta.n_classes:
            raise ValueError(f"classes must be indices in [0, {meta.n_classes}) (the classes of {meta.describe()}), "
                             f"got {cfg.classes}")
        available = meta.n_train_of(cfg.classes)
        if cfg.train_subset is not None and cfg.train_subset > available:
            of = "" if cfg.classes is None else f" of classes {cfg.classes}"
            raise ValueError(f"train_subset={cfg.train_subset} exceeds the {available:,} training images{of} in "
                             f"{meta.describe()}")
        n = available if cfg.train_subset is None else cfg.train_subset
        if cfg.batch_size is not None and cfg.batch_size > n:
            raise ValueError(f"batch_size={cfg.batch_size} exceeds the run's {n:,} training images "
                             f"({meta.describe()}); use a smaller batch or more data")
        if cfg.n_test > 0 and meta.n_test is None:
            raise ValueError(f"the experiments compare test accuracy, but {meta.describe()}: give the folder a "
                             f"test split (DIR/train/<class>/... and DIR/test/<class>/... or DIR/val/...)")


def other_cifar(data: str, data_dir: str | None) -> str | None:
    """The other CIFAR (``cifar100`` for ``cifar10`` and vice versa) when ``data_dir`` holds both of its
    splits, else None (also for digits and folders). A damaged file of it is an error, not a fallback."""
    from lrdecay.data.image_dataset import DatasetNotFoundError

    other = {"cifar10": "cifar100", "cifar100": "cifar10"}.get(data)
    if other is None:
        return None
    try:
        info(other, data_dir)
    except DatasetNotFoundError:
        return None
    return other


def class_split(n_classes: int) -> tuple[list[int], list[int]]:
    """A held-out class split: the first ``ceil(K / 2)`` class ids for the source, the rest for the target."""
    h = (n_classes + 1) // 2
    return list(range(h)), list(range(h, n_classes))

