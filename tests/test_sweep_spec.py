"""Sweep specs: TOML/JSON parsing, run resolution, stable run ids, and clear errors before any run."""

from __future__ import annotations

import json

import pytest

from lrdecay.sweep import SpecError, SweepSpec, load_spec, run_id
from lrdecay.trainer import TrainConfig

TOML = """
name = "lr-by-noise"
seeds = [0, 5]

[base]
preset = "toy"
n_train = 300
epochs = 3
batch_size = "none"   # full batch: TOML has no null

[grid]
lr = [0.05, 0.1, 0.2]
label_noise = [0.0, 0.2]

[[settings]]
name = "lrDecay"
schedule = "multistep"
milestones = [2]

[[settings]]
name = "constant"
schedule = "constant"
"""


def test_toml_and_json_give_the_same_runs(tmp_path):
    (tmp_path / "s.toml").write_text(TOML)
    import tomllib

    (tmp_path / "s.json").write_text(json.dumps(tomllib.loads(TOML)))
    a, b = load_spec(tmp_path / "s.toml"), load_spec(tmp_path / "s.json")
    ra, rb = a.runs(), b.runs()
    assert [r.id for r in ra] == [r.id for r in rb]
    assert len(ra) == 2 * 3 * 2 * 2  # settings × lr × label_noise × seeds
    # order: setting, then grid point (first axis slowest), then seed
    first = ra[:4]
    assert [(r.setting, r.axes["lr"], r.axes["label_noise"], r.seed) for r in first] == [
        ("lrDecay", 0.05, 0.0, 0), ("lrDecay", 0.05, 0.0, 5), ("lrDecay", 0.05, 0.2, 0), ("lrDecay", 0.05, 0.2, 5)]
    r = ra[-1]
    assert r.config == TrainConfig(preset="toy", n_train=300, epochs=3, batch_size=None, lr=0.2, label_noise=0.2,
                                   schedule="constant", seed=5)
    assert len({x.id for x in ra}) == len(ra)


def test_spec_round_trips_through_its_manifest_form():
    spec = load_spec(TOML)
    again = SweepSpec.from_dict(spec.to_dict())
    assert [r.id for r in again.runs()] == [r.id for r in spec.runs()]


def test_run_id_is_a_hash_of_the_resolved_config():
    cfg = TrainConfig(lr=0.05, seed=3, epochs=7)
    rid = run_id(cfg)
    assert len(rid) == 12 and all(c in "0123456789abcdef" for c in rid)
    # stable: same config built another way, an int in a float field, a default given explicitly
    assert run_id(TrainConfig.from_json(cfg.to_json())) == rid
    assert run_id(TrainConfig(lr=0.05, seed=3, epochs=7, momentum=0.9)) == rid
    assert run_id(TrainConfig(lr=1, seed=3)) == run_id(TrainConfig(lr=1.0, seed=3))
    # fields that only change how a run is watched or where it runs do not change the id
    assert run_id(cfg.replace(device="cpu", progress=False, plots=False, checkpoint_every=3, cuda_graph=False)) == rid
    # fields that change its numbers or its table rows do
    for change in (dict(lr=0.051), dict(seed=4), dict(epochs=8), dict(eval_every=2), dict(label_noise=0.1),
                   dict(optimizer="torch"), dict(milestones=[10, 21])):
        assert run_id(cfg.replace(**change)) != rid, change


def test_run_id_does_not_depend_on_this_process():
    # a fixed config's id, computed by hand from its canonical JSON (non-default fields only)
    import hashlib

    cfg = TrainConfig(lr=0.05, seed=3)
    text = json.dumps({"lr": 0.05, "seed": 3}, sort_keys=True, separators=(",", ":"))
    assert run_id(cfg) == hashlib.sha256(("lrdecay-run:" + text).encode()).hexdigest()[:12]


