"""The data package's older module names (``lrdecay.images``, ``lrdecay.noise``, ``lrdecay.augment``) and
``lrdecay.data`` itself export the very objects of the modules that define them now."""

from __future__ import annotations

import importlib

import pytest

import lrdecay.data as data

SHIMS = ["lrdecay.images", "lrdecay.noise", "lrdecay.augment"]


@pytest.mark.parametrize("shim", SHIMS + ["lrdecay.data"])
def test_every_exported_name_is_the_defining_module_s_object(shim):
    module = importlib.import_module(shim)
    assert module.__all__, shim
    for name in module.__all__:
        value = getattr(module, name)
        home = getattr(value, "__module__", None)
        if home is None or not home.startswith("lrdecay.data."):  # constants: found by value in a data module
            homes = [m for m in ("patterns", "noise", "augment", "image_dataset", "cifar", "folder", "load",
                                 "sklearn_digits", "limits", "idx")
                     if getattr(importlib.import_module(f"lrdecay.data.{m}"), name, None) is value]
            assert homes, f"{shim}.{name} is defined in no lrdecay.data module"
        else:
            assert getattr(importlib.import_module(home), name) is value, f"{shim}.{name}"


def test_readme_names_import_from_where_the_readme_says():
    from lrdecay.augment import AUGMENTS, ImagePipeline  # noqa: F401
    from lrdecay.data import DatasetNotFoundError, cifar10, cifar100, digits, image_folder, pattern_dataset  # noqa: F401
    from lrdecay.noise import corrupt_labels  # noqa: F401

    assert issubclass(DatasetNotFoundError, FileNotFoundError)


def test_load_images_names_come_from_one_registry():
    from lrdecay.data.load import IMAGE_DATASETS, SOURCES

    assert IMAGE_DATASETS == tuple(SOURCES) and {"cifar10", "cifar100", "digits", "folder"} <= set(IMAGE_DATASETS)
    assert data.load_images is importlib.import_module("lrdecay.data.load").load_images
