"""The IDX reader (MNIST, Fashion-MNIST, KMNIST): exact on files written here, and every damaged file refused
with an error naming it and the problem."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest

from lrdecay.data.idx import (
    IDX_CLASS_NAMES,
    find_idx_folder,
    mnist_family,
    read_idx,
    search_places,
    write_idx,
    write_mnist_family,
)
from lrdecay.images import DatasetNotFoundError, ImageDataset, load_images


def _idx_bytes(code: int, dims, payload: bytes) -> bytes:
    """An IDX file built by hand from the format's definition (independent of write_idx)."""
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def _random_set(rng, n_train=37, n_test=11, h=28, w=28):
    tr = (rng.integers(0, 256, (n_train, h, w), dtype=np.uint8), rng.integers(0, 10, n_train, dtype=np.uint8))
    te = (rng.integers(0, 256, (n_test, h, w), dtype=np.uint8), rng.integers(0, 10, n_test, dtype=np.uint8))
    return tr, te


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_family_reads_back_what_was_written(tmp_path, gz):
    rng = np.random.default_rng()
    (xtr, ytr), (xte, yte) = _random_set(rng, 37, 11, 28, 28)
    write_mnist_family(tmp_path, (xtr, ytr), (xte, yte), gz=gz)
    names = sorted(os.listdir(tmp_path))
    assert names == sorted(f"{s}-{p}-ubyte" + (".gz" if gz else "") for s in ("train", "t10k")
                           for p in ("images-idx3", "labels-idx1"))
    train = mnist_family("fashion-mnist", tmp_path, "train")
    test = mnist_family("fashion-mnist", tmp_path, "test")
    assert isinstance(train, ImageDataset)
    assert train.x.dtype == np.uint8 and train.x.shape == (37, 1, 28, 28) and train.x.flags.c_contiguous
    assert train.y.dtype == np.int64
    np.testing.assert_array_equal(train.x[:, 0], xtr)
    np.testing.assert_array_equal(train.y, ytr.astype(np.int64))
    np.testing.assert_array_equal(test.x[:, 0], xte)
    np.testing.assert_array_equal(test.y, yte)
    assert train.class_names == IDX_CLASS_NAMES["fashion-mnist"] and train.class_names[9] == "Ankle boot"
    assert (train.name, train.split, train.default_augment) == ("fashion-mnist", "train", "none")
    # the same through the by-name loader the trainer uses
    via = load_images("fashion-mnist", tmp_path, "test")
    np.testing.assert_array_equal(via.x, test.x)


def test_read_idx_matches_hand_built_files_of_every_type(tmp_path):
    rng = np.random.default_rng()
    cases = [(0x08, np.uint8, ">u1"), (0x09, np.int8, ">i1"), (0x0B, np.int16, ">i2"), (0x0C, np.int32, ">i4"),
             (0x0D, np.float32, ">f4"), (0x0E, np.float64, ">f8")]
    for code, dt, be in cases:
        shape = tuple(int(s) for s in rng.integers(1, 6, rng.integers(1, 4)))
        a = (rng.standard_normal(shape) * 100).astype(dt)
        raw = tmp_path / f"a{code}"
        raw.write_bytes(_idx_bytes(code, shape, a.astype(be).tobytes()))
        got = read_idx(raw)
        assert got.dtype == np.dtype(dt) and got.shape == shape
        np.testing.assert_array_equal(got, a)
        # write_idx gives the same bytes as the hand-built file, and gzipped the same array back
        write_idx(tmp_path / f"b{code}", a)
        assert (tmp_path / f"b{code}").read_bytes() == raw.read_bytes()
        write_idx(tmp_path / f"c{code}.gz", a)
        np.testing.assert_array_equal(read_idx(tmp_path / f"c{code}.gz"), a)


