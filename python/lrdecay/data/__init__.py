"""Every dataset lrdecay trains on: seeded synthetic pattern sets (generated in Rust), real images from local
files, label noise and the device-side image augmentation.

Modules: :mod:`~lrdecay.data.patterns` (:func:`pattern_dataset`), :mod:`~lrdecay.data.noise`
(:func:`~lrdecay.data.noise.corrupt_labels`), :mod:`~lrdecay.data.image_dataset` (:class:`ImageDataset`,
the type every image reader returns), one reader per format (:mod:`~lrdecay.data.cifar`,
:mod:`~lrdecay.data.folder`, :mod:`~lrdecay.data.sklearn_digits`, :mod:`~lrdecay.data.idx` for the MNIST
family), :mod:`~lrdecay.data.load`
(:func:`load_images`: readers by name) and :mod:`~lrdecay.data.augment` (the torch input pipeline;
imported only on use, so ``import lrdecay.data`` needs no torch).

>>> from lrdecay.data import pattern_dataset
>>> ds = pattern_dataset(1000, preset="ps10", seed=0, label_noise=0.2)
>>> ds.x.shape, ds.group_names
((1000, 128), ('easy', 'complex', 'noise'))
"""

from lrdecay.data.cifar import cifar10, cifar100
from lrdecay.data.folder import image_folder
from lrdecay.data.idx import mnist_family
from lrdecay.data.image_dataset import DatasetNotFoundError, ImageDataset
from lrdecay.data.limits import MAX_CLASSES, MAX_GROUPS
from lrdecay.data.load import load_images
from lrdecay.data.patterns import LIMITS, MAX_N, PRESETS, PatternDataset, _fill, _native_spec, pattern_dataset  # noqa: F401
from lrdecay.data.sklearn_digits import digits

__all__ = ["pattern_dataset", "PatternDataset", "PRESETS", "MAX_N", "LIMITS"]
__all__ += ["MAX_CLASSES", "MAX_GROUPS"]
__all__ += ["cifar10", "cifar100", "image_folder", "digits", "mnist_family", "load_images", "ImageDataset", "DatasetNotFoundError"]
