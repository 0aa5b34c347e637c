"""Fuzz: lrdecay.models, lrdecay.trainer (TrainConfig, train), the `lrdecay data` command, output folders
and lrdecay.images' ImageDataset (see tests/support/fuzz.py)."""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from support.fuzz import FEW, FUZZ, anything, clean_outcome, not_a_number, not_an_int, not_finite, rejected
from lrdecay._outdir import MARKER, OutputDir, OutputDirError
from lrdecay.images import ImageDataset
from lrdecay.models import ACTIVATIONS, MODEL_NAMES, make_model
from lrdecay.trainer import TrainConfig, train
from lrdecay.trainer.config import OPTIMIZERS, SCHEDULES

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# ---------------------------------------------------------------------------------------- models


@FUZZ
@given(st.integers(1, 20), st.integers(2, 7), st.integers(1, 12), st.integers(1, 3),
       st.sampled_from(sorted(ACTIVATIONS)), st.booleans(), st.integers(1, 5))
def test_mlp_valid_arguments(d, k, width, depth, activation, batchnorm, batch):
    m = make_model("mlp", in_features=d, n_classes=k, width=width, depth=depth, activation=activation,
                   batchnorm=batchnorm)
    m.eval()
    x = torch.randn(batch, d)
    out = m(x)
    assert out.shape == (batch, k) and torch.isfinite(out).all()
    torch.testing.assert_close(out, m.head(m.features(x)), rtol=0, atol=0)
    hidden = [mod for mod in m.modules() if isinstance(mod, torch.nn.Linear)]
    assert len(hidden) == depth + 1 and hidden[0].in_features == d and hidden[-1].out_features == k


@FUZZ
@given(st.sampled_from(["name", "in_features", "n_classes", "width", "depth", "activation"]), st.data())
def test_make_model_one_bad_argument(name, data):
    kw = dict(in_features=6, n_classes=3, width=4, depth=1)
    bad = data.draw({
        "name": st.text(max_size=6).filter(lambda s: s not in ("mlp", "resnet20", "resnet56", "resnet18")),
        "in_features": st.one_of(st.integers(max_value=0), not_an_int),
        "n_classes": st.one_of(st.integers(max_value=1), not_an_int),
        "width": st.one_of(st.integers(max_value=0), not_an_int.filter(lambda v: v is not None)),
        "depth": st.one_of(st.integers(max_value=0), not_an_int.filter(lambda v: v is not None)),
        "activation": st.text(max_size=5).filter(lambda s: s not in ACTIVATIONS),
    }[name])
    if name == "name":
        rejected(make_model, "model", bad, **kw)
    else:
        rejected(make_model, name, "mlp", **{**kw, name: bad})


# ---------------------------------------------------------------------------------------- TrainConfig

