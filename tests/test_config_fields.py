"""TrainConfig's field roles, declared once on each field (lrdecay.trainer.fields): every list of fields the
package keeps is derived from them, a field without roles is refused, and run ids do not change."""

from __future__ import annotations

import dataclasses

import pytest

from lrdecay.trainer import TrainConfig
from lrdecay.trainer import config as config_mod
from lrdecay.trainer import fields as F


# ------------------------------------------------------------------------------------ declarations
def test_every_field_declares_its_roles_help_and_flag():
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    reasons = F.no_flag_reasons(TrainConfig)
    flagged = {s.name for s in F.flag_specs(TrainConfig)}
    for name in names:
        roles = F.roles_of(TrainConfig, name)
        assert len(roles & {F.HASHED, F.UNHASHED}) == 1, name
        assert (name in flagged) != (name in reasons), name
        assert name not in reasons or len(reasons[name]) > 20, name  # a reason, not a placeholder
    assert set(reasons) == {"data"}


def test_a_field_without_roles_is_refused():
    @dataclasses.dataclass
    class Partly:
        a: int = F.config_field(1, roles=[F.HASHED], help="a")
        b: int = 2

    with pytest.raises(TypeError, match="config field 'b' declares no roles"):
        F.check_roles(Partly)
    with pytest.raises(TypeError, match="'b' declares no roles"):
        F.fields_with(Partly, F.HASHED)
    with pytest.raises(TypeError, match="'b' declares no roles"):
        F.flag_specs(Partly)


def test_the_schedule_role_must_agree_with_the_registry():
    @dataclasses.dataclass
    class Claims:  # step_size is read by the step schedule
        step_size: int = F.config_field(1, roles=[F.HASHED], help="a")

    @dataclasses.dataclass
    class Overclaims:  # no schedule reads width
        width: int = F.config_field(1, roles=[F.HASHED, F.SCHEDULE], help="a")

    with pytest.raises(TypeError, match="'step_size'.*readers: \\('step',\\)"):
        F.check_roles(Claims)
    with pytest.raises(TypeError, match="'width'.*readers: \\(\\)"):
        F.check_roles(Overclaims)


@pytest.mark.parametrize("kwargs, msg", [
    (dict(roles=[F.DATA], help="x"), "exactly one of 'hashed' and 'unhashed'"),
    (dict(roles=[F.HASHED, F.UNHASHED], help="x"), "exactly one of"),
    (dict(roles=[F.HASHED, "colour"], help="x"), r"roles must be among .*got \['colour'\]"),
    (dict(roles=[F.HASHED], help=" "), "help must be"),
])
def test_config_field_refuses_an_incomplete_declaration(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        F.config_field(0, **kwargs)


def test_unhashed_fields_are_observation_fields():
    # a field left out of the run id must not change a run's numbers
    assert config_mod.UNHASHED_FIELDS <= config_mod.OBSERVATION_FIELDS


def test_derived_lists_equal_the_lists_they_replace():
    # the hand-written lists as they were before the roles were declared on the fields (DATA_FIELDS then
    # lacked `classes`, which the image data build reads)
    from lrdecay.experiments.runner import _host_schedule_fields
    from lrdecay.sweep.spec import UNHASHED_FIELDS
    from lrdecay.sweep.tasks import PER_MEMBER_FIELDS
    from lrdecay.trainer.loop import Trainer

    assert UNHASHED_FIELDS == {"progress", "plots", "checkpoint_every", "cuda_graph", "device", "data_dir"}
    assert config_mod.OBSERVATION_FIELDS == {"progress", "checkpoint_every", "plots", "eval_every", "eval_train",
                                             "cuda_graph", "device", "data_dir", "snapshot_epochs"}
    assert PER_MEMBER_FIELDS == {
        "seed", "label_noise", "optimizer", "lr", "momentum", "dampening", "weight_decay", "nesterov",
        "schedule", "milestones", "gamma", "step_size", "eta_min", "max_decays", "auto_window", "auto_fraction",
        "auto_min_stage", "plateau_patience", "plateau_threshold", "decay_train_acc",
        "n_test", "probe_groups", "ledger", "eval_every", "eval_train", "snapshot_epochs", "checkpoint_every",
        "plots", "progress"}
    assert set(Trainer.DATA_FIELDS) == {"data", "data_dir", "image_size", "train_subset", "preset", "n_train",
                                        "n_test", "label_noise", "probe_groups", "seed", "classes"}
    assert {k: set(v) for k, v in _host_schedule_fields().items()} == {
        "auto": {"auto_window", "auto_fraction", "auto_min_stage", "max_decays"},
        "auto_val": {"auto_window", "auto_fraction", "auto_min_stage", "max_decays"},
        "plateau": {"plateau_patience", "plateau_threshold", "max_decays"},
        "train_acc": {"decay_train_acc"}}


class _Recorder:
    """A config stand-in that records which fields are read."""

    def __init__(self, cfg):
        object.__setattr__(self, "_cfg", cfg)
        object.__setattr__(self, "read", set())

    def __getattr__(self, name):
        if name in {f.name for f in dataclasses.fields(TrainConfig)}:
            self.read.add(name)
        return getattr(self._cfg, name)


@pytest.mark.parametrize("cfg", [
    pytest.param(TrainConfig(n_train=60, n_test=20, probe_groups=True, label_noise=0.1, seed=3), id="pattern"),
    pytest.param(TrainConfig(data="digits", classes=[1, 7], train_subset=40, n_test=30, label_noise=0.2), id="digits",
                 marks=pytest.mark.slow),  # loads scikit-learn: seconds
])
def test_the_data_build_reads_only_data_fields(cfg):
    from lrdecay.trainer.loop import Trainer

    rec = _Recorder(cfg)
    Trainer.build_datasets(rec)
    assert rec.read, "nothing recorded"
    assert rec.read - {"progress"} <= set(config_mod.DATA_FIELDS), rec.read - set(config_mod.DATA_FIELDS)
    # and two configs that differ in a data field read by the build have different data keys
    for name in rec.read - {"progress"}:
        assert name in config_mod.DATA_FIELDS


def test_classes_is_part_of_the_data_key():
    from lrdecay.trainer.loop import Trainer

    a = TrainConfig(data="digits", classes=[1, 7])
    assert Trainer.data_key(a) != Trainer.data_key(a.replace(classes=[1, 8]))


@pytest.mark.parametrize("schedule", config_mod.SCHEDULES)
def test_each_schedule_reads_only_its_declared_fields(schedule):
    import torch

    from lrdecay.trainer.schedule import RunSchedule

    changes = {"train_acc": dict(decay_train_acc=[0.5]), "auto": dict(gamma=0.5),
               "auto_val": dict(gamma=0.5, val_fraction=0.1), "plateau": dict(gamma=0.5)}
    cfg = TrainConfig(schedule=schedule, epochs=7, **changes.get(schedule, {}))
    rec = _Recorder(cfg)
    sched = RunSchedule(rec)
    opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=cfg.lr)
    sched.device(3)
    sched.torch_scheduler(opt)
    sched.host_decay(opt)
    declared = set(config_mod.SCHEDULE_FIELDS.get(schedule, ()))
    assert rec.read - {"schedule", "lr", "epochs"} == declared


