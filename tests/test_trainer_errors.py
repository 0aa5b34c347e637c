"""Bad input: a clear ValueError/TypeError naming the field and its range, before any training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lrdecay.trainer import TrainConfig, Trainer, train

from support import clusters, small_config


@pytest.mark.parametrize(
    "field,value,exc,match",
    [
        ("epochs", 0, ValueError, r"epochs must be an int >= 1, got 0"),
        ("epochs", 2.0, TypeError, "epochs must be an int"),
        ("batch_size", 0, ValueError, "batch_size must be an int >= 1"),
        ("batch_size", True, TypeError, "batch_size must be an int"),
        ("n_train", -5, ValueError, "n_train must be an int >= 1"),
        ("n_test", -1, ValueError, "n_test must be an int >= 0"),
        ("lr", -0.1, ValueError, r"lr must be a finite number in \[0.0, inf\]"),
        ("lr", float("nan"), ValueError, "lr must be a finite number"),
        ("lr", "0.1", TypeError, "lr must be a number"),
        ("momentum", -1.0, ValueError, "momentum"),
        ("weight_decay", float("inf"), ValueError, "weight_decay"),
        ("dampening", -0.5, ValueError, "dampening"),
        ("label_noise", 1.5, ValueError, r"label_noise must be a finite number in \[0.0, 1.0\]"),
        ("gamma", 0.0, ValueError, "gamma must be > 0"),
        ("milestones", [5, 3], ValueError, "milestones must be strictly increasing"),
        ("milestones", [0], ValueError, r"milestones\[0\] must be an int >= 1"),
        ("milestones", "10,20", TypeError, "milestones must be a list"),
        ("step_size", 0, ValueError, "step_size"),
        ("schedule", "linear", ValueError, "schedule must be one of"),
        ("optimizer", "adam", ValueError, "optimizer must be one of"),
        ("model", "vgg", ValueError, "model must be one of"),
        ("activation", "swish", ValueError, "activation must be one of"),
        ("width", 0, ValueError, "width must be an int >= 1"),
        ("seed", -1, ValueError, "seed must be an int >= 0"),
        ("seed", 2**63, ValueError, r"seed must be in \[0, 2\*\*63\)"),
        ("device", "tpu", ValueError, "device must be"),
        ("eval_every", 0, ValueError, "eval_every must be an int >= 1"),
        ("checkpoint_every", -1, ValueError, "checkpoint_every must be an int >= 0"),
        ("drop_last", 1, TypeError, "drop_last must be a bool"),
        ("preset", 3, TypeError, "preset must be a str"),
    ],
)
def test_bad_config_values(field, value, exc, match):
    with pytest.raises(exc, match=match):
        TrainConfig(**{field: value})
    cfg = TrainConfig()
    setattr(cfg, field, value)  # a config mutated after construction is re-validated by train()
    with pytest.raises(exc, match=match):
        train(cfg, dataset=clusters(20))


def test_nesterov_needs_momentum():
    with pytest.raises(ValueError, match="nesterov"):
        TrainConfig(nesterov=True, momentum=0.0)


def test_unknown_config_fields_and_bad_json(tmp_path):
    with pytest.raises(ValueError, match=r"unknown config field\(s\) \['learning_rate'\]"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(ValueError, match="not valid JSON"):
        TrainConfig.from_json("{ nope")
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        train({"epochs": 1}, dataset=clusters(20))


@pytest.mark.parametrize(
    "field,value,exc,match",
    [
        ("y", np.zeros(19, np.int64), ValueError, r"dataset.y must have shape \(20,\)"),
        ("group", np.zeros(21, np.int32), ValueError, r"dataset.group must have shape \(20,\)"),
        ("flipped", np.zeros(3, bool), ValueError, r"dataset.flipped must have shape \(20,\)"),
        ("y_clean", np.zeros(22, np.int64), ValueError, r"dataset.y_clean must have shape \(20,\)"),
        ("y", np.full(20, 4), ValueError, r"dataset.y labels must be in \[0, 4\)"),
        ("y", np.full(20, -1), ValueError, r"dataset.y labels must be in \[0, 4\)"),
        ("y", np.zeros(20, np.float32), TypeError, "dataset.y must be integer"),
        ("x", np.zeros((20, 12), np.int64), TypeError, "dataset.x must be floating point"),
        ("x", np.zeros(20, np.float32), ValueError, "dataset.x must have shape"),
        ("x", "abc", TypeError, "dataset.x must be a numpy array or torch tensor"),
        ("group", np.full(20, 5), ValueError, "group has ids up to 5 but only 2 group_names"),
    ],
)
def test_dataset_arrays_that_disagree(field, value, exc, match):
    ds = clusters(20)
    ds[field] = value
    with pytest.raises(exc, match=match):
        train(small_config(), dataset=ds)


def test_test_set_that_disagrees_is_named():
    ds = clusters(20)
    bad = clusters(10)
    bad["y"] = bad["y"][:5]
    with pytest.raises(ValueError, match=r"test_sets\['probe'\].y must have shape \(10,\)"):
        train(small_config(), dataset=ds, test_sets={"probe": bad})
    with pytest.raises(TypeError, match="test_sets must be a dict"):
        train(small_config(), dataset=ds, test_sets=[bad])


def test_dataset_of_the_wrong_kind():
    with pytest.raises(TypeError, match="dataset must be a PatternDataset"):
        train(small_config(), dataset=np.zeros((4, 4)))


def test_model_output_width_must_equal_classes(tmp_path):
    ds = clusters(20)  # 4 classes
    with pytest.raises(ValueError, match=r"n_classes=4.*\(2, 3\)"):
        train(small_config(batch_size=10), dataset=ds, model=nn.Linear(12, 3), out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="model failed on a batch"):
        train(small_config(batch_size=10), dataset=ds, model=nn.Linear(7, 4))
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        train(small_config(batch_size=10), dataset=ds, model=lambda x: x)


def test_batch_size_larger_than_dataset():
    with pytest.raises(ValueError, match=r"batch_size must be in \[1, n_train=20\]"):
        train(small_config(batch_size=21), dataset=clusters(20))


def test_batchnorm_batch_of_one_is_refused_up_front():
    with pytest.raises(ValueError, match="batch of 1 sample.*drop_last=True"):
        train(small_config(batch_size=19), dataset=clusters(20))
    r = train(small_config(batch_size=19, drop_last=True, epochs=1), dataset=clusters(20))
    assert r.final["presented"] == 19


def test_cuda_device_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available")
    with pytest.raises(ValueError, match="CUDA is not available"):
        Trainer(small_config(device="cuda"), dataset=clusters(20))
