"""Sizes are bounded by what a file holds: tiny crafted CIFAR pickles, .npz sets and PNGs that declare huge
sizes are refused before anything of that size is allocated (peak memory measured with tracemalloc, which
numpy reports its array buffers to)."""

from __future__ import annotations

import os
import pickle
import re
import struct
import tracemalloc
import zlib

import numpy as np
import pytest

from lrdecay.data import MAX_CLASSES, MAX_GROUPS, cifar10, image_folder
from lrdecay.trainer.inputs import as_device_data

from support.image_files import make_cifar10, make_tree

MB = 1 << 20


def peak_bytes(fn, *args, **kwargs):
    """(exception raised or None, peak traced bytes) of ``fn(*args, **kwargs)``."""
    tracemalloc.start()
    try:
        fn(*args, **kwargs)
        exc = None
    except Exception as e:  # the caller asserts on it
        exc = e
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return exc, peak


# ------------------------------------------------------------------ CIFAR pickles
class _Call:
    """Pickles as ``func(*args)``: the shape of a hostile pickle's REDUCE."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _test_batch(folder, batch) -> str:
    path = os.path.join(folder, "test_batch")
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)
    return path


N_HOSTILE = 20_000  # images a few bytes claim (61 MB of pixels)


@pytest.mark.parametrize("how", ["ndarray(shape)", "_reconstruct(shape)"])
def test_cifar_pickle_that_sizes_an_array_by_a_number_is_refused(tmp_path, how):
    folder, _, _ = make_cifar10(tmp_path, n_train=10, n_test=10)
    if how == "ndarray(shape)":
        data, labels = _Call(np.ndarray, (N_HOSTILE, 3072), "u1"), _Call(np.ndarray, (N_HOSTILE,), "i1")
    else:
        from numpy._core.multiarray import _reconstruct

        data = _Call(_reconstruct, np.ndarray, (N_HOSTILE, 3072), "u1")
        labels = _Call(_reconstruct, np.ndarray, (N_HOSTILE,), "i1")
    path = _test_batch(folder, {"data": data, "labels": labels, "batch_label": "x"})
    assert os.path.getsize(path) < 400
    exc, peak = peak_bytes(cifar10, folder, "test")
    assert isinstance(exc, ValueError) and "refusing" in str(exc) and "test_batch" in str(exc), exc
    assert peak < 8 * MB, peak


def test_cifar_array_whose_bytes_do_not_fill_its_shape_is_refused(tmp_path):
    folder, (x, y), _ = make_cifar10(tmp_path, n_train=10, n_test=10)
    raw = pickle.dumps({"data": x[:2].reshape(2, -1), "labels": [0, 1]}, protocol=2)
    # claim 20000 rows for the 2 rows' bytes: the shape tuple (2, 3072) is pickled as K\x02 M\x00\x0c
    hostile = raw.replace(b"K\x02M\x00\x0c\x86", b"M" + struct.pack("<H", N_HOSTILE) + b"M\x00\x0c\x86", 1)
    assert hostile != raw
    with open(os.path.join(folder, "test_batch"), "wb") as f:
        f.write(hostile)
    exc, peak = peak_bytes(cifar10, folder, "test")
    assert isinstance(exc, ValueError) and "test_batch" in str(exc), exc
    assert peak < 8 * MB, peak


def test_cifar_labels_as_nested_shared_lists_are_refused_before_expanding(tmp_path):
    folder, _, (x, _) = make_cifar10(tmp_path, n_train=10, n_test=8)
    inner = [0] * 32
    for _ in range(3):
        inner = [inner] * 32  # one list shared 32 times: the pickle memo keeps it a few bytes
    labels = [inner] * 8  # 8 labels for 8 images, each 32**4 = 1 M numbers once expanded
    path = _test_batch(folder, {"data": x.reshape(8, -1), "labels": labels})
    assert os.path.getsize(path) < 40_000
    exc, peak = peak_bytes(cifar10, folder, "test")
    assert isinstance(exc, ValueError) and "'labels' must hold 8 integer labels" in str(exc), exc
    assert peak < 8 * MB, peak


def test_genuine_cifar_batches_still_load_with_every_pickle_flavour(tmp_path):
    for flavour in ("py3", "proto2", "py2"):
        folder, _, (x, y) = make_cifar10(tmp_path / flavour, n_train=10, n_test=7, flavour=flavour,
                                         seed=int.from_bytes(os.urandom(2), "little"))
        with pytest.warns(UserWarning, match="not the official"):
            ds = cifar10(folder, "test")
        assert np.array_equal(ds.x, x) and np.array_equal(ds.y, y)


# ------------------------------------------------------------------ .npz sets and in-memory datasets
def _small(n=6, **extra):
    rng = np.random.default_rng(int.from_bytes(os.urandom(2), "little"))
    return {"x": rng.normal(size=(n, 3)).astype(np.float32), "y": np.arange(n) % 2, **extra}


@pytest.mark.parametrize(
    "extra,match",
    [
        (dict(n_classes=np.int64(10**9)), rf"n_classes must be in \[2, {MAX_CLASSES}\], got 1000000000"),
        (dict(y=np.array([0, 1, 0, 1, 0, 300_000_000])), rf"labels must be in \[0, {MAX_CLASSES}\).*300000000"),
        (dict(group=np.array([0, 0, 1, 1, 0, 30_000_000])), rf"ids must be in \[0, {MAX_GROUPS}\).*30000000"),
    ],
)
def test_declared_sizes_over_the_caps_are_refused_before_allocating(tmp_path, extra, match):
    path = tmp_path / "hostile.npz"
    np.savez(path, **_small(**extra))
    assert os.path.getsize(path) < 4096
    from lrdecay.cli import _load_npz_dataset

    exc, peak = peak_bytes(lambda: as_device_data(_load_npz_dataset(str(path)), "cpu", name="train"))
    assert isinstance(exc, ValueError), exc
    assert re.search(match, str(exc)), exc
    assert peak < 8 * MB, peak


@pytest.mark.parametrize("extra", [dict(n_classes=np.int64(10**9)), dict(y=np.array([0, 1, 0, 1, 0, 300_000_000])),
                                   dict(group=np.array([0, 0, 1, 1, 0, 30_000_000]))])
def test_in_memory_datasets_over_the_caps_are_refused_naming_the_argument(extra):
    exc, peak = peak_bytes(as_device_data, _small(**extra), "cpu", name="train")
    assert isinstance(exc, ValueError) and str(exc).startswith("train") and "65536" in str(exc), exc
    assert peak < 8 * MB, peak


def _npy_member(shape, descr="<f4", data=b"\0" * 64) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def test_npz_member_declaring_more_than_it_holds_is_refused_before_allocating(tmp_path):
    import io
    import zipfile

    from lrdecay.cli import _load_npz_dataset

    path = tmp_path / "hostile.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", _npy_member((4 * 10**8, 2)))  # 3.2 GB declared, 64 bytes held
        y = io.BytesIO()
        np.save(y, np.arange(4))
        z.writestr("y.npy", y.getvalue())
    assert os.path.getsize(path) < 1024
    exc, peak = peak_bytes(_load_npz_dataset, str(path))
    assert isinstance(exc, ValueError) and re.search(r"member 'x' declares shape \(400000000, 2\).*holds 64 bytes",
                                                     str(exc)), exc
    assert peak < 8 * MB, peak


def test_npz_n_classes_that_is_not_one_integer_is_a_clear_error(tmp_path):
    from lrdecay.cli import _load_npz_dataset

    path = tmp_path / "d.npz"
    np.savez(path, **_small(n_classes=np.array([10, 10])))
    with pytest.raises(ValueError, match=r"n_classes must be one integer"):
        _load_npz_dataset(str(path))


def test_sizes_at_the_caps_are_accepted():
    d = as_device_data(_small(n_classes=MAX_CLASSES, group=np.array([0, 0, 1, 1, 0, MAX_GROUPS - 1])), "cpu")
    assert d.n_classes == MAX_CLASSES and d.n_groups == MAX_GROUPS


@pytest.mark.slow  # a subprocess that imports torch
def test_cli_train_on_an_npz_declaring_a_billion_classes_exits_2(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "hostile.npz"
    np.savez(path, **_small(n_classes=np.int64(10**9)))
    r = subprocess.run([sys.executable, "-m", "lrdecay.cli", "train", "--data", str(path), "--epochs", "1",
                        "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "n_classes must be in [2, 65536]" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


# ------------------------------------------------------------------ decompression bombs
def _png_header_only_zeros(path, width: int, height: int) -> None:
    """A 1-bit grayscale PNG of ``width x height`` black pixels, streamed through zlib: a few KB on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(9)
    row = b"\0" * (1 + (width + 7) // 8)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "tree"
    make_tree(root, per_class=(3, 3), classes=("a", "b"), size=(6, 5), seed=int.from_bytes(os.urandom(2), "little"))
    return root


def test_png_declaring_far_more_pixels_than_the_requested_size_is_refused_before_decoding(tree, tmp_path):
    _png_header_only_zeros(tree / "a" / "bomb.png", 9000, 9000)  # 81 megapixels, under Pillow's own limit
    assert os.path.getsize(tree / "a" / "bomb.png") < 40_000
    exc, peak = peak_bytes(image_folder, tree, size=(6, 5), cache=False, workers=1, progress=False)
    assert isinstance(exc, ValueError) and "bomb.png" in str(exc) and "81000000 pixels" in str(exc), exc
    assert peak < 16 * MB, peak
    with pytest.warns(UserWarning, match="bomb.png"):
        ds = image_folder(tree, size=(6, 5), cache=False, workers=1, progress=False, on_error="skip")
    assert len(ds) == 6


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's own, also given
def test_pillow_max_image_pixels_is_an_error_not_a_warning(tree, tmp_path, monkeypatch):
    from PIL import Image

    _png_header_only_zeros(tree / "b" / "wide.png", 150, 100)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # Pillow itself only warns up to 20,000
    with pytest.raises(ValueError, match=r"wide.png.*15000 pixels.*MAX_IMAGE_PIXELS"):
        image_folder(tree, size=(100, 150), resize="crop", cache=False, workers=1, progress=False)


def test_large_photos_within_the_bound_still_decode(tree, tmp_path):
    _png_header_only_zeros(tree / "b" / "big.png", 2000, 1500)  # 3 megapixels down to 6 x 5: accepted
    ds = image_folder(tree, size=(6, 5), cache=False, workers=1, progress=False)
    i = list(ds.files).index(os.path.join("b", "big.png"))
    assert len(ds) == 7 and ds.y[i] == 1 and (ds.x[i] == 0).all()
