"""Real images in the trainer: the datasets a config names, and the device-side pipeline that turns uint8
batches into the model's input (augmentation seeded per epoch, normalization with the training set's
statistics)."""

from __future__ import annotations

from typing import Any

import torch

from lrdecay.data.augment import ImagePipeline
from lrdecay.trainer.config import TrainConfig
from lrdecay.trainer.inputs import DeviceData

__all__ = ["build_image_datasets", "make_pipeline", "check_image_sets"]


def build_image_datasets(cfg: TrainConfig) -> tuple[Any, dict[str, Any]]:
    """The training set and ``{"test": ...}`` (when the data has a test split and ``n_test > 0``) of
    ``cfg.data``: ``classes`` keeps those classes (both splits, relabelled in that order), a
    ``train_subset`` is a class-balanced subset (seeded by ``cfg.seed``), label noise flips training labels
    symmetrically (seeded by ``cfg.seed``)."""
    from lrdecay.data.load import load_images

    kwargs: dict[str, Any] = {}
    if cfg.data == "folder":
        kwargs = {"size": cfg.image_size, "progress": cfg.progress}
    train = _select(load_images(cfg.data, cfg.data_dir, "train", **kwargs), cfg.classes)
    if cfg.train_subset is not None:
        if cfg.train_subset > len(train):
            raise ValueError(f"train_subset must be in [1, {len(train)}] (the training images of {cfg.data!r}), "
                             f"got {cfg.train_subset}")
        if cfg.train_subset < len(train):
            train = train.balanced_subset(cfg.train_subset, seed=cfg.seed)
    if cfg.label_noise is not None:
        train = train.with_label_noise(cfg.label_noise, mode="symmetric", seed=cfg.seed)
    tests: dict[str, Any] = {}
    if cfg.n_test > 0:
        test = load_images(cfg.data, cfg.data_dir, "test", **kwargs)
        if test is not None:
            tests["test"] = _select(test, cfg.classes)
    return train, tests


def _select(ds, classes):
    """``ds`` restricted to ``classes`` (relabelled in that order); a class index beyond the data's classes
    is a ValueError naming the field."""
    if classes is None:
        return ds
    bad = [c for c in classes if c >= ds.n_classes]
    if bad:
        raise ValueError(f"classes must be indices in [0, {ds.n_classes}) (the classes of {ds.name!r}), got {bad}")
    return ds.select_classes(list(classes))


def check_image_sets(data: DeviceData, tests: dict[str, DeviceData]) -> None:
    """Test sets of an image training set must be images of the same shape (and vice versa)."""
    for name, t in tests.items():
        if t.is_image != data.is_image:
            kinds = {True: "uint8 images", False: "float features"}
            raise ValueError(f"test_sets[{name!r}] holds {kinds[t.is_image]} but the training set holds "
                             f"{kinds[data.is_image]}")
        if data.is_image and tuple(t.x.shape[1:]) != tuple(data.x.shape[1:]):
            raise ValueError(f"test_sets[{name!r}] images are {tuple(t.x.shape[1:])}, the training images "
                             f"{tuple(data.x.shape[1:])}")


def make_pipeline(cfg: TrainConfig, data: DeviceData, device: torch.device) -> ImagePipeline | None:
    """The image pipeline for uint8 training data (None for float features, where ``augment`` must be
    ``auto`` or ``none``)."""
    if not data.is_image:
        if cfg.augment not in ("auto", "none"):
            raise ValueError(f"augment={cfg.augment!r} needs uint8 image data (n, C, H, W); this dataset holds "
                             f"float features")
        return None
    augment = data.default_augment if cfg.augment == "auto" else cfg.augment
    return ImagePipeline(data.mean, data.std, augment=augment, padding=cfg.crop_padding,
                         channels_last=cfg.channels_last, device=device)
