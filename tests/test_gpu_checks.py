"""gpu_checks/run_all.py, on stand-in checks (the real ones need a GPU, or minutes on the CPU): statuses from
exit codes and time limits, the budget shared out, numbers read from each check's JSON, one table."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if not (ROOT / "gpu_checks" / "run_all.py").exists():
    pytest.skip("needs the source tree (gpu_checks/)", allow_module_level=True)

_spec = importlib.util.spec_from_file_location("run_all", ROOT / "gpu_checks" / "run_all.py")
run_all = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_all)

SCRIPT = """
import json, os, sys, time
print("started", flush=True)
mode = {mode!r}
if mode == "sleep":
    time.sleep(60)
with open(os.path.join(os.environ["OUT"], "check_{name}.json"), "w") as f:
    json.dump({result}, f)
sys.exit({rc})
"""


@pytest.fixture
def stand_ins(tmp_path, monkeypatch):
    """Replaces the checks by scripts that print, write a result and exit as told."""

    def make(**checks):
        table = {}
        for name, (mode, rc, result, share) in checks.items():
            (tmp_path / f"{name}.py").write_text(SCRIPT.format(mode=mode, name=name, rc=rc, result=result))
            table[name] = (f"{name}.py", share)
        monkeypatch.setattr(run_all, "HERE", tmp_path)
        monkeypatch.setattr(run_all, "CHECKS", table)
        monkeypatch.delenv("OUT", raising=False)

    return make


def test_statuses_numbers_and_table(stand_ins, capsys):
    stand_ins(
        sgd=("ok", 0, {"parity_max_rel_err": 2e-7, "copy_TBps": 4.3,
                       "us_per_step": {"resnet56": {"FusedSGD triton graph": 9.5}}}, 1),
        trainer=("ok", 1, {"parity": {"params_bitwise_equal": False, "params_max_abs_diff": 3e-3}}, 1),
        sweep=("ok", 3, {}, 1),
    )
    assert run_all.main(["--device", "cpu", "--budget", "60"]) == 1
    out = capsys.readouterr().out
    assert "[sgd] started" in out  # each check's output, streamed with its name
    rows = {line.split()[0]: line for line in out.splitlines()[-6:] if line[:1].isalpha()}
    assert rows["sgd"].split()[1] == "ok" and "ResNet-56 step 9.5 us (graph)" in rows["sgd"]
    assert "parity rel err 2.0e-07" in rows["sgd"] and "copy 4.30 TB/s" in rows["sgd"]
    assert rows["trainer"].split()[1] == "FAIL" and "graph==eager 3.0e-03" in rows["trainer"]
    assert rows["sweep"].split()[1:3] == ["ERROR", "3"] and "no results" in rows["sweep"]
    assert "total" in rows


@pytest.mark.slow  # waits out a time limit
def test_a_check_past_its_limit_is_ended_and_the_others_still_run(stand_ins, tmp_path, monkeypatch, capsys):
    stand_ins(sgd=("sleep", 0, {}, 1), images=("ok", 0, {"parity": [{"ok": True}], "timing": {}}, 1))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    monkeypatch.setenv("OUT", str(out_dir))
    assert run_all.main(["--device", "cpu", "--budget", "6"]) == 1
    summary = json.loads((out_dir / "run_all.json").read_text())
    got = {c["name"]: c for c in summary["checks"]}
    assert got["sgd"]["status"] == "TIMEOUT" and got["sgd"]["seconds"] < 30  # not the 60 s it would sleep
    assert got["sgd"]["limit_s"] == pytest.approx(3.0, abs=0.5)  # its half of the budget
    assert got["images"]["status"] == "ok" and "graph==eager 1/1" in got["images"]["numbers"]
    assert "TIMEOUT" in capsys.readouterr().out


def test_bad_arguments_exit_2(capsys):
    for argv in (["--only", "nope"], ["--only", ","], ["--budget", "0"], ["--device", "tpu"]):
        with pytest.raises(SystemExit) as e:
            run_all.main(argv)
        assert e.value.code == 2, argv
    assert "unknown check(s) nope" in capsys.readouterr().err


def test_key_numbers_of_every_real_check_with_nothing_measured():
    for name in ("sgd", "trainer", "sweep", "images"):
        assert run_all.key_numbers(name, None) == "no results"
        assert isinstance(run_all.key_numbers(name, {}), str)
