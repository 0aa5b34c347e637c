"""RunOptions: the options of one experiments call, one value from the command line to the runner."""

from __future__ import annotations

import pytest

from lrdecay import experiments
from lrdecay.experiments import RunOptions
from lrdecay.experiments import runner


def test_of_applies_changes_and_names_unknown_options():
    base = RunOptions(preset="tiny", workers=2)
    assert RunOptions.of(base, seeds=[3]) == RunOptions(preset="tiny", workers=2, seeds=[3])
    assert RunOptions.of(base, preset=None) == base  # a call that names no preset keeps the options'
    assert RunOptions.of(None, preset="full").preset == "full"
    assert RunOptions.of() == RunOptions()
    with pytest.raises(TypeError, match=r"unknown run option\(s\) \['wrokers'\]; accepted: \['preset', "):
        RunOptions.of(base, wrokers=3)
    with pytest.raises(TypeError, match="options must be a RunOptions, got dict"):
        RunOptions.of({"preset": "tiny"})


def test_run_all_passes_one_options_value_to_the_runner(monkeypatch):
    seen = []
    def record(exps, options):
        seen.append(([e.name for e in exps], options))
        return {e.name: {} for e in exps}

    monkeypatch.setattr(runner, "run_experiments", record)
    experiments.run_all(["stages", "gd"], "tiny", seeds=2, out_dir="/o", device="cpu", workers=3, executor="stack",
                        overrides={"gd": {"epochs": 2}}, progress=False, data="digits", data_dir=None)
    experiments.run_all(["stages"], options=RunOptions(preset="tiny", workers=4), seeds=[5])
    experiments.run("memorization", overrides={"epochs": 2})
    assert seen == [
        (["stages", "gd"], RunOptions(preset="tiny", seeds=2, out_dir="/o", device="cpu", workers=3,
                                      executor="stack", overrides={"gd": {"epochs": 2}}, progress=False,
                                      data="digits")),
        (["stages"], RunOptions(preset="tiny", workers=4, seeds=[5])),
        (["memorization"], RunOptions(preset="quick", overrides={"memorization": {"epochs": 2}})),
    ]


@pytest.mark.slow
def test_a_plan_holds_its_options_with_the_data_folder_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = experiments.plan(["stages", "complexity"], "tiny", seeds=[4], data="digits")
    assert (plan.options.preset, plan.options.data, plan.options.data_dir) == ("tiny", "digits", None)
    assert plan.options == RunOptions(preset="tiny", seeds=[4], data="digits")
    assert plan.settings["stages"]["seeds"] == [4] and "complexity" in plan.skipped
    # the same plan from the runner given the options value
    again = runner.plan_experiments([experiments.get("stages"), experiments.get("complexity")], plan.options)
    assert again.settings == plan.settings and again.skipped == plan.skipped
    assert runner.runs_needed([experiments.get("stages")], plan.options) == len(plan.first_round())


def test_the_command_line_builds_the_options_once(tmp_path, monkeypatch, capsys):
    from lrdecay.cli import main

    seen = []

    def stop(exps, options):
        seen.append(options)
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_experiments", stop)
    out = tmp_path / "rep"
    code = main(["reproduce", "--only", "stages,gd", "--preset", "tiny", "--seeds", "0,1", "--device", "cpu",
                 "--workers", "1", "--executor", "stack", "--out", str(out)])
    assert code == 130
    assert seen == [RunOptions(preset="tiny", seeds=[0, 1], device="cpu", out_dir=str(out), workers=1,
                               executor="stack")]
