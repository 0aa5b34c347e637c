"""CIFAR-10/100 from their python batch folders (pickles read with an arrays-only unpickler), and
:func:`write_cifar`, which writes that layout."""

from __future__ import annotations

import importlib
import os
import pickle
import warnings
from typing import Any, Sequence

import numpy as np

from lrdecay.data.image_dataset import DatasetNotFoundError, ImageDataset, _check_root, _check_split

__all__ = ["cifar10", "cifar100", "write_cifar"]

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

# What a CIFAR pickle may construct, and how. numpy pickles an array as ``_reconstruct(ndarray, (0,),
# b'b')`` (an empty array) followed by BUILD with the real shape, dtype and bytes; numpy's BUILD refuses
# bytes that do not match the shape, so every array is bounded by what the file holds. Anything that
# could allocate from a number alone is refused: ``numpy.ndarray`` is a token that only ``_reconstruct``
# accepts (never callable), ``_reconstruct`` only makes the empty array, and dtypes are plain numbers.
# Anything else is refused too: unpickling runs code otherwise.
_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
_SCALAR = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}


class _NdarrayToken:
    """Stands for ``numpy.ndarray`` in a CIFAR pickle: only :func:`_empty_array` takes it; calling it (an
    ``ndarray(shape)`` of any size from a few bytes) is refused."""

    def __call__(self, *args, **kwargs):
        raise pickle.UnpicklingError("refusing numpy.ndarray(...) called directly: a CIFAR batch rebuilds "
                                     "arrays from their bytes only")


_NDARRAY = _NdarrayToken()


def _numpy_attr(module: str, name: str):
    if module.startswith("numpy.core.") and hasattr(np, "_core"):
        module = "numpy._core." + module[len("numpy.core."):]  # numpy 2 moved it; avoid the shim's warning
    return getattr(importlib.import_module(module), name)


def _checked_dtype(spec) -> np.dtype:
    """A plain number dtype named by a short string (no object, structured or sub-array dtypes, which
    would let a pickle build nested objects or size an array by a number)."""
    if isinstance(spec, bytes):
        spec = spec.decode("latin1")
    dt = None
    if isinstance(spec, str) and len(spec) <= 4:
        try:
            dt = np.dtype(spec)
        except TypeError:
            dt = None
    if dt is None or dt.kind not in "biuf" or dt.fields is not None or dt.subdtype is not None:
        raise pickle.UnpicklingError(f"refusing numpy dtype {spec!r}: a CIFAR batch holds only number arrays")
    return dt


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _RECONSTRUCT:
            real = _numpy_attr(module, name)

            def _empty_array(subtype, shape, typecode):
                if subtype is not _NDARRAY or tuple(shape) != (0,) or typecode not in (b"b", "b"):
                    raise pickle.UnpicklingError("refusing _reconstruct of anything but the empty ndarray that "
                                                 "numpy's own pickles start from")
                return real(np.ndarray, (0,), b"b")

            return _empty_array
        if (module, name) in _SCALAR:
            real = _numpy_attr(module, name)

            def _scalar(dtype, data=None):
                _checked_dtype(dtype.str[1:] if isinstance(dtype, np.dtype) else dtype)
                return real(dtype, data) if data is not None else real(dtype)

            return _scalar
        if (module, name) == ("numpy", "ndarray"):
            return _NDARRAY
        if (module, name) == ("numpy", "dtype"):
            return lambda spec, align=False, copy=True: np.dtype(_checked_dtype(spec), bool(align), bool(copy))
        if (module, name) == ("_codecs", "encode"):  # str -> bytes: bounded by the pickle's own text
            return _codecs_encode
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR batch holds only arrays, "
                                     f"lists and strings")


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    import codecs

    if not isinstance(obj, str):
        raise pickle.UnpicklingError("refusing _codecs.encode of anything but a str")
    return codecs.encode(obj, encoding, errors)


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
        y = _labels(batch[label_key], data.shape[0], f"{path}: {label_key!r}")
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


def _labels(value, n: int, what: str) -> np.ndarray:
    """``n`` integer labels from a flat list or a 1-D integer array, checked before any conversion: a
    pickle can share one list many times over (a few bytes), which ``np.asarray`` would expand."""
    need = f"{what} must hold {n} integer labels (one per row of 'data')"
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iu" or value.shape != (n,):
            raise ValueError(f"{need}, got {value.dtype} {value.shape}")
        return value
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{need}, got {type(value).__name__}")
    if len(value) != n:
        raise ValueError(f"{need}, got {len(value)}")
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        bad = next(v for v in value if not isinstance(v, (int, np.integer)) or isinstance(v, bool))
        raise ValueError(f"{need}, got an element of type {type(bad).__name__}")
    lo, hi = min(value, default=0), max(value, default=0)
    if lo < np.iinfo(np.int64).min or hi > np.iinfo(np.int64).max:
        raise ValueError(f"{need}, found {lo if lo < 0 else hi}")
    return np.asarray(value, dtype=np.int64)


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