# ------------------------------------------------------------------------------------ run ids
# Ids computed by the code before the roles were declared on the fields (commit 66a9195): old sweep
# folders and experiment run folders are found under these ids.
_IDS = [
    (dict(), "d8b7863a1c4a"),
    (dict(lr=0.05, seed=3, label_noise=0.2, progress=False, plots=False, device="cpu"), "f2d36cf45353"),
    (dict(schedule="train_acc", decay_train_acc=[0.5, 0.9], gamma=0.5, checkpoint_every=2), "59a1784f4431"),
    (dict(data="digits", classes=[2, 7], model="resnet20", width=4, eval_train=True, snapshot_epochs=[1]),
     "b45ca599db6a"),
    (dict(schedule="step", step_size=2, batch_size=None, lr=1, cuda_graph=False), "39ceffbc15a1"),
]


@pytest.mark.parametrize("changes, expected", _IDS)
def test_run_ids_are_unchanged(changes, expected):
    from lrdecay.sweep import run_id

    assert run_id(TrainConfig(**changes)) == expected


# ------------------------------------------------------------------------------------ lrdecay train flags
def _other_value(spec):
    """A valid value of the field other than its default, and the flag arguments that give it."""
    if spec.kind == "bool":
        return (not spec.default), [spec.option if not spec.default else "--no-" + spec.option[2:]]
    if spec.choices:
        value = next(c for c in spec.choices if c != spec.default)
        return value, [spec.option, value]
    base = [p for p in spec.annotation.replace(" ", "").split("|") if p != "None"][0]
    value = {"int": 7, "float": 0.375, "str": "cuda:1", "list[int]": [2, 5, 11], "list[float]": [0.25, 0.5]}[base]
    text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return value, [spec.option, text]


