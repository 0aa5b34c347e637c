"""Real image datasets from local files: moved to :mod:`lrdecay.data` (one module per format); this module
re-exports their public names so ``from lrdecay.images import ...`` keeps working."""

from lrdecay.data.cifar import cifar10, cifar100, write_cifar
from lrdecay.data.folder import IMAGE_EXTENSIONS, image_folder
from lrdecay.data.image_dataset import DatasetNotFoundError, ImageDataset, channel_stats
from lrdecay.data.load import IMAGE_DATASETS, load_images
from lrdecay.data.sklearn_digits import digits

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
