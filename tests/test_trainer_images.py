"""The trainer on real images: uint8 data on the device, augmentation inside the step (checked against the
numpy reference), exact resume with augmentation, label noise tracked by the ledger, config and CLI."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch
from torch import nn

from lrdecay.data import digits
from lrdecay.images import ImageDataset
from lrdecay.models import CifarResNet
from lrdecay.trainer import Trainer, TrainConfig, load_checkpoint, subseed, train

from support import augment_reference as reference
from support import clusters, strip
from support.image_files import make_cifar10, make_tree

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cfg_(**kw):
    base = dict(epochs=2, batch_size=32, optimizer="torch", ledger=True, milestones=[1], device="cpu",
                progress=False, plots=False, model="mlp", width=32, depth=1)
    base.update(kw)
    return TrainConfig(**base)


def tiny_images(n=90, k=3, shape=(3, 6, 5), seed=0):
    """Images whose class is the brightness of one channel: learnable, independent of the code under test."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n).astype(np.int64)
    x = rng.integers(0, 120, size=(n, *shape)).astype(np.uint8)
    x[np.arange(n), y % shape[0]] += 100
    return ImageDataset(x=x, y=y, class_names=tuple(f"c{i}" for i in range(k)), name="tiny", split="train")


class Recorder(nn.Module):
    """Wraps a model; keeps every training-mode input batch."""

    def __init__(self, inner, stop_at=None):
        super().__init__()
        self.inner, self.seen, self.stop_at, self.calls = inner, [], stop_at, 0

    def forward(self, x):
        if self.training:
            self.seen.append(x.detach().clone())
            self.calls += 1
            if self.calls == self.stop_at:
                os.kill(os.getpid(), signal.SIGINT)
        return self.inner(x)


def _mlp(ds, seed=3):
    torch.manual_seed(seed)
    from lrdecay.models import MLP

    return MLP(int(np.prod(ds.x.shape[1:])), ds.n_classes, width=16, depth=1)


@pytest.mark.parametrize("augment,pad", [("crop+flip", 2), ("flip", 4), ("crop", 1), ("none", 4)])
def test_step_inputs_equal_the_numpy_reference(augment, pad):
    ds = tiny_images(n=45)
    model = Recorder(_mlp(ds))
    cfg = cfg_(augment=augment, crop_padding=pad, batch_size=16, seed=7)
    t = Trainer(cfg, dataset=ds, model=model)
    t.fit()
    assert len(model.seen) == 2 * 3  # 2 epochs x (16, 16, 13)
    for e in range(2):
        perm = t.epoch_permutation(e).numpy()
        for b in range(3):
            idx = perm[b * 16 : (b + 1) * 16]
            want = reference(ds.x[idx], idx, subseed(7, "augment", e), ds.mean, ds.std, augment, pad)
            np.testing.assert_array_equal(model.seen[e * 3 + b].numpy(), want)


def test_default_augment_follows_the_data():
    assert Trainer(cfg_(), dataset=tiny_images()).pipeline.augment == "crop+flip"
    assert Trainer(cfg_(), dataset=digits("test")).pipeline.augment == "none"
    assert Trainer(cfg_(augment="flip"), dataset=digits("test")).pipeline.augment == "flip"
    # a dict of uint8 images: statistics from the pixels, no augmentation unless asked
    d = tiny_images()
    t = Trainer(cfg_(), dataset={"x": d.x, "y": d.y})
    assert t.pipeline.augment == "none" and t.data.mean == pytest.approx(d.mean, abs=1e-12)
    assert t.data.x.dtype == torch.uint8


def test_test_sets_are_normalized_with_the_training_statistics():
    tr, te = tiny_images(seed=0), tiny_images(n=30, seed=1)
    t = Trainer(cfg_(augment="crop+flip"), dataset=tr, test_sets={"te": te}, model=_mlp(tr))
    t.model.eval()
    scale = 1 / (255 * np.asarray(tr.std))
    shift = -np.asarray(tr.mean) / np.asarray(tr.std)
    x = torch.from_numpy((te.x.astype(np.float32) * scale[:, None, None].astype(np.float32)
                          + shift[:, None, None].astype(np.float32)).reshape(30, -1))
    acc = float((t.model(x).argmax(1).numpy() == te.y).mean())
    assert t.evaluate()["te"]["acc"] == pytest.approx(acc)
    f = t.features(te.x)
    torch.testing.assert_close(f, t.model.features(x))


def _resnet(stop_at=None):
    torch.manual_seed(1)
    return Recorder(CifarResNet(20, 10, width=2), stop_at=stop_at)


