"""The schedule registry: every name a config accepts defined once, read by the config, the trainer's
RunSchedule and the experiment runner, and each device form equal to its torch equivalent per epoch."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
import torch

from lrdecay import schedules as S
from lrdecay.optim import registry as R
from lrdecay.trainer import TrainConfig
from lrdecay.trainer import config as config_mod
from lrdecay.trainer.fields import SCHEDULE, fields_with


def test_the_config_accepts_exactly_the_registered_names_in_registry_order():
    assert config_mod.SCHEDULES == tuple(R.REGISTRY)
    assert config_mod.HOST_SCHEDULES == R.host_names() == ("auto", "auto_val", "plateau", "train_acc")
    assert R.device_names() == ("constant", "multistep", "step", "exponential", "cosine")
    for name, spec in R.REGISTRY.items():
        assert spec.name == name
        assert (spec.device is None) == spec.is_host == (spec.reads is not None)
    with pytest.raises(ValueError, match=r"schedule must be one of \['constant', .*got 'linear'"):
        R.spec("linear")


def test_registry_fields_are_the_configs_schedule_fields():
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    assert R.all_fields() <= names
    assert R.all_fields() == set(fields_with(TrainConfig, SCHEDULE))
    assert {k: set(v) for k, v in config_mod.SCHEDULE_FIELDS.items()} == {
        n: set(R.fields_of(n)) for n in R.REGISTRY if R.fields_of(n)}
    assert R.host_only_fields() == {"auto_window", "auto_fraction", "auto_min_stage", "max_decays",
                                    "plateau_patience", "plateau_threshold", "decay_train_acc"}
    assert R.readers_of("gamma") == ("multistep", "step", "exponential", "auto", "auto_val", "plateau", "train_acc")
    assert R.readers_of("seed") == ()


class _Recorder:
    """A config stand-in that records the fields read."""

    def __init__(self, cfg):
        object.__setattr__(self, "_cfg", cfg)
        object.__setattr__(self, "read", set())

    def __getattr__(self, name):
        self.read.add(name)
        return getattr(self._cfg, name)


@pytest.mark.parametrize("name", list(R.REGISTRY))
def test_each_spec_reads_only_its_fields(name):
    cfg = TrainConfig(schedule=name, epochs=6, gamma=0.5, decay_train_acc=[0.5, 0.9], max_decays=2, val_fraction=0.1)
    rec = _Recorder(cfg)
    spec = R.spec(name)
    opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=cfg.lr)
    for build in (spec.device and (lambda: spec.device(rec, 4)), spec.torch and (lambda: spec.torch(opt, rec)),
                  spec.host and (lambda: spec.host(opt, rec))):
        if build is not None:
            build()
    assert rec.read - {"lr", "epochs"} == set(spec.fields)


def _torch_epoch_lrs(spec, cfg) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    sched = spec.torch(opt, cfg) if spec.torch is not None else None
    out = []
    for _ in range(cfg.epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if sched is not None:
            sched.step()
    return out


@pytest.mark.parametrize("name", R.device_names())
def test_device_forms_change_at_epoch_boundaries_and_equal_torch_per_epoch(name):
    rng = random.Random(hash(name) % 1000)
    for _ in range(5):
        epochs = rng.randint(2, 23)
        spe = rng.choice([1, 3, 7, 50])
        cfg = TrainConfig(schedule=name, epochs=epochs, lr=rng.uniform(0.01, 1.0), gamma=rng.uniform(0.1, 0.99),
                          milestones=sorted(rng.sample(range(1, 30), 3)), step_size=rng.randint(1, 5),
                          eta_min=rng.uniform(0, 0.005))
        spec = R.spec(name)
        device = spec.device(cfg, spe)
        per_epoch = [device.lr_at(e * spe) for e in range(epochs)]
        # constant within each epoch, for every step of it
        for t in range(epochs * spe):
            assert device.lr_at(t) == per_epoch[t // spe]
        assert per_epoch == [cfg.lr_at_epoch(e) for e in range(epochs)]
        assert per_epoch == pytest.approx(_torch_epoch_lrs(spec, cfg), rel=1e-12)


def test_per_epoch_forms_use_the_schedule_classes_bit_for_bit():
    cfg = TrainConfig(schedule="cosine", epochs=9, lr=0.3, eta_min=0.002)
    closed = [0.002 + (0.3 - 0.002) * (1 + math.cos(math.pi * e / 9)) / 2 for e in range(9)]
    assert [cfg.lr_at_epoch(e) for e in range(9)] == closed
    cfg = TrainConfig(schedule="exponential", epochs=9, lr=0.3, gamma=0.93)
    assert [cfg.lr_at_epoch(e) for e in range(9)] == [0.3 * S.ipow(0.93, e) for e in range(9)]
    assert R.per_epoch(S.Constant(base_lr=0.5), steps_per_epoch=4, epochs=1).lr_at(100) == 0.5


def test_the_runner_leaves_other_host_schedules_fields_at_their_defaults():
    from lrdecay.experiments.runner import config_from

    settings = dict(epochs=3, auto_window=7, plateau_patience=9, decay_train_acc=[0.5], gamma=0.5)
    assert config_from(settings, seed=0, schedule="multistep") == TrainConfig(
        epochs=3, gamma=0.5, seed=0, plots=False, progress=False)
    auto = config_from(settings, seed=0, schedule="auto")
    assert (auto.auto_window, auto.plateau_patience, auto.decay_train_acc) == (7, 3, [])
    acc = config_from(settings, seed=1, schedule="train_acc")
    assert (acc.auto_window, acc.decay_train_acc) == (5, [0.5])