def test_gzip_is_detected_by_content_not_name(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / "x-idx3-ubyte"  # gzipped bytes under an uncompressed name
    p.write_bytes(gzip.compress(_idx_bytes(0x08, a.shape, a.tobytes())))
    np.testing.assert_array_equal(read_idx(p), a)


def _damage_cases(good: bytes):
    return {
        "truncated data": (good[:-5], "truncated"),
        "truncated header": (good[:6], "truncated"),
        "empty file": (b"", "truncated"),
        "wrong magic": (b"\x00\x01" + good[2:], "not an IDX file"),
        "unknown type code": (b"\x00\x00\x07" + good[3:], "not an IDX file"),
        "trailing bytes": (good + b"\x00", "bytes follow"),
    }


@pytest.mark.parametrize("gz", [True, False])
def test_damaged_files_are_refused_naming_the_file(tmp_path, gz):
    a = np.random.default_rng().integers(0, 256, (4, 5, 6), dtype=np.uint8)
    good = _idx_bytes(0x08, a.shape, a.tobytes())
    for what, (data, needle) in _damage_cases(good).items():
        p = tmp_path / (what.replace(" ", "_") + (".gz" if gz else ""))
        p.write_bytes(gzip.compress(data) if gz else data)
        with pytest.raises(ValueError, match=needle) as exc:
            read_idx(p)
        assert str(p) in str(exc.value), what


def test_cut_gzip_stream_and_forged_size_are_refused(tmp_path):
    a = np.random.default_rng().integers(0, 256, (50, 28, 28), dtype=np.uint8)
    blob = gzip.compress(_idx_bytes(0x08, a.shape, a.tobytes()))
    p = tmp_path / "cut.gz"
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="truncated") as exc:
        read_idx(p)
    assert str(p) in str(exc.value)
    # a header announcing terabytes is refused before anything that size is allocated
    q = tmp_path / "huge"
    q.write_bytes(_idx_bytes(0x08, (2**31, 2**20), b""))
    with pytest.raises(ValueError, match="more than") as exc:
        read_idx(q)
    assert str(q) in str(exc.value)