@pytest.mark.parametrize("optimizer", ["torch", "fused"])
@pytest.mark.slow
def test_ctrl_c_and_resume_with_augmentation_is_exact(tmp_path, optimizer):
    make_cifar10(tmp_path / "c", n_train=70, n_test=20)
    cfg = cfg_(data="cifar10", data_dir=str(tmp_path / "c"), epochs=2, batch_size=16, optimizer=optimizer,
               label_noise=0.2, crop_padding=3)
    with pytest.warns(UserWarning, match="official"):
        full = train(cfg, model=_resnet(), out_dir=tmp_path / "full")
    with pytest.warns(UserWarning), pytest.raises(KeyboardInterrupt):
        train(cfg, model=_resnet(stop_at=7), out_dir=tmp_path / "cut")  # epoch 2, during its step 2 of 5
    st = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert (st["epoch"], st["batch"]) == (1, 2)
    with pytest.warns(UserWarning):
        resumed = train(cfg, model=_resnet(), out_dir=tmp_path / "cut", resume=tmp_path / "cut" / "checkpoint.pt")
    assert strip(full.history) == strip(resumed.history)
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert np.array_equal(full.ledger.history(), resumed.ledger.history())
    # the resumed run saw the same augmented images in the rest of epoch 2
    for a, b in zip(full.model.seen[7:], resumed.model.seen):
        assert torch.equal(a, b)
    assert len(full.model.seen[7:]) == len(resumed.model.seen) == 3


def test_cifar_config_end_to_end_with_label_noise_in_the_ledger(tmp_path):
    _, (xtr, ytr), _ = make_cifar10(tmp_path, n_train=120, n_test=40, seed=2)
    cfg = cfg_(data="cifar10", data_dir=str(tmp_path), label_noise=0.25, epochs=1, train_subset=100)
    with pytest.warns(UserWarning):
        t = Trainer(cfg)
    assert t.data.n == 100 and t.data.x.dtype == torch.uint8 and tuple(t.data.x.shape[1:]) == (3, 32, 32)
    assert t.test_data["test"].n == 40
    flipped = t.data.host("flipped")
    assert flipped.sum() == 25 and np.array_equal(t.data.host("y") != t.data.host("y_clean"), flipped)
    avail, got = np.bincount(ytr, minlength=10), np.bincount(t.data.host("y_clean"), minlength=10)
    short = avail < got.max()  # classes with fewer images than the others get: all of theirs
    assert np.array_equal(got[short], avail[short]) and got[~short].max() - got[~short].min() <= 1
    r = t.fit()
    s = r.ledger.summary()
    assert s["presented_flipped"].tolist() == [25]  # the ledger knows exactly the flipped images
    assert s["memorized"][0] == pytest.approx(r.ledger.history()[0][flipped].mean())
    assert r.final["memorized"] == pytest.approx(s["memorized"][0])
    with pytest.warns(UserWarning):
        assert Trainer(cfg.replace(n_test=0)).test_data == {}


@pytest.mark.slow
def test_digits_learn_and_noise_is_tracked():
    cfg = cfg_(data="digits", model="resnet20", width=8, epochs=4, batch_size=64, lr=0.1, milestones=[3],
               label_noise=0.1)
    r = train(cfg)
    last = r.final
    assert last["test"]["test"]["acc"] > 0.85  # chance 0.1
    assert r.ledger.summary()["memorized"].shape == (4,)
    assert last["memorized"] < 0.5  # noisy labels are mostly not fitted after 4 epochs


def test_image_folder_config(tmp_path):
    make_tree(tmp_path / "f" / "train", per_class=(20, 20, 20), size=(10, 10), seed=1)
    make_tree(tmp_path / "f" / "test", per_class=(5, 5, 5), size=(10, 10), seed=2)
    os.environ["LRDECAY_CACHE"] = str(tmp_path / "cache")
    try:
        cfg = cfg_(data="folder", data_dir=str(tmp_path / "f"), image_size=8, model="resnet20", width=2, epochs=1)
        r = train(cfg)
    finally:
        del os.environ["LRDECAY_CACHE"]
    assert r.final["test"]["test"]["acc"] is not None
    assert r.model.input_shape == (3, 8, 8)


@pytest.mark.slow
def test_channels_last_and_bf16_autocast_on_cpu():
    ds = digits("test")
    # one full-batch step: the logged loss is the first forward's, before training lets rounding grow
    base = cfg_(model="resnet20", width=4, epochs=1, batch_size=None, optimizer="fused")
    plain = train(base, dataset=ds)
    cl = train(base.replace(channels_last=True), dataset=ds)
    assert cl.final["train_loss"] == pytest.approx(plain.final["train_loss"], rel=1e-5)
    assert cl.model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    t = Trainer(base.replace(amp=True), dataset=ds)
    dtypes = []
    t.model.conv.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    r = t.fit()
    assert torch.bfloat16 in dtypes and t.model.conv.weight.dtype == torch.float32
    assert r.final["train_loss"] == pytest.approx(plain.final["train_loss"], rel=0.02)  # bf16: ~3 digits