_valid_fields = {
    "n_train": st.integers(1, 10**6), "n_test": st.integers(0, 10**6), "label_noise": st.one_of(st.none(), st.floats(0, 1)),
    "width": st.one_of(st.none(), st.integers(1, 4096)), "depth": st.one_of(st.none(), st.integers(1, 10)),
    "model": st.sampled_from(MODEL_NAMES), "activation": st.sampled_from(sorted(ACTIVATIONS)), "batchnorm": st.booleans(), "epochs": st.integers(1, 1000),
    "batch_size": st.one_of(st.none(), st.integers(1, 4096)), "drop_last": st.booleans(),
    "optimizer": st.sampled_from(OPTIMIZERS), "lr": st.floats(0, 10), "momentum": st.floats(0.01, 1),
    "weight_decay": st.floats(0, 1), "schedule": st.sampled_from(SCHEDULES),
    "milestones": st.lists(st.integers(1, 500), unique=True, max_size=4).map(sorted),
    "gamma": st.floats(1e-6, 0.999), "step_size": st.integers(1, 100), "eta_min": st.floats(0, 1e-3),
    "max_decays": st.one_of(st.none(), st.integers(0, 10)), "auto_window": st.integers(3, 20),
    "auto_fraction": st.floats(0, 1), "auto_min_stage": st.one_of(st.none(), st.integers(1, 20)),
    "plateau_patience": st.integers(0, 10), "plateau_threshold": st.floats(0, 0.1),
    "decay_train_acc": st.lists(st.floats(0, 1), unique=True, max_size=3).map(sorted),
    "snapshot_epochs": st.lists(st.integers(1, 100), max_size=3),
    "seed": st.integers(0, 2**63 - 1), "device": st.sampled_from(["auto", "cpu", "cuda", "cuda:1"]),
    "eval_every": st.integers(1, 10), "checkpoint_every": st.integers(0, 10), "plots": st.booleans(),
    "val_fraction": st.floats(0, 0.5),
}
_bad_fields = {
    "n_train": st.one_of(st.integers(max_value=0), not_an_int), "n_test": st.one_of(st.integers(max_value=-1), not_an_int),
    "epochs": st.one_of(st.integers(max_value=0), not_an_int), "lr": st.one_of(st.floats(max_value=-1e-12), not_finite, not_a_number),
    "momentum": st.one_of(st.floats(max_value=-1e-12), not_finite, not_a_number),
    "label_noise": st.one_of(st.floats(1.0001, 10), st.floats(max_value=-1e-12), not_finite),
    "gamma": st.one_of(st.floats(max_value=0), not_finite, not_a_number), "seed": st.one_of(st.integers(max_value=-1), st.integers(2**63, 2**70), not_an_int),
    "schedule": st.text(max_size=6).filter(lambda s: s not in SCHEDULES),
    "model": st.one_of(st.text(max_size=6).filter(lambda s: s not in MODEL_NAMES), st.none()), "optimizer": st.text(max_size=6).filter(lambda s: s not in OPTIMIZERS),
    "device": st.text(max_size=6).filter(lambda s: s not in ("auto", "cpu", "cuda") and not (s.startswith("cuda:") and s[5:].isdigit())),
    "batch_size": st.one_of(st.integers(max_value=0), st.just(2.0)), "eval_every": st.one_of(st.integers(max_value=0), not_an_int),
    "milestones": st.sampled_from([[0], [3, 2], [1, 1], "10,20", [1.5]]), "plots": st.one_of(st.integers(), st.none()),
    "auto_window": st.one_of(st.integers(max_value=2), not_an_int), "auto_fraction": st.one_of(st.floats(max_value=-1e-12), not_finite),
    "plateau_patience": st.one_of(st.integers(max_value=-1), not_an_int), "max_decays": st.one_of(st.integers(max_value=-1), st.just(1.5)),
    "decay_train_acc": st.sampled_from([[1.5], [0.5, 0.2], "0.5", [-0.1]]), "snapshot_epochs": st.sampled_from([[0], "1", [1.5]]),
    "classes": st.sampled_from([[0, 1], [3], "0,1"]),  # any classes without data (real images) is refused
    "val_fraction": st.one_of(st.floats(0.5000001, 10), st.floats(max_value=-1e-12), not_finite),
}


@FUZZ
@given(st.fixed_dictionaries({}, optional=_valid_fields))
def test_train_config_valid_fields_round_trip(fields):
    if fields.get("schedule") == "train_acc" and not fields.get("decay_train_acc"):
        fields["decay_train_acc"] = [0.5]
    if fields.get("schedule") == "auto_val" and not fields.get("val_fraction"):
        fields["val_fraction"] = 0.1
    cfg = TrainConfig(**fields)
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    if not cfg.host_schedule:
        for e in range(min(cfg.epochs, 30)):
            assert math.isfinite(cfg.lr_at_epoch(e)) and cfg.lr_at_epoch(e) >= 0


@FUZZ
@given(st.sampled_from(sorted(_bad_fields)), st.data())
def test_train_config_one_bad_field(name, data):
    rejected(TrainConfig, name, **{name: data.draw(_bad_fields[name])})
    rejected(TrainConfig.from_dict, "nope", {"nope": 1})


@FUZZ
@given(st.one_of(st.lists(st.integers(0, 10**6), unique=True, min_size=2, max_size=6),
                 st.lists(st.integers(), max_size=1), st.lists(st.integers(0, 5), min_size=2, max_size=4),
                 st.lists(st.integers(max_value=-1), min_size=2, max_size=3), st.just("0,1"), st.just([1.5, 2]),
                 st.just([True, 2])))
