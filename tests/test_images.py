"""Real-image readers: CIFAR-10/100 folders, image trees, digits — exact on files the tests write, and clear
errors for missing, partial, truncated, malformed and undecodable input."""

from __future__ import annotations

import os
import pickle
import warnings

import numpy as np
import pytest

from lrdecay.data import folder as folder_reader
from lrdecay.data import DatasetNotFoundError, cifar10, cifar100, digits, image_folder, load_images
from lrdecay.images import ImageDataset, channel_stats, write_cifar
from lrdecay.noise import corrupt_labels

from support.image_files import CIFAR10_NAMES, make_cifar10, make_tree, random_cifar, write_png

OFFICIAL = pytest.warns(UserWarning, match="not the official")


# ============================================================================ CIFAR-10
@pytest.mark.parametrize("flavour", ["py3", "proto2", "py2"])
@pytest.mark.parametrize("given", ["parent", "folder"])
def test_cifar10_reads_generated_folder_exactly(tmp_path, flavour, given):
    folder, (xtr, ytr), (xte, yte) = make_cifar10(tmp_path, n_train=253, n_test=61, seed=4, flavour=flavour)
    root = tmp_path if given == "parent" else folder
    with OFFICIAL:
        tr = cifar10(root, split="train")
    with OFFICIAL:
        te = cifar10(str(root), split="test")
    # five batches concatenated in file order give back the array that was split over them
    assert tr.x.dtype == np.uint8 and tr.x.shape == (253, 3, 32, 32) and tr.x.flags.c_contiguous
    assert np.array_equal(tr.x, xtr) and np.array_equal(tr.y, ytr) and tr.y.dtype == np.int64
    assert np.array_equal(te.x, xte) and np.array_equal(te.y, yte)
    assert tr.class_names == tuple(CIFAR10_NAMES) and tr.n_classes == 10
    assert tr.y_clean is None and tr.flipped is None and tr.default_augment == "crop+flip"


def test_cifar10_channel_major_layout(tmp_path):
    # a row of the batch file is R plane (1024 bytes), then G, then B, each row-major
    x = np.zeros((10, 3, 32, 32), np.uint8)
    x[0, 0, 0, 1] = 7  # red, row 0, column 1
    x[0, 2, 31, 0] = 9  # blue, row 31, column 0
    write_cifar(tmp_path, "cifar10", (x, np.arange(10)), (x[:2], np.arange(2)), CIFAR10_NAMES)
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        row = pickle.load(f)["data"][0]
    assert row[1] == 7 and row[2 * 1024 + 31 * 32] == 9  # what the official layout says
    with OFFICIAL:
        got = cifar10(tmp_path)
    assert got.x[0, 0, 0, 1] == 7 and got.x[0, 2, 31, 0] == 9 and int(got.x.sum()) == 16


def test_cifar10_missing_root_and_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        cifar10(tmp_path / "nope")
    with pytest.raises(DatasetNotFoundError) as e:
        cifar10(tmp_path)
    msg = str(e.value)
    assert "cifar-10-batches-py" in msg and "cifar-10-python.tar.gz" in msg and "data_batch_1" in msg
    assert str(tmp_path) in msg and os.path.join(str(tmp_path), "cifar-10-batches-py") in msg
    assert "never downloads" in msg
    assert isinstance(e.value, FileNotFoundError)


def test_cifar10_partial_folder_names_missing_files(tmp_path):
    folder, _, _ = make_cifar10(tmp_path, n_train=50, n_test=10)
    os.remove(os.path.join(folder, "data_batch_3"))
    with pytest.raises(DatasetNotFoundError, match=r"missing data_batch_3") as e:
        cifar10(tmp_path)
    assert "test_batch" not in str(e.value).split("Looked in:")[1]
    with pytest.warns(UserWarning):  # the test split does not need data_batch_3
        assert len(cifar10(tmp_path, split="test")) == 10
    os.remove(os.path.join(folder, "batches.meta"))
    with pytest.raises(DatasetNotFoundError, match="missing batches.meta"):
        cifar10(tmp_path, split="test")


def test_cifar10_archive_not_extracted_hint(tmp_path):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(DatasetNotFoundError, match=r"tar xzf cifar-10-python.tar.gz -C"):
        cifar10(tmp_path)


