"""The MNIST family from local IDX files: MNIST, Fashion-MNIST and Kuzushiji-MNIST (KMNIST).

An IDX file is a 4-byte magic (two zero bytes, a type code, the rank), ``rank`` big-endian uint32
dimensions, then the values in row-major order, big-endian. The three datasets ship the same four files,
gzipped or not::

    train-images-idx3-ubyte[.gz]   uint8 (n, 28, 28)      t10k-images-idx3-ubyte[.gz]
    train-labels-idx1-ubyte[.gz]   uint8 (n,), 0..9       t10k-labels-idx1-ubyte[.gz]

:func:`mnist_family` returns the same :class:`~lrdecay.data.image_dataset.ImageDataset` as the CIFAR readers
(uint8 ``(n, 1, 28, 28)``, int64 labels, class names). Nothing is downloaded. Without a folder it looks in
``$LRDECAY_DATA`` (and its subfolders named like the dataset) and where Debian's ``dataset-fashion-mnist``
package installs (``/usr/share/datasets/fashion-mnist``); when the files are nowhere, the error lists
every place it looked. A damaged file (truncated, wrong magic, a dimension that disagrees, a label out of
range, image and label counts that differ) raises ``ValueError`` naming the file and the problem; no
partial dataset is ever returned.

>>> from lrdecay.data.idx import mnist_family
>>> train = mnist_family("fashion-mnist", split="train")      # found in /usr/share/datasets/fashion-mnist
>>> train.x.shape, train.class_names[:2]
((60000, 1, 28, 28), ('T-shirt/top', 'Trouser'))
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from typing import BinaryIO

import numpy as np

__all__ = [
    "IDX_DATASETS",
    "IDX_CLASS_NAMES",
    "read_idx",
    "write_idx",
    "find_idx_folder",
    "mnist_family",
    "write_mnist_family",
    "search_places",
    "DEBIAN_DATA_ROOT",
    "MAX_IDX_BYTES",
]

#: Names :func:`mnist_family` reads (and ``--data`` accepts).
IDX_DATASETS = ("mnist", "fashion-mnist", "kmnist")

#: Class names per dataset, in label order (KMNIST's hiragana romanized, as its authors' table lists them).
IDX_CLASS_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                      "Bag", "Ankle boot"),
    "kmnist": ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
}

#: Where Debian's ``dataset-*`` packages install (``dataset-fashion-mnist`` → ``<this>/fashion-mnist``).
DEBIAN_DATA_ROOT = "/usr/share/datasets"

# Subfolder names a dataset's files are commonly kept under (the name itself, torchvision's raw folders).
_ALIASES = {
    "mnist": ("mnist", "MNIST", "MNIST/raw"),
    "fashion-mnist": ("fashion-mnist", "fashion_mnist", "FashionMNIST", "FashionMNIST/raw"),
    "kmnist": ("kmnist", "KMNIST", "KMNIST/raw"),
}
_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "kmnist": "Kuzushiji-MNIST"}
_PREFIX = {"train": "train", "test": "t10k"}

# IDX type code -> numpy dtype (big-endian, as stored).
_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {np.dtype(v).newbyteorder("=").str: k for k, v in _TYPES.items()}
_CODES.update({np.dtype(v).newbyteorder("<").str: k for k, v in _TYPES.items()})
_CODES.update({np.dtype(v).newbyteorder(">").str: k for k, v in _TYPES.items()})

#: Largest payload read (bytes): well above the 47 MB of MNIST's training images, and a bound on what a
#: forged header can make the reader allocate.
MAX_IDX_BYTES = 1 << 32


def _open(path: str) -> BinaryIO:
    """The file's bytes, decompressed when it starts with the gzip magic (whatever its name says)."""
    f = open(path, "rb")
    head = f.read(2)
    f.seek(0)
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    return f