def test_seeds_as_a_count_and_defaults():
    spec = SweepSpec.from_dict({"seeds": 3, "base": {"epochs": 2}})
    assert [r.seed for r in spec.runs()] == [0, 1, 2]
    spec = SweepSpec.from_dict({"base": {"epochs": 2, "seed": 7}})
    assert [r.seed for r in spec.runs()] == [7]
    # base values are defaults: the grid and `seeds` replace them
    spec = SweepSpec.from_dict({"base": {"lr": 0.3, "seed": 7}, "grid": {"lr": [0.1]}, "seeds": [1]})
    assert [(r.config.lr, r.seed) for r in spec.runs()] == [(0.1, 1)]


def test_from_configs_keeps_each_distinct_run_once():
    a, b = TrainConfig(seed=0), TrainConfig(seed=1)
    spec = SweepSpec.from_configs([a, b, a.replace(progress=False)])
    assert [r.config.seed for r in spec.runs()] == [0, 1]


def test_base_may_be_a_config_file(tmp_path):
    TrainConfig(epochs=4, width=8).to_json(tmp_path / "cfg.json")
    (tmp_path / "s.toml").write_text('base = "cfg.json"\nseeds = 2\n[grid]\nlr = [0.1, 0.2]\n')
    runs = load_spec(tmp_path / "s.toml").runs()
    assert len(runs) == 4 and all(r.config.width == 8 and r.config.epochs == 4 for r in runs)


@pytest.mark.parametrize(
    "spec,match",
    [
        ({"bogus": 1}, r"unknown spec key\(s\) \['bogus'\]"),
        ({"base": {"learning_rate": 0.1}}, r"base: unknown TrainConfig field\(s\) \['learning_rate'\]"),
        ({"grid": {"lrr": [0.1]}}, r"grid.lrr: an axis over a field that does not exist"),
        ({"grid": {"lr": []}}, "grid.lr must be a non-empty list"),
        ({"grid": {"lr": 0.1}}, "grid.lr must be a non-empty list"),
        ({"grid": {"lr": [0.1, 0.1]}}, "grid.lr repeats value"),
        ({"grid": {"lr": [1, 1.0]}}, "grid.lr repeats value"),
        ({"grid": {"lr": [0.2]}, "settings": [{"lr": 0.1}]}, r"settings\[0\].lr conflicts with grid.lr"),
        ({"grid": {"seed": [1, 2]}}, "grid.seed: give seeds with the top-level `seeds`"),
        ({"settings": [{"seed": 1}]}, r"settings\[0\].seed: give seeds"),
        ({"settings": [{"name": "a", "lr": 0.1}, {"name": "a", "lr": 0.2}]}, r"settings\[1\].name 'a' repeats"),
        ({"settings": [{"name": "a", "lr": 0.1}, {"name": "b", "lr": 0.1}]}, "resolves to the same run as"),
        ({"seeds": 0}, "seeds must be a count >= 1"),
        ({"seeds": [1, 1]}, "seeds repeats a seed"),
        ({"seeds": [-1]}, r"seeds must be ints in \[0, 2\*\*63\)"),
        ({"grid": {"lr": [0.1, -0.5]}}, r"run lr=-0.5, seed 0: lr must be a finite number"),
        ({"settings": [{"name": "x", "schedule": "linear"}]}, r"run setting 'x', seed 0: schedule must be one of"),
        ({"base": {"preset": "ps11"}}, r"preset must be one of"),
        ({"base": {"n_train": 100, "batch_size": 128}}, r"batch_size must be in \[1, n_train=100\]"),
        ({"settings": {"lr": 0.1}}, "settings must be a list of tables"),
        ({"name": ""}, "name must be a non-empty string"),
        ({}, "the spec defines no runs"),
    ],
)
def test_bad_specs_raise_naming_the_key(spec, match):
    with pytest.raises(SpecError, match=match):
        SweepSpec.from_dict(spec)


def test_bad_files_and_text():
    with pytest.raises(SpecError, match="does not exist"):
        load_spec("no-such-spec.toml")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec("name = \n[grid")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_spec('{"name": }')


def test_none_word_only_for_fields_that_accept_none():
    runs = SweepSpec.from_dict({"base": {"label_noise": "none", "batch_size": "None"}}).runs()
    assert runs[0].config.label_noise is None and runs[0].config.batch_size is None
    with pytest.raises(SpecError, match="epochs must be an int"):
        SweepSpec.from_dict({"base": {"epochs": "none"}})