def test_train_config_classes(classes):
    """Real images' ``classes``: at least two distinct indices >= 0, kept as Python ints, else refused by name."""
    ok = (isinstance(classes, list) and len(classes) >= 2 and len(set(classes)) == len(classes)
          and all(type(c) is int and c >= 0 for c in classes))
    if ok:
        cfg = TrainConfig(data="digits", classes=classes)
        assert cfg.classes == classes and TrainConfig.from_json(cfg.to_json()) == cfg
    else:
        rejected(TrainConfig, "classes", data="digits", classes=classes)


# ---------------------------------------------------------------------------------------- train


@FEW
@given(n=st.integers(12, 80), d=st.integers(1, 6), k=st.integers(2, 4), epochs=st.integers(1, 3),
       batch=st.integers(2, 40), drop_last=st.booleans(), optimizer=st.sampled_from(OPTIMIZERS),
       schedule=st.sampled_from(SCHEDULES), ledger=st.booleans(), noise=st.booleans(), seed=st.integers(0, 2**63 - 1))
def test_train_tiny_runs(n, d, k, epochs, batch, drop_last, optimizer, schedule, ledger, noise, seed):
    rng = np.random.default_rng(seed % 2**32)
    y = rng.integers(0, k, n)
    data = {"x": rng.normal(size=(n, d)).astype(np.float32), "y": y, "n_classes": k}
    if noise:
        data["y_clean"] = y.copy()
        data["flipped"] = rng.random(n) < 0.3
        data["y"] = np.where(data["flipped"], (y + 1) % k, y)
    fit = n - round(0.25 * n) if schedule == "auto_val" else n  # auto_val trains on the rest of a 25% split
    batch = min(batch, fit)
    cfg = TrainConfig(epochs=epochs, batch_size=batch, drop_last=drop_last, optimizer=optimizer, schedule=schedule,
                      milestones=[1], ledger=ledger, width=4, depth=1, batchnorm=False, device="cpu", progress=False,
                      plots=False, seed=seed, decay_train_acc=[0.5] if schedule == "train_acc" else [],
                      val_fraction=0.25 if schedule == "auto_val" else 0.0)
    r = train(cfg, dataset=data)
    assert [h["epoch"] for h in r.history] == list(range(1, epochs + 1))
    tail = 0 if drop_last else fit % batch
    for e, h in enumerate(r.history):
        assert h["presented"] == fit - (fit % batch) + tail
        if not cfg.host_schedule:
            assert h["lr"] == pytest.approx(cfg.lr_at_epoch(e), rel=1e-6)
        assert 0 <= h["train_acc"] <= 1 and math.isfinite(h["train_loss"])
    if ledger:
        assert r.ledger.n_epochs == epochs


# ---------------------------------------------------------------------------------------- lrdecay data

_data_flags = st.fixed_dictionaries({}, optional={
    "--n": st.one_of(st.integers(-2, 300), st.just("x"), st.just("2.5")),
    "--seed": st.one_of(st.integers(-1, 2**64), st.just("s")),
    "--label-noise": st.one_of(st.floats(-0.5, 1.5), st.just(math.nan), st.just("y")),
    "--preset": st.sampled_from(["ps10", "toy", "ps10-2c", "nope"]),
    "--split": st.sampled_from(["train", "test", "val"]),
})


@FEW
@given(flags=_data_flags, overwrite=st.booleans(), exists=st.booleans())
def test_data_command_writes_a_whole_file_or_nothing(tmp_path_factory, flags, overwrite, exists):
    from lrdecay.cli import main

    out = tmp_path_factory.mktemp("data") / "d.npz"
    if exists:
        out.write_bytes(b"previous")
    argv = ["data", "--out", str(out)] + [str(x) for kv in flags.items() for x in kv] + (["--overwrite"] if overwrite else [])
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    if code == 0:
        with np.load(out) as z:
            assert z["x"].shape[0] == int(flags.get("--n", 50_000 if "--n" not in flags else 0))
        assert not exists or overwrite
    else:
        assert code == 2
        assert out.read_bytes() == b"previous" if exists else not out.exists()
    assert sorted(os.listdir(out.parent)) == (["d.npz"] if code == 0 or exists else [])


# ---------------------------------------------------------------------------------------- output folders

_files = st.lists(st.sampled_from(["log.jsonl", "a.png", "notes.txt", "sub"]), unique=True, max_size=3)


