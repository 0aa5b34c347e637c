"""lrdecay._validate: the one set of argument checks every module uses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lrdecay._validate import check_bool, check_int, check_real, check_str


def test_check_int():
    assert check_int("k", 3, 1, 5) == 3 and type(check_int("k", np.int64(3), 1)) is int
    assert check_int("k", 2**70) == 2**70
    for bad in [True, np.bool_(False), 2.0, "3", None, np.float32(1)]:
        with pytest.raises(TypeError, match=r"k must be an int in \[1, 5\], got"):
            check_int("k", bad, 1, 5)
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 5\], got 6"):
        check_int("k", 6, 1, 5)
    with pytest.raises(ValueError, match=r"k must be an int >= 0, got -1"):
        check_int("k", -1, 0)


def test_check_real():
    assert check_real("x", 1) == 1.0 and type(check_real("x", np.float32(0.5))) is float
    assert check_real("x", 0.0, 0.0, 1.0) == 0.0
    for bad in [math.nan, math.inf, -math.inf]:
        with pytest.raises(ValueError, match="x must be a finite number"):
            check_real("x", bad)
    for bad in [True, "0.1", None, torch.tensor(0.1), np.bool_(True)]:
        with pytest.raises(TypeError, match="x must be a number"):
            check_real("x", bad)
    with pytest.raises(ValueError, match=r"x must be a finite number in \(0.0, 1.0\], got 0.0"):
        check_real("x", 0.0, 0.0, 1.0, lo_open=True)
    with pytest.raises(ValueError, match=r"in \[0.0, 1.0\], got 1.5"):
        check_real("x", 1.5, 0.0, 1.0)


def test_check_bool_and_str():
    assert check_bool("b", np.bool_(True)) is True
    with pytest.raises(TypeError, match="b must be a bool, got int 1"):
        check_bool("b", 1)
    assert check_str("s", "a", ["a", "b"]) == "a"
    with pytest.raises(ValueError, match=r"s must be one of \['a', 'b'\], got 'c'"):
        check_str("s", "c", ("a", "b"))
    with pytest.raises(TypeError, match=r"s must be one of \['a', 'b'\], got int 1"):
        check_str("s", 1, ("a", "b"))


def test_every_module_reports_the_same_way():
    # The same kind of bad input reads the same in noise, data, schedules, models, the trainer's config,
    # the ledger and the optimizer: they share the checks.
    from lrdecay import Ledger, schedules
    from lrdecay.data import pattern_dataset
    from lrdecay.models import MLP
    from lrdecay.noise import corrupt_labels
    from lrdecay.optim import FusedSGD
    from lrdecay.trainer import TrainConfig

    cases = [
        (lambda: corrupt_labels([0], True, 0.1), "n_classes"),
        (lambda: pattern_dataset(True), "n"),
        (lambda: schedules.Step(True), "step_size"),
        (lambda: MLP(4, 2, width=True), "width"),
        (lambda: TrainConfig(epochs=True), "epochs"),
        (lambda: Ledger(True), "n_samples"),
    ]
    for make, name in cases:
        with pytest.raises(TypeError, match=rf"^{name} must be an int .*, got bool True$"):
            make()
    reals = [
        (lambda: corrupt_labels([0], 3, "0.1"), "rate"),
        (lambda: schedules.Step(3, gamma="0.1"), "gamma"),
        (lambda: TrainConfig(lr="0.1"), "lr"),
        (lambda: FusedSGD([torch.zeros(1, requires_grad=True)], lr="0.1"), "lr"),
    ]
    for make, name in reals:
        with pytest.raises(TypeError, match=rf"^{name} must be a number( in .*)?, got str '0.1'$"):
            make()
    with pytest.raises(ValueError, match="lr must be a finite number"):
        FusedSGD([torch.zeros(1, requires_grad=True)], lr=float("inf"))


def test_config_keeps_plain_python_values():
    from lrdecay.trainer import TrainConfig

    cfg = TrainConfig(epochs=np.int64(3), lr=np.float32(0.5), milestones=[np.int64(1), 2])
    assert type(cfg.epochs) is int and type(cfg.lr) is float and all(type(m) is int for m in cfg.milestones)
    assert TrainConfig.from_json(cfg.to_json()) == cfg
