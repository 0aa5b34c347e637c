"""Test helpers: CIFAR-format folders (also as Python 2 wrote them) and image trees, made on the spot."""

from __future__ import annotations

import os
import pickle
import struct

import numpy as np

from lrdecay.images import write_cifar

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def random_cifar(n: int, n_classes: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, n_classes, size=n).astype(np.int64)
    return x, y


def make_cifar10(root, n_train=250, n_test=60, seed=0, flavour="py3"):
    """Write a CIFAR-10 folder under ``root``; returns (folder, (x_train, y_train), (x_test, y_test)).

    flavour: ``py3`` (pickle's default protocol), ``proto2`` (protocol 2 from Python 3: bytes through
    ``_codecs.encode``), ``py2`` (the byte layout of Python 2's cPickle, as in the official archive)."""
    train = random_cifar(n_train, 10, seed)
    test = random_cifar(n_test, 10, seed + 1)
    folder = write_cifar(root, "cifar10", train, test, CIFAR10_NAMES)
    if flavour != "py3":
        for fname in os.listdir(folder):
            path = os.path.join(folder, fname)
            with open(path, "rb") as f:
                obj = pickle.load(f)
            with open(path, "wb") as f:
                if flavour == "proto2":
                    pickle.dump(obj, f, protocol=2)
                else:
                    f.write(py2_pickle(obj))
    return folder, train, test


# ---------------------------------------------------------------- a Python 2 cPickle writer (protocol 2)
def py2_pickle(obj) -> bytes:
    """Serialize dicts, lists, str, int, bool, None and numpy arrays the way Python 2.7's cPickle with
    numpy 1.x did (str as 8-bit BINSTRING, arrays through numpy.core.multiarray._reconstruct)."""
    out = bytearray(b"\x80\x02")
    _emit(out, obj)
    out += b"."
    return bytes(out)


def _string(out: bytearray, s) -> None:
    b = s.encode("latin1") if isinstance(s, str) else bytes(s)
    out += (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<i", len(b))) + b


def _emit(out: bytearray, obj) -> None:
    if obj is None:
        out += b"N"
    elif isinstance(obj, bool):
        out += b"\x88" if obj else b"\x89"
    elif isinstance(obj, (int, np.integer)):
        v = int(obj)
        out += b"K" + bytes([v]) if 0 <= v < 256 else b"J" + struct.pack("<i", v)
    elif isinstance(obj, (str, bytes)):
        _string(out, obj)
    elif isinstance(obj, list):
        out += b"]("
        for v in obj:
            _emit(out, v)
        out += b"e"
    elif isinstance(obj, tuple):
        out += b"("
        for v in obj:
            _emit(out, v)
        out += b"t"
    elif isinstance(obj, dict):
        out += b"}("
        for k, v in obj.items():
            _emit(out, k)
            _emit(out, v)
        out += b"u"
    elif isinstance(obj, np.ndarray):
        assert obj.dtype == np.uint8
        out += b"cnumpy.core.multiarray\n_reconstruct\n"
        out += b"cnumpy\nndarray\n"
        _emit(out, (0,))
        _string(out, "b")
        out += b"\x87R"  # TUPLE3, REDUCE
        out += b"("  # state: (version, shape, dtype, fortran, raw bytes)
        _emit(out, 1)
        _emit(out, tuple(obj.shape))
        out += b"cnumpy\ndtype\n"
        _emit(out, ("u1", 0, 1))
        out += b"R"
        _emit(out, (3, "|", None, None, None, -1, -1, 0))
        out += b"b"  # BUILD the dtype
        _emit(out, False)
        _string(out, np.ascontiguousarray(obj).tobytes())
        out += b"tb"  # TUPLE, BUILD the array
    else:
        raise TypeError(type(obj))


# ---------------------------------------------------------------- image trees
def write_png(path, arr: np.ndarray) -> None:
    from PIL import Image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path)


def make_tree(root, classes=("cat", "dog", "eel"), per_class=(70, 65, 71), size=(12, 10), seed=0, nested=True):
    """Write RGB PNGs of exactly ``size`` (h, w) under root/<class>/ (some in a nested subfolder);
    returns {relative path: pixels (h, w, 3)} in the order image_folder reads them."""
    rng = np.random.default_rng(seed)
    written = {}
    for cls, n in zip(classes, per_class):
        for i in range(n):
            sub = "more" if (nested and i % 5 == 0) else ""
            rel = os.path.join(cls, sub, f"img{i:03d}.png")
            arr = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
            write_png(os.path.join(root, rel), arr)
            written[rel] = arr
    return written
