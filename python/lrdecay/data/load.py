"""Real image datasets by name (:func:`load_images`): what ``TrainConfig.data`` and ``lrdecay train --data``
accept.

Each name maps to one :class:`ImageSource` in :data:`SOURCES`; :data:`IMAGE_DATASETS` is derived from it,
so a new format is one reader module plus one entry here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from lrdecay.data.cifar import cifar10, cifar100
from lrdecay.data.folder import _class_folders, image_folder
from lrdecay.data.image_dataset import ImageDataset, _check_root, _check_split
from lrdecay.data.sklearn_digits import digits
from lrdecay.data.idx import IDX_DATASETS

__all__ = ["load_images", "IMAGE_DATASETS", "ImageSource", "SOURCES"]


@dataclass(frozen=True)
class ImageSource:
    """How :func:`load_images` reads one named dataset.

    ``read(root, split, **kwargs)`` returns the split (or None when the source has no such split).
    ``root`` says what ``data_dir`` may be: ``"required"`` (the folder holding the files), ``"optional"``
    (None: the reader looks in its default places) or ``"none"`` (the data ships with a package; passing
    a folder is an error).
    """

    read: Callable[..., ImageDataset | None]
    root: str = "required"


def _read_digits(root, split: str, **kwargs) -> ImageDataset:
    return digits(split)


def _read_cifar10(root, split: str, **kwargs) -> ImageDataset:
    return cifar10(root, split)


def _read_cifar100(root, split: str, **kwargs) -> ImageDataset:
    return cifar100(root, split, **kwargs)


def _read_idx(name: str) -> Callable[..., ImageDataset]:
    def read(root, split: str, **kwargs) -> ImageDataset:
        from lrdecay.data.idx import mnist_family

        return mnist_family(name, root, split)

    return read


def _read_folder(root, split: str, **kwargs) -> ImageDataset | None:
    """``root/train`` and ``root/test`` (or ``root/val``) when they exist, else ``root`` is the training
    set and there is no test split."""
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


#: name -> :class:`ImageSource`, in the order the CLI lists them.
SOURCES: dict[str, ImageSource] = {
    "cifar10": ImageSource(_read_cifar10),
    "cifar100": ImageSource(_read_cifar100),
    "digits": ImageSource(_read_digits, root="none"),
    "folder": ImageSource(_read_folder),
    # the MNIST family from IDX files; without root: $LRDECAY_DATA, then Debian's folder
    **{name: ImageSource(_read_idx(name), root="optional") for name in IDX_DATASETS},
}

#: Names accepted by :func:`load_images` (and ``TrainConfig.data`` / ``lrdecay train --data``).
IMAGE_DATASETS = tuple(SOURCES)


def load_images(name: str, root: str | os.PathLike | None = None, split: str = "train", **kwargs) -> ImageDataset | None:
    """A dataset of :data:`IMAGE_DATASETS` by name: what ``TrainConfig.data`` and ``lrdecay train --data``
    use.

    ``"cifar10"``, ``"cifar100"``: ``root`` as for :func:`cifar10`. ``"digits"``: ``root`` must be None.
    ``"mnist"``, ``"fashion-mnist"``, ``"kmnist"``: IDX files, ``root`` optional (see
    :func:`lrdecay.data.idx.mnist_family`).
    ``"folder"``: ``root/train`` and ``root/test`` (or ``root/val``) when they exist, else ``root`` is the
    training set and there is no test split (returns None for ``split="test"``); ``kwargs`` go to
    :func:`image_folder`.
    """
    if not isinstance(name, str) or name not in SOURCES:
        raise ValueError(f"data must be one of {list(IMAGE_DATASETS)}, got {name!r}")
    split = _check_split(split)
    source = SOURCES[name]
    if source.root == "none":
        if root is not None:
            raise ValueError(f"data={name!r} ships with scikit-learn: it takes no data_dir")
        return source.read(None, split, **kwargs)
    if root is None and source.root == "required":
        raise ValueError(f"data={name!r} needs data_dir (--data-dir): the folder holding it; nothing is downloaded")
    return source.read(root, split, **kwargs)