@pytest.mark.parametrize(
    "kw,err,match",
    [
        (dict(data="imagenet"), ValueError, "data must be None"),
        (dict(data="cifar10"), ValueError, "needs data_dir"),
        (dict(data="digits", data_dir="/x"), ValueError, "data_dir is only used"),
        (dict(data_dir="/x"), ValueError, "data_dir is only used"),
        (dict(data="digits", probe_groups=True), ValueError, "probe_groups needs the pattern groups"),
        (dict(augment="rotate"), ValueError, "augment must be one of"),
        (dict(crop_padding=-1), ValueError, "crop_padding"),
        (dict(train_subset=0), ValueError, "train_subset"),
        (dict(amp=1), TypeError, "amp must be a bool"),
        (dict(channels_last="yes"), TypeError, "channels_last must be a bool"),
    ],
)
def test_config_errors(kw, err, match):
    with pytest.raises(err, match=match):
        cfg_(**kw)


def test_trainer_errors(tmp_path):

    with pytest.raises(ValueError, match="augment='crop' needs uint8 image data"):
        Trainer(cfg_(augment="crop"), dataset=clusters(40))
    ds = tiny_images()
    with pytest.raises(ValueError, match=r"images are \(3, 5, 5\), the training images \(3, 6, 5\)"):
        Trainer(cfg_(), dataset=ds, test_sets={"t": tiny_images(shape=(3, 5, 5))})
    with pytest.raises(ValueError, match="holds float features but the training set holds uint8 images"):
        Trainer(cfg_(), dataset=ds, test_sets={"t": {"x": ds.x.astype(np.float32), "y": ds.y}})
    with pytest.raises(ValueError, match=r"uint8 images must have shape \(n, C, H, W\)"):
        Trainer(cfg_(), dataset={"x": ds.x.reshape(90, -1), "y": ds.y})
    with pytest.raises(ValueError, match=r"train_subset must be in \[1, 1442\]"):
        Trainer(cfg_(data="digits", train_subset=5000))
    from lrdecay.data import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        Trainer(cfg_(data="cifar10", data_dir=str(tmp_path)))
    t = Trainer(cfg_(), dataset=ds)
    with pytest.raises(TypeError, match=r"x must be uint8 images of shape \(n, 3, 6, 5\)"):
        t.features(ds.x.astype(np.float32))


@pytest.mark.slow
def test_cli_train_on_images(tmp_path, capsys):
    from lrdecay.cli import main
    from lrdecay.trainer import read_jsonl

    rc = main(["train", "--data", "digits", "--model", "resnet20", "--width", "4", "--epochs", "1", "--device", "cpu",
               "--label-noise", "0.1", "--augment", "crop", "--crop-padding", "1", "--channels-last",
               "--out", str(tmp_path / "run")])
    assert rc == 0
    assert "test acc" in capsys.readouterr().out
    cfg = TrainConfig.from_json(tmp_path / "run" / "config.json")
    assert (cfg.data, cfg.augment, cfg.crop_padding, cfg.channels_last, cfg.label_noise) == ("digits", "crop", 1, True, 0.1)
    assert read_jsonl(tmp_path / "run" / "log.jsonl")[0]["memorized"] is not None

    make_cifar10(tmp_path / "c", n_train=40, n_test=10)
    with pytest.warns(UserWarning):
        rc = main(["train", "--data", "cifar10", "--data-dir", str(tmp_path / "c"), "--model", "resnet20", "--width",
                   "2", "--epochs", "1", "--device", "cpu", "--train-subset", "30", "--batch-size", "10", "--out", str(tmp_path / "c10")])
    assert rc == 0 and TrainConfig.from_json(tmp_path / "c10" / "config.json").train_subset == 30

    with pytest.raises(SystemExit) as e:
        main(["train", "--data", "cifar10", "--data-dir", str(tmp_path / "nowhere"), "--epochs", "1"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "cifar-10-batches-py" in err and "nowhere" in err
    with pytest.raises(SystemExit):
        main(["train", "--data", "cifar10", "--epochs", "1"])
    assert "needs data_dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--data", "digits", "--test-data", "t.npz"])
    assert "brings its own test split" in capsys.readouterr().err