def _read_exact(f: BinaryIO, n: int, path: str, what: str) -> bytes:
    chunks, left = [], n
    while left:
        chunk = f.read(min(left, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    if left:
        raise ValueError(f"{path} is truncated: {what} needs {n:,} bytes, the file has {n - left:,}")
    return b"".join(chunks)


def read_idx(path: str | os.PathLike, *, dtype=None, rank: int | None = None) -> np.ndarray:
    """One IDX file (gzipped or not) as a native-endian numpy array of the shape its header gives.

    Args:
        path: the file.
        dtype: when given, the IDX type the file must hold (e.g. ``np.uint8``).
        rank: when given, the number of dimensions it must have.

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file, when the magic is wrong, the type or rank is not the expected one,
            the data is shorter than the header says (or the gzip stream is cut), or bytes follow the data.
    """
    path = os.fspath(path)
    try:
        f = _open(path)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    try:
        with f:
            magic = _read_exact(f, 4, path, "the 4-byte magic")
            if magic[0] or magic[1] or magic[2] not in _TYPES or magic[3] == 0:
                raise ValueError(
                    f"{path} is not an IDX file: its magic is {magic.hex()}, expected 0000TTRR with type code "
                    f"TT in {{{', '.join(f'{k:02x}' for k in _TYPES)}}} and rank RR >= 1"
                )
            code, ndim = magic[2], magic[3]
            kind = _TYPES[code]
            if dtype is not None and kind.newbyteorder("=") != np.dtype(dtype):
                raise ValueError(f"{path}: holds IDX type {code:#04x} ({kind.newbyteorder('=').name}), "
                                 f"expected {np.dtype(dtype).name}")
            if rank is not None and ndim != rank:
                raise ValueError(f"{path}: has rank {ndim}, expected {rank}")
            dims = tuple(int(d) for d in np.frombuffer(_read_exact(f, 4 * ndim, path, "the header"), dtype=">u4"))
            size = math.prod(dims) * kind.itemsize
            if size > MAX_IDX_BYTES:
                raise ValueError(f"{path}: header dimensions {dims} give {size:,} bytes, more than the "
                                 f"{MAX_IDX_BYTES:,} this reader accepts")
            body = _read_exact(f, size, path, f"data of shape {dims}")
            if f.read(1):
                raise ValueError(f"{path}: bytes follow the {size:,} bytes of data the header {dims} announces")
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(f"{path} is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    return np.frombuffer(body, dtype=kind).reshape(dims).astype(kind.newbyteorder("="))


def write_idx(path: str | os.PathLike, array) -> None:
    """Write ``array`` as an IDX file (gzipped when ``path`` ends in ``.gz``, with a zero timestamp so the
    same array gives the same bytes). Accepts uint8, int8, int16, int32, float32 and float64."""
    a = np.asarray(array)
    code = _CODES.get(a.dtype.str)
    if code is None or a.ndim < 1 or a.ndim > 255:
        raise ValueError(f"array must have an IDX type (uint8, int8, int16, int32, float32, float64) and "
                         f"1-255 dimensions, got {a.dtype} with {a.ndim}")
    if any(d >= 2**32 for d in a.shape):
        raise ValueError(f"array dimensions must be < 2**32, got {a.shape}")
    payload = (bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes()
               + np.ascontiguousarray(a, dtype=_TYPES[code]).tobytes())
    path = os.fspath(path)
    if path.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    with open(path, "wb") as f:
        f.write(payload)


def _file_names(split: str, part: str) -> tuple[str, ...]:
    """Accepted names of one file, preferred first (``-idx3-`` as published, ``.idx3-`` as some mirrors)."""
    rank = 3 if part == "images" else 1
    stem = _PREFIX[split] + f"-{part}"
    names = []
    for sep in ("-", "."):
        base = f"{stem}{sep}idx{rank}-ubyte"
        names += [base + ".gz", base]
    return tuple(names)


def _find_file(folder: str, split: str, part: str) -> str | None:
    for name in _file_names(split, part):
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            return p
    return None


def _check_name(name) -> str:
    if not isinstance(name, str) or name not in IDX_DATASETS:
        raise ValueError(f"name must be one of {list(IDX_DATASETS)}, got {name!r}")
    return name


def search_places(name: str, root: str | os.PathLike | None = None) -> list[str]:
    """The folders :func:`find_idx_folder` tries, in order: ``root`` and its subfolders named like the
    dataset when ``root`` is given; else the same under ``$LRDECAY_DATA`` (when set), then Debian's."""
    name = _check_name(name)
    if root is not None:
        bases = [os.path.abspath(os.path.expanduser(os.fspath(root)))]
    else:
        bases = []
        env = os.environ.get("LRDECAY_DATA")
        if env:
            bases.append(os.path.abspath(os.path.expanduser(env)))
        bases.append(os.path.join(DEBIAN_DATA_ROOT, name))
    places = []
    for base in bases:
        for cand in (base, *(os.path.join(base, a) for a in _ALIASES[name])):
            if cand not in places:
                places.append(cand)
    return places


def find_idx_folder(name: str, root: str | os.PathLike | None = None, split: str = "train") -> tuple[str, str]:
    """``(images file, labels file)`` of ``split`` of dataset ``name``: the first folder of
    :func:`search_places` that holds both.

    Raises:
        DatasetNotFoundError: listing every folder looked in and what each lacked.
    """
    from lrdecay.data.image_dataset import DatasetNotFoundError

    if split not in _PREFIX:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    looked = []
    for folder in search_places(name, root):
        if not os.path.isdir(folder):
            looked.append(f"  {folder}: no such folder")
            continue
        images, labels = _find_file(folder, split, "images"), _find_file(folder, split, "labels")
        if images and labels:
            return images, labels
        missing = [_file_names(split, p)[1] + "[.gz]" for p, f in (("images", images), ("labels", labels)) if not f]
        looked.append(f"  {folder}: no {' and no '.join(missing)}")
    if root is not None:
        where = "the given folder (--data-dir / data_dir)"
    else:
        where = "$LRDECAY_DATA" if os.environ.get("LRDECAY_DATA") else "$LRDECAY_DATA (not set), then Debian's folder"
    debian = " or `apt-get install dataset-fashion-mnist`" if name == "fashion-mnist" else ""
    raise DatasetNotFoundError(
        f"{_TITLES[name]} ({split}) not found: expected the IDX files {_file_names(split, 'images')[1]}[.gz] "
        f"and {_file_names(split, 'labels')[1]}[.gz] in one folder. Searched {where}; looked in:\n"
        + "\n".join(looked)
        + f"\nlrdecay never downloads: put the four files in a folder and pass it as --data-dir (data_dir), "
          f"or set LRDECAY_DATA to a folder holding them or a subfolder named {name}{debian}."
    )


def mnist_family(name: str, root: str | os.PathLike | None = None, split: str = "train"):
    """``split`` (``"train"``: 60,000 images; ``"test"``: 10,000) of ``name`` (one of :data:`IDX_DATASETS`)
    as an :class:`~lrdecay.data.image_dataset.ImageDataset`: uint8 ``(n, 1, H, W)``, int64 labels in ``0..9``.

    ``root`` is the folder holding the IDX files (or a parent with a subfolder named like the dataset);
    None searches as :func:`search_places` says. Augmentation defaults to none: a flipped digit or
    character is another shape, and 28 × 28 images leave no room for crops.
    """
    from lrdecay.data.image_dataset import ImageDataset

    name = _check_name(name)
    images_path, labels_path = find_idx_folder(name, root, split)
    x = read_idx(images_path, dtype=np.uint8, rank=3)
    y = read_idx(labels_path, dtype=np.uint8, rank=1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{images_path} holds {x.shape[0]:,} images but {labels_path} holds {y.shape[0]:,} "
                         f"labels; they must be the same set")
    if x.shape[0] == 0 or x.shape[1] == 0 or x.shape[2] == 0:
        raise ValueError(f"{images_path}: holds no pixels (shape {x.shape})")
    classes = IDX_CLASS_NAMES[name]
    if y.max() >= len(classes):
        bad = int(np.flatnonzero(y >= len(classes))[0])
        raise ValueError(f"{labels_path}: label {int(y[bad])} at index {bad} is out of range; {_TITLES[name]} "
                         f"labels are 0..{len(classes) - 1}")
    return ImageDataset(x=np.ascontiguousarray(x[:, None]), y=y.astype(np.int64), class_names=classes,
                        name=name, split=split, default_augment="none")


def write_mnist_family(folder: str | os.PathLike, train: tuple, test: tuple, *, gz: bool = True) -> str:
    """Write ``(images, labels)`` pairs (uint8 ``(n, H, W)`` and ``(n,)``) as the four IDX files of the
    MNIST layout in ``folder`` (created): a stand-in dataset for tests and benchmarks. Returns the folder."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    ext = ".gz" if gz else ""
    for split, (x, y) in (("train", train), ("test", test)):
        write_idx(os.path.join(folder, _file_names(split, "images")[1] + ext), np.asarray(x, dtype=np.uint8))
        write_idx(os.path.join(folder, _file_names(split, "labels")[1] + ext), np.asarray(y, dtype=np.uint8))
    return folder