def test_wrong_type_or_rank_for_the_role_is_refused(tmp_path):
    rng = np.random.default_rng()
    (xtr, ytr), te = _random_set(rng, 9, 3)
    write_mnist_family(tmp_path, (xtr, ytr), te)
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(labels, ytr.astype(np.int32))
    with pytest.raises(ValueError, match="expected uint8") as exc:
        mnist_family("mnist", tmp_path)
    assert str(labels) in str(exc.value)
    write_idx(labels, np.zeros((9, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="rank 2, expected 1"):
        mnist_family("mnist", tmp_path)


def test_count_mismatch_and_label_out_of_range_are_refused(tmp_path):
    rng = np.random.default_rng()
    (xtr, ytr), te = _random_set(rng, 12, 4)
    write_mnist_family(tmp_path, (xtr, ytr[:-1]), te)
    with pytest.raises(ValueError, match="12 images but .* 11 labels") as exc:
        mnist_family("kmnist", tmp_path, "train")
    assert "train-images-idx3-ubyte.gz" in str(exc.value) and "train-labels-idx1-ubyte.gz" in str(exc.value)
    bad = ytr.copy()
    bad[7] = 10
    write_mnist_family(tmp_path, (xtr, bad), te)
    with pytest.raises(ValueError, match="label 10 at index 7 is out of range") as exc:
        mnist_family("kmnist", tmp_path, "train")
    assert str(tmp_path / "train-labels-idx1-ubyte.gz") in str(exc.value)
    # the test split is untouched by the damaged training files
    assert len(mnist_family("kmnist", tmp_path, "test")) == 4


def test_search_order_env_and_subfolders(tmp_path, monkeypatch):
    rng = np.random.default_rng()
    tr, te = _random_set(rng, 5, 2, 4, 4)
    sub = write_mnist_family(tmp_path / "env" / "fashion-mnist", tr, te, gz=False)
    monkeypatch.setenv("LRDECAY_DATA", str(tmp_path / "env"))
    images, labels = find_idx_folder("fashion-mnist", None, "train")
    assert os.path.dirname(images) == sub and labels.endswith("train-labels-idx1-ubyte")
    # an explicit folder is the only place looked in: its parent with a dataset-named subfolder works
    assert len(mnist_family("fashion-mnist", tmp_path / "env", "test")) == 2
    assert search_places("mnist", tmp_path)[0] == str(tmp_path)
    # torchvision's layout
    write_mnist_family(tmp_path / "tv" / "KMNIST" / "raw", tr, te)
    assert len(mnist_family("kmnist", tmp_path / "tv")) == 5


def test_not_found_lists_every_place_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("LRDECAY_DATA", str(tmp_path))
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / "train-images-idx3-ubyte.gz", np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(DatasetNotFoundError) as exc:
        mnist_family("mnist", None, "train")
    msg = str(exc.value)
    for place in search_places("mnist"):
        assert place in msg
    assert "/usr/share/datasets/mnist" in msg
    assert "no train-labels-idx1-ubyte[.gz]" in msg  # what the half-filled folder lacks
    assert "never downloads" in msg
    with pytest.raises(DatasetNotFoundError, match="given folder"):
        mnist_family("kmnist", tmp_path / "nowhere")


def test_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        mnist_family("emnist")
    with pytest.raises(ValueError, match="split must be"):
        mnist_family("mnist", "/nonexistent", "val")
    with pytest.raises(ValueError, match="IDX type"):
        write_idx("/nonexistent/x", np.zeros(3, dtype=np.uint64))
    with pytest.raises(FileNotFoundError):
        read_idx("/nonexistent/file-idx1-ubyte")


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"), reason="dataset-fashion-mnist not installed")
def test_debian_fashion_mnist_when_installed(monkeypatch):
    monkeypatch.delenv("LRDECAY_DATA", raising=False)
    test = mnist_family("fashion-mnist", split="test")
    assert test.x.shape == (10000, 1, 28, 28)
    np.testing.assert_array_equal(np.bincount(test.y), np.full(10, 1000))


# ---------------------------------------------------------------------------- models and the trainer on IDX data
def test_small_cnn_shapes_and_feature_head_split():
    import torch

    from lrdecay.models import SmallCNN, make_model

    torch.manual_seed(0)
    for shape in [(1, 28, 28), (3, 9, 5), (1, 1, 1)]:
        m = make_model("cnn", in_features=int(np.prod(shape)), n_classes=7, width=3, input_shape=shape).eval()
        assert isinstance(m, SmallCNN)
        x = torch.randn(4, *shape)
        assert m.features(x).shape == (4, 12)
        torch.testing.assert_close(m(x), m.head(m.features(x)), rtol=0, atol=0)
        # flat inputs are the same images
        torch.testing.assert_close(m(x.reshape(4, -1)), m(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="width"):
        SmallCNN(10, width=0)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_trainer_on_idx_files_keeps_uint8_and_ledger_tracks_flipped(tmp_path, model):
    import torch

    from lrdecay.trainer import TrainConfig, Trainer

    rng = np.random.default_rng()
    # learnable images: each class a bright bar at its own row, plus noise
    def make(n):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 60, (n, 12, 12)).astype(np.uint8)
        for i, k in enumerate(y):
            x[i, k, :] = 250
        return x, y
    write_mnist_family(tmp_path, make(300), make(50))
    cfg = TrainConfig(data="mnist", data_dir=str(tmp_path), model=model, width=8, depth=1, epochs=3, milestones=[2],
                      lr=0.05, label_noise=0.2, batch_size=32, device="cpu", progress=False, plots=False, seed=3)
    tr = Trainer(cfg)
    assert tr.data.x.dtype == torch.uint8 and tuple(tr.data.x.shape) == (300, 1, 12, 12)
    res = tr.fit()
    # the trainer flipped exactly the labels the dataset's own noise flips for this seed
    ref = mnist_family("mnist", tmp_path, "train").with_label_noise(0.2, seed=3)
    flipped = ref.flipped
    assert flipped.sum() == 60
    np.testing.assert_array_equal(tr.data.host("flipped"), flipped)
    led = res.ledger
    assert led.n_samples == 300 and led.n_epochs == 3
    # the last epoch's "memorized" is the share of flipped images the ledger saw predicted as their noisy label
    pred = led.last_pred
    assert res.history[-1]["memorized"] == pytest.approx(float((pred[flipped] == ref.y[flipped]).mean()), abs=0)
    assert res.history[-1]["predicted_clean"] == pytest.approx(
        float((pred[flipped] == ref.y_clean[flipped]).mean()), abs=0)