@FUZZ
@given(content=_files, marked=st.booleans(), resume=st.booleans(), overwrite=st.booleans())
def test_output_folder_rule(tmp_path_factory, content, marked, resume, overwrite):
    folder = tmp_path_factory.mktemp("out")
    for name in content:
        (folder / name).mkdir() if name == "sub" else (folder / name).write_text(name)
    if marked:
        (folder / MARKER).write_text("{}")
    before = sorted(os.listdir(folder))
    outputs = ["log.jsonl", "*.png"]
    ours = all(n in ("log.jsonl", "a.png") for n in content)
    expect_ok = not (resume and overwrite) and (not content or resume or (overwrite and ours))
    try:
        with OutputDir(folder, kind="fuzz", resume=resume, overwrite=overwrite, outputs=outputs) as out:
            assert out.held
            after = sorted(n for n in os.listdir(folder) if n != MARKER)
    except OutputDirError:
        assert not expect_ok
        assert sorted(os.listdir(folder)) == before  # refused: nothing changed
        return
    assert expect_ok
    assert after == ([] if overwrite else sorted(content))


# ---------------------------------------------------------------------------------------- ImageDataset


@st.composite
def image_dataset(draw):
    n, k = draw(st.integers(2, 40)), draw(st.integers(2, 5))
    y = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)), dtype=np.int64)
    x = np.arange(n * 3 * 2 * 2, dtype=np.uint8).reshape(n, 3, 2, 2)
    return ImageDataset(x=x, y=y, class_names=tuple(f"c{i}" for i in range(k)), name="fuzz", split="train")


@FUZZ
@given(image_dataset(), st.data())
def test_image_dataset_methods(ds, data):
    n, k = len(ds), ds.n_classes
    m = data.draw(st.integers(1, n))
    sub = ds.balanced_subset(m, seed=data.draw(st.integers(0, 2**64 - 1)))
    counts, full = np.bincount(sub.y, minlength=k), np.bincount(ds.y, minlength=k)
    assert len(sub) == m and (counts <= full).all()
    # as equal as the classes allow: a class below another's count by 2+ has given all it has
    assert all(counts[a] == full[a] or counts[a] >= counts[b] - 1 for a in range(k) for b in range(k))
    noisy = ds.with_label_noise(data.draw(st.floats(0, 1)), seed=data.draw(st.integers(0, 2**64 - 1)))
    assert np.array_equal(noisy.flipped, noisy.y != noisy.y_clean) and np.array_equal(noisy.y_clean, ds.y)
    idx = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=10)))
    assert np.array_equal(ds.subset(idx).x, ds.x[idx])
    present = sorted(set(ds.y.tolist()))
    if len(present) >= 2:
        keep = data.draw(st.lists(st.sampled_from(present), min_size=2, max_size=len(present), unique=True))
        sel = ds.select_classes(keep)
        assert np.array_equal(np.sort(sel.x[:, 0, 0, 0]), np.sort(ds.x[np.isin(ds.y, keep)][:, 0, 0, 0]))
        assert set(sel.y.tolist()) <= set(range(len(keep)))
    rejected(ds.balanced_subset, "n", data.draw(st.one_of(st.integers(max_value=0), st.integers(n + 1, 10**6), not_an_int)))
    rejected(ds.subset, "indices", data.draw(st.sampled_from([np.array([n]), np.array([], np.int64), np.array([0.5]), np.ones(n + 1, bool)])))


@FEW
@given(image_dataset(), anything, anything)
def test_image_dataset_anything(ds, a, b):
    for call in (lambda: ds.subset(a), lambda: ds.balanced_subset(a, seed=b), lambda: ds.select_classes(a),
                 lambda: ds.with_label_noise(a, seed=b)):
        out = clean_outcome(call)
        assert out is None or isinstance(out, ImageDataset)


def test_train_config_fields_are_all_fuzzed():
    # a new TrainConfig field must be added to the strategies above
    fuzzed = set(_valid_fields) | set(_bad_fields)
    untested = {f.name for f in dataclasses.fields(TrainConfig)} - fuzzed
    assert untested <= {"probe_groups", "dampening", "nesterov", "cuda_graph", "ledger", "eval_train", "progress",
                        "preset", "data", "data_dir", "image_size", "train_subset", "augment", "crop_padding",
                        "channels_last", "amp"}, untested