@pytest.mark.parametrize("flavour", ["py3", "py2"])
@pytest.mark.parametrize("keep", [0, 1, 2, 40, 3000, -1])
def test_cifar10_truncated_batch_file(tmp_path, flavour, keep):
    folder, _, _ = make_cifar10(tmp_path, n_train=50, n_test=10, flavour=flavour)
    path = os.path.join(folder, "data_batch_2")
    raw = open(path, "rb").read()
    open(path, "wb").write(raw[:keep] if keep >= 0 else raw[:-1])
    with pytest.raises(ValueError, match=r"data_batch_2 is truncated or corrupt.*extract the archive again"):
        cifar10(tmp_path)


def _rewrite(folder, fname, change):
    path = os.path.join(folder, fname)
    with open(path, "rb") as f:
        obj = pickle.load(f)
    obj = change(obj)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


@pytest.mark.parametrize(
    "change,match",
    [
        (lambda d: {**d, "data": d["data"][:, :-1]}, r"shape \(n, 3072\).*got uint8 \(10, 3071\)"),
        (lambda d: {**d, "data": d["data"].reshape(-1, 3, 32, 32)}, r"shape \(n, 3072\)"),
        (lambda d: {**d, "data": d["data"].astype(np.float32)}, r"must be a uint8 array.*float32"),
        (lambda d: {**d, "data": d["data"].tolist()}, r"must be a uint8 array.*list"),
        (lambda d: {**d, "labels": d["labels"][:-1]}, r"'labels' must hold 10 integer labels"),
        (lambda d: {**d, "labels": [10] + d["labels"][1:]}, r"labels must be in \[0, 10\), found 10"),
        (lambda d: {**d, "labels": [-1] + d["labels"][1:]}, r"labels must be in \[0, 10\), found -1"),
        (lambda d: {k: v for k, v in d.items() if k != "labels"}, r"expected a dict with 'data' and 'labels'"),
        (lambda d: [d], r"expected a dict.*got list"),
    ],
)
def test_cifar10_malformed_batch(tmp_path, change, match):
    folder, _, _ = make_cifar10(tmp_path, n_train=50, n_test=10)
    _rewrite(folder, "test_batch", change)
    with pytest.raises(ValueError, match=match) as e:
        cifar10(tmp_path, split="test")
    assert "test_batch" in str(e.value)


def test_cifar10_bad_meta(tmp_path):
    folder, _, _ = make_cifar10(tmp_path, n_train=50, n_test=10)
    _rewrite(folder, "batches.meta", lambda d: {**d, "label_names": d["label_names"][:9]})
    with pytest.raises(ValueError, match=r"batches.meta.*list of 10 class names"):
        cifar10(tmp_path, split="test")


class _Evil:
    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_cifar10_pickle_runs_no_code(tmp_path):
    folder, _, _ = make_cifar10(tmp_path, n_train=50, n_test=10)
    evil = _Evil()
    evil.path = str(tmp_path / "pwned")
    _rewrite(folder, "test_batch", lambda d: {**d, "filenames": evil})
    with pytest.raises(ValueError, match=r"refusing to load posix.mkdir|refusing to load os.mkdir|refusing"):
        cifar10(tmp_path, split="test")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("bad", [dict(split="val"), dict(split=1)])
def test_cifar_bad_arguments(tmp_path, bad):
    with pytest.raises((ValueError, TypeError), match="split"):
        cifar10(tmp_path, **bad)
    with pytest.raises(TypeError, match="root must be a path"):
        cifar10(3)


# ============================================================================ CIFAR-100
def test_cifar100_fine_and_coarse(tmp_path):
    xtr, ytr = random_cifar(120, 100, 7)
    xte, yte = random_cifar(33, 100, 8)
    ctr, cte = ytr // 5, yte // 5
    fine = [f"f{i}" for i in range(100)]
    coarse = [f"c{i}" for i in range(20)]
    folder = write_cifar(tmp_path, "cifar100", (xtr, ytr), (xte, yte), fine, coarse=(ctr, cte, coarse))
    assert folder.endswith("cifar-100-python")
    with OFFICIAL:
        tr = cifar100(tmp_path)
    assert np.array_equal(tr.x, xtr) and np.array_equal(tr.y, ytr) and tr.class_names == tuple(fine)
    with OFFICIAL:
        te = cifar100(folder, "test", labels="coarse")
    assert np.array_equal(te.x, xte) and np.array_equal(te.y, cte) and te.n_classes == 20
    assert te.name == "cifar100-coarse"
    with pytest.raises(ValueError, match="labels must be one of"):
        cifar100(tmp_path, labels="medium")
    os.remove(os.path.join(folder, "train"))
    with pytest.raises(DatasetNotFoundError, match=r"cifar-100-python.*missing train"):
        cifar100(tmp_path)