def test_every_flag_parses_into_its_field_and_every_field_has_a_flag():
    import argparse

    from lrdecay.cli import _TRAIN_OWN_OPTIONS, _train_fields, build_parser

    parser = build_parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    specs = F.flag_specs(TrainConfig)
    # every option of `lrdecay train` is a field's flag, a field's alias or one of train's own options
    options = {o for a in train._actions for o in a.option_strings} - {"-h", "--help"}
    generated = {s.option for s in specs} | {"--no-" + s.option[2:] for s in specs if s.kind == "bool"}
    aliases = {o for s in specs for o, _, _ in s.aliases}
    assert options == generated | aliases | set(_TRAIN_OWN_OPTIONS)
    # every field has a flag unless it says why not
    assert {s.name for s in specs} | set(F.no_flag_reasons(TrainConfig)) == {f.name for f in dataclasses.fields(TrainConfig)}
    # nothing given: no field set
    assert _train_fields(parser.parse_args(["train"])) == {}
    for spec in specs:
        value, argv = _other_value(spec)
        args = parser.parse_args(["train", *argv])
        assert _train_fields(args) == {spec.name: value}, spec.option
        if "None" in spec.annotation:
            assert _train_fields(parser.parse_args(["train", spec.option, "none"])) == {spec.name: None}
        for option, const, _ in spec.aliases:
            assert _train_fields(parser.parse_args(["train", option])) == {spec.name: const}, option
    assert isinstance(train, argparse.ArgumentParser)


def test_train_help_shows_every_field_flag_with_its_default():
    import contextlib
    import io

    from lrdecay.cli import build_parser

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = " ".join(buf.getvalue().split())
    for spec in F.flag_specs(TrainConfig):
        assert spec.option in text and " ".join(spec.text.split()) in text, spec.option


@pytest.mark.parametrize("argv, msg", [
    (["--decay-train-acc", "0.5,x"], r"argument --decay-train-acc: --decay-train-acc must be comma-separated accuracies, e\.g\. 0\.9,0\.99; got '0\.5,x'"),
    (["--step-size", "two"], r"argument --step-size: --step-size must be an int; got 'two'"),
    (["--max-decays", "x"], r"--max-decays must be an int or none; got 'x'"),
    (["--activation", "swish"], r"argument --activation: invalid choice: 'swish'"),
])
def test_a_bad_flag_value_is_a_usage_error(argv, msg, capsys):
    import re

    from lrdecay.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert re.search(msg, err), err
    assert "Traceback" not in err


def _npz(tmp_path):
    import numpy as np

    rng = np.random.default_rng(5)
    path = tmp_path / "d.npz"
    x = rng.normal(size=(60, 4)).astype(np.float32)
    np.savez(path, x=x, y=(x[:, 0] > 0).astype(np.int64), n_classes=np.int64(2))
    return path


def test_train_with_the_train_acc_schedule_from_flags(tmp_path, capsys):
    from lrdecay.cli import main
    from lrdecay.trainer import read_jsonl

    out = tmp_path / "run"
    assert main(["train", "--data", str(_npz(tmp_path)), "--epochs", "6", "--batch-size", "20", "--width", "8",
                 "--depth", "1", "--lr", "0.2", "--device", "cpu", "--no-ledger", "--no-plots", "--schedule",
                 "train_acc", "--decay-train-acc", "0.5,0.8", "--gamma", "0.25", "--out", str(out)]) == 0
    cfg = TrainConfig.from_json(out / "config.json")
    assert cfg.schedule == "train_acc" and cfg.decay_train_acc == [0.5, 0.8] and cfg.gamma == 0.25
    records = read_jsonl(out / "log.jsonl")
    # the reference: the LR falls ×gamma after each epoch whose training accuracy first reached a target
    lr, reached, expected = 0.2, 0, []
    for r in records:
        expected.append(lr)
        while reached < 2 and r["train_acc"] >= cfg.decay_train_acc[reached]:
            reached += 1
            lr *= 0.25
    assert [r["lr"] for r in records] == pytest.approx(expected, rel=1e-12)
    assert reached >= 1  # the schedule decayed at least once on this easy data


def test_train_with_the_step_schedule_from_flags(tmp_path, capsys):
    import torch

    from lrdecay.cli import main
    from lrdecay.trainer import read_jsonl

    out = tmp_path / "run"
    assert main(["train", "--data", str(_npz(tmp_path)), "--epochs", "5", "--batch-size", "30", "--width", "8",
                 "--depth", "1", "--lr", "0.3", "--device", "cpu", "--no-ledger", "--no-plots", "--schedule", "step",
                 "--step-size", "2", "--gamma", "0.5", "--out", str(out)]) == 0
    assert TrainConfig.from_json(out / "config.json").step_size == 2
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    ref = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    expected = []
    for _ in range(5):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert [r["lr"] for r in read_jsonl(out / "log.jsonl")] == pytest.approx(expected, rel=1e-12)


def test_a_tuple_given_for_any_list_field_is_kept_as_a_list():
    values = {"milestones": (3, 8), "decay_train_acc": (0.5, 0.75), "snapshot_epochs": (2,), "classes": (4, 1)}
    list_fields = {f.name for f in dataclasses.fields(TrainConfig) if str(f.type).startswith("list[")}
    assert set(values) == list_fields
    cfg = TrainConfig(data="digits", **values)
    for name, value in values.items():
        assert getattr(cfg, name) == list(value) and type(getattr(cfg, name)) is list, name
    assert TrainConfig.from_json(cfg.to_json()) == cfg