# ============================================================================ dataset methods
def _small(n=200, k=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 3, 4, 5), dtype=np.uint8)
    y = rng.integers(0, k, size=n).astype(np.int64)
    return ImageDataset(x=x, y=y, class_names=tuple(f"c{i}" for i in range(k)), name="t", split="train")


def test_channel_stats_match_numpy():
    ds = _small(97)
    f = ds.x.astype(np.float64) / 255
    np.testing.assert_allclose(ds.mean, f.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(ds.std, f.std(axis=(0, 2, 3)), rtol=1e-12)
    const = np.full((3, 2, 2, 2), 9, np.uint8)
    m, s = channel_stats(const)
    assert m == (9 / 255, 9 / 255) and s == (1.0, 1.0)
    with pytest.raises(TypeError, match="uint8"):
        channel_stats(f)


@pytest.mark.parametrize("mode", ["symmetric", "pairflip", "matrix"])
def test_label_noise_goes_through_corrupt_labels(mode):
    ds = _small(311, k=7)
    mat = np.full((7, 7), 1 / 7) if mode == "matrix" else None
    noisy = ds.with_label_noise(0.3, mode=mode, matrix=mat, seed=5)
    ref_y, ref_f = corrupt_labels(ds.y, 7, 0.3, mode=mode, matrix=mat, seed=5)
    assert np.array_equal(noisy.y, ref_y) and np.array_equal(noisy.flipped, ref_f)
    assert np.array_equal(noisy.y_clean, ds.y) and np.array_equal(noisy.flipped, noisy.y != noisy.y_clean)
    assert noisy.x is ds.x and ds.y_clean is None  # pixels shared, original untouched
    again = noisy.with_label_noise(0.3, mode=mode, matrix=mat, seed=5)  # from the clean labels again
    assert np.array_equal(again.y, ref_y)
    with pytest.raises(ValueError, match="rate"):
        ds.with_label_noise(1.5)


def test_balanced_subset():
    ds = _small(500, k=10, seed=1)
    counts = np.bincount(ds.y, minlength=10)
    sub = ds.balanced_subset(123, seed=2)
    got = np.bincount(sub.y, minlength=10)
    assert got.sum() == 123 and got.max() - got.min() <= 1
    # the chosen images are images of the set, in their original order
    idx = [int(np.flatnonzero((ds.x == img).all(axis=(1, 2, 3)))[0]) for img in sub.x]
    assert idx == sorted(idx) and np.array_equal(ds.y[idx], sub.y)
    assert np.array_equal(ds.balanced_subset(123, seed=2).x, sub.x)
    assert not np.array_equal(ds.balanced_subset(123, seed=3).x, sub.x)
    # a short class gives all it has; the rest is spread over the others
    short = ds.subset(np.flatnonzero((ds.y != 0) | (np.cumsum(ds.y == 0) <= 3)))
    s = short.balanced_subset(200, seed=0)
    c = np.bincount(s.y, minlength=10)
    assert c[0] == 3 and c.sum() == 200 and c[1:].max() - c[1:].min() <= 1
    assert np.array_equal(ds.balanced_subset(500).y, ds.y)
    assert sorted(counts) == sorted(np.bincount(ds.balanced_subset(500).y, minlength=10))
    with pytest.raises(ValueError, match=r"n must be an int in \[1, 500\]"):
        ds.balanced_subset(501)


def test_subset_and_select_classes():
    ds = _small(300, k=6).with_label_noise(0.0)
    part = ds.select_classes(["c4", 1])
    keep = (ds.y == 4) | (ds.y == 1)
    assert np.array_equal(part.x, ds.x[keep]) and part.class_names == ("c4", "c1")
    assert np.array_equal(part.y, np.where(ds.y[keep] == 4, 0, 1))
    np.testing.assert_allclose(part.mean, ds.x[keep].astype(np.float64).mean(axis=(0, 2, 3)) / 255)
    with pytest.raises(ValueError, match="unknown class"):
        ds.select_classes(["c9"])
    with pytest.raises(ValueError, match="at least 2 distinct"):
        ds.select_classes([1, 1])
    noisy = _small(300, k=6).with_label_noise(0.5, seed=1)
    with pytest.raises(ValueError, match="outside the selected classes"):
        noisy.select_classes([0, 1])
    with pytest.raises(ValueError, match=r"indices must be in \[0, 300\)"):
        ds.subset([300])
    with pytest.raises(TypeError, match="integer array or a bool mask"):
        ds.subset(np.array([0.5]))
    t = ds.subset(np.array([5, 2])).to_torch()
    assert t["x"].dtype.is_floating_point is False and tuple(t["x"].shape) == (2, 3, 4, 5)


# ============================================================================ image folders
class _CountingDecode:
    def __init__(self, real):
        self.real, self.calls = real, 0

    def __call__(self, *a, **k):
        self.calls += 1
        return self.real(*a, **k)


def test_image_folder_exact_and_cached(tmp_path, monkeypatch):
    root, cache = tmp_path / "tree", tmp_path / "cache"
    written = make_tree(root, size=(12, 10))
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    write_png(str(root / ".hidden" / "x.png"), np.zeros((12, 10, 3), np.uint8))
    ds = image_folder(root, size=(12, 10), cache_dir=cache, progress=False)
    assert ds.class_names == ("cat", "dog", "eel") and ds.x.shape == (206, 3, 12, 10) and ds.x.dtype == np.uint8
    # sorted classes, sorted files at any depth below the class folder
    expected = sorted(written, key=lambda p: (p.split(os.sep)[0], os.path.join(*p.split(os.sep)[1:])))
    order = []
    for cls in ("cat", "dog", "eel"):
        for dirpath, _dirs, files in sorted(os.walk(root / cls)):
            order += [os.path.relpath(os.path.join(dirpath, f), root) for f in sorted(files) if f.endswith(".png")]
    assert list(ds.files) == order and sorted(order) == sorted(expected)
    for i, rel in enumerate(ds.files):
        assert np.array_equal(ds.x[i], written[rel].transpose(2, 0, 1)), rel  # lossless PNG, no resize
        assert ds.y[i] == ("cat", "dog", "eel").index(rel.split(os.sep)[0])
    assert len(os.listdir(cache)) == 1 and os.listdir(cache)[0].endswith(".npz")

    decode = _CountingDecode(folder_reader._decode)
    monkeypatch.setattr(folder_reader, "_decode", decode)
    again = image_folder(root, size=(12, 10), cache_dir=cache, progress=False)
    assert decode.calls == 0
    assert np.array_equal(again.x, ds.x) and np.array_equal(again.y, ds.y) and again.files == ds.files
    # any change of content, or of the decoding parameters, is a new key
    write_png(str(root / "dog" / "img001.png"), np.full((12, 10, 3), 3, np.uint8))
    changed = image_folder(root, size=(12, 10), cache_dir=cache, progress=False)
    assert decode.calls == 206 and (changed.x[ds.files.index(os.path.join("dog", "img001.png"))] == 3).all()
    image_folder(root, size=(6, 5), cache_dir=cache, progress=False)
    assert decode.calls == 2 * 206 and len(os.listdir(cache)) == 3


def test_image_folder_workers_do_not_change_bytes(tmp_path):
    make_tree(tmp_path / "t", per_class=(9, 8, 7), size=(20, 30))
    a = image_folder(tmp_path / "t", size=8, cache=False, workers=1, progress=False)
    b = image_folder(tmp_path / "t", size=8, cache=False, workers=4, progress=False)
    assert np.array_equal(a.x, b.x) and a.x.shape == (24, 3, 8, 8)


def test_image_folder_resize_modes(tmp_path):
    # 64 wide x 32 high: red left quarter, green middle half, blue right quarter
    img = np.zeros((32, 64, 3), np.uint8)
    img[:, :16, 0] = 255
    img[:, 16:48, 1] = 255
    img[:, 48:, 2] = 255
    for cls in ("a", "b"):
        write_png(str(tmp_path / "t" / cls / "x.png"), img)
    crop = image_folder(tmp_path / "t", size=16, resize="crop", cache=False, progress=False)
    assert crop.x.shape == (2, 3, 16, 16)
    # the centre square: green (its outermost columns blend with the neighbours outside the box, as
    # Pillow's filter support reaches past the crop box)
    assert (crop.x[:, 1, :, 1:-1] == 255).all() and (crop.x[:, [0, 2], :, 1:-1] == 0).all()
    assert (crop.x[:, 1] >= 192).all() and (crop.x[:, 0, :, 0] <= 64).all()
    stretch = image_folder(tmp_path / "t", size=16, resize="stretch", cache=False, progress=False)
    assert (stretch.x[0, 0, :, 0] == 255).all() and (stretch.x[0, 2, :, -1] == 255).all()
    gray = image_folder(tmp_path / "t", size=(32, 64), channels=1, cache=False, progress=False)
    assert gray.x.shape == (2, 1, 32, 64)
    ref = np.array([255 * 0.299, 255 * 0.587, 255 * 0.114])  # ITU-R 601 luma of pure R, G, B
    assert np.abs(gray.x[0, 0, 0, [0, 30, 60]] - ref).max() <= 1
    with pytest.raises(ValueError, match=r"is 64 x 32.*resize='none' needs every image to be 16 x 16"):
        image_folder(tmp_path / "t", size=16, resize="none", cache=False, progress=False, on_error="skip")


def test_image_folder_jpeg_and_palette(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    os.makedirs(tmp_path / "t" / "j")
    os.makedirs(tmp_path / "t" / "p")
    Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(tmp_path / "t" / "j" / "a.JPG")
    Image.fromarray(rng.integers(0, 4, (9, 9), dtype=np.uint8), mode="L").convert("P").save(tmp_path / "t" / "p" / "b.gif")
    ds = image_folder(tmp_path / "t", size=9, cache=False, progress=False)
    assert ds.x.shape == (2, 3, 9, 9) and ds.class_names == ("j", "p")


def test_image_folder_unreadable_image(tmp_path):
    make_tree(tmp_path / "t", per_class=(4, 4, 4), size=(8, 8))
    bad = tmp_path / "t" / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ValueError, match=r"cannot use .*broken.png"):
        image_folder(tmp_path / "t", size=8, cache=False, progress=False)
    truncated = tmp_path / "t" / "eel" / "zcut.png"
    good = (tmp_path / "t" / "eel" / "img001.png").read_bytes()
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.warns(UserWarning, match=r"skipped 2 image\(s\).*broken.png.*zcut.png"):
        ds = image_folder(tmp_path / "t", size=8, on_error="skip", cache_dir=tmp_path / "c", progress=False)
    assert len(ds) == 12 and "dog/broken.png" not in ds.files and np.bincount(ds.y).tolist() == [4, 4, 4]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the cache holds the result: no decode, no warning
        assert np.array_equal(image_folder(tmp_path / "t", size=8, on_error="skip", cache_dir=tmp_path / "c",
                                           progress=False).x, ds.x)


def test_image_folder_layout_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        image_folder(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    write_png(str(tmp_path / "flat" / "a.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DatasetNotFoundError, match=r"no class subfolders in .*flat.*root/<class>/<image>"):
        image_folder(tmp_path / "flat")
    make_tree(tmp_path / "t", per_class=(2, 2, 2), size=(4, 4))
    (tmp_path / "t" / "empty").mkdir()
    (tmp_path / "t" / "empty" / "readme.txt").write_text("x")
    with pytest.raises(DatasetNotFoundError, match=r"\['empty'\].*hold no images"):
        image_folder(tmp_path / "t")


def test_image_folder_damaged_cache_is_rebuilt(tmp_path):
    make_tree(tmp_path / "t", per_class=(3, 3, 3), size=(6, 6))
    ds = image_folder(tmp_path / "t", size=6, cache_dir=tmp_path / "c", progress=False)
    (path,) = list((tmp_path / "c").iterdir())
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(UserWarning, match="damaged cache file"):
        again = image_folder(tmp_path / "t", size=6, cache_dir=tmp_path / "c", progress=False)
    assert np.array_equal(again.x, ds.x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image_folder(tmp_path / "t", size=6, cache_dir=tmp_path / "c", progress=False)  # rewritten intact


@pytest.mark.parametrize(
    "kw,err,match",
    [
        (dict(size=0), ValueError, "size"),
        (dict(size=(3,)), ValueError, "size must be an int or a pair"),
        (dict(resize="zoom"), ValueError, "resize must be"),
        (dict(channels=2), ValueError, "channels must be 3"),
        (dict(on_error="ignore"), ValueError, "on_error"),
        (dict(extensions=".png"), TypeError, "extensions"),
        (dict(workers=0), ValueError, "workers"),
    ],
)
def test_image_folder_bad_arguments(tmp_path, kw, err, match):
    with pytest.raises(err, match=match):
        image_folder(tmp_path, **kw)


def test_image_folder_env_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LRDECAY_CACHE", str(tmp_path / "env"))
    make_tree(tmp_path / "t", per_class=(2, 2, 2), size=(4, 4))
    image_folder(tmp_path / "t", size=4, progress=False)
    assert len(list((tmp_path / "env" / "image_folder").iterdir())) == 1


# ============================================================================ digits
def test_digits_matches_scikit_learn():
    from sklearn.datasets import load_digits

    d = load_digits()
    ds = digits()
    assert ds.x.shape == (1797, 1, 8, 8) and ds.x.dtype == np.uint8 and ds.n_classes == 10
    assert np.array_equal(ds.y, d.target)
    v = d.images.astype(np.int64)
    assert np.array_equal(ds.x[:, 0], np.floor(v * 255 / 16 + 0.5).astype(np.uint8))  # 16 -> 255, 8 -> 128
    assert ds.x.max() == 255 and ds.default_augment == "none"
    tr, te = digits("train"), digits("test")
    assert (len(tr), len(te)) == (1442, 355)
    # within each class, images 4, 9, 14, ... (0-based, source order) are the test split
    test_idx = np.zeros(1797, bool)
    for k in range(10):
        test_idx[np.flatnonzero(d.target == k)[4::5]] = True
    assert np.array_equal(te.x, ds.x[test_idx]) and np.array_equal(tr.y, ds.y[~test_idx])
    assert np.array_equal(tr.x, ds.x[~test_idx]) and np.array_equal(te.y, ds.y[test_idx])
    with pytest.raises(ValueError, match="split must be"):
        digits("val")


# ============================================================================ by name
def test_load_images_dispatch(tmp_path):
    make_cifar10(tmp_path / "c", n_train=20, n_test=10)
    with OFFICIAL:
        assert load_images("cifar10", tmp_path / "c", "test").x.shape == (10, 3, 32, 32)
    assert len(load_images("digits", None, "test")) == 355
    with pytest.raises(ValueError, match="takes no data_dir"):
        load_images("digits", tmp_path)
    with pytest.raises(ValueError, match="needs data_dir"):
        load_images("cifar10")
    with pytest.raises(ValueError, match="data must be one of"):
        load_images("imagenet", tmp_path)
    # a folder with train/ and val/
    make_tree(tmp_path / "f" / "train", per_class=(3, 3, 3), size=(5, 5), seed=1)
    make_tree(tmp_path / "f" / "val", per_class=(2, 2, 2), size=(5, 5), seed=2)
    tr = load_images("folder", tmp_path / "f", "train", size=5, cache=False, progress=False)
    te = load_images("folder", tmp_path / "f", "test", size=5, cache=False, progress=False)
    assert (len(tr), len(te)) == (9, 6) and tr.class_names == te.class_names
    make_tree(tmp_path / "g", per_class=(3, 3, 3), size=(5, 5))
    assert load_images("folder", tmp_path / "g", "test", size=5, cache=False, progress=False) is None
    assert len(load_images("folder", tmp_path / "g", "train", size=5, cache=False, progress=False)) == 9
    make_tree(tmp_path / "h" / "train", classes=("a", "b"), per_class=(2, 2), size=(5, 5))
    make_tree(tmp_path / "h" / "test", classes=("a", "c"), per_class=(2, 2), size=(5, 5))
    with pytest.raises(ValueError, match="needs the same class folders"):
        load_images("folder", tmp_path / "h", "test", size=5, cache=False, progress=False)
