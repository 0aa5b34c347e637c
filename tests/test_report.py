"""report.md / results.json from crafted results, and the `run` / `reproduce` subcommands on tiny."""

from __future__ import annotations

import json
import os

import pytest

from lrdecay.cli import main
from lrdecay.report import render_markdown, verdict_table, write_report


def _result(name, claim, status, mean):
    return {
        "name": name, "claim": claim, "title": f"title {name}", "claim_text": f"claim text {name}",
        "setup": f"setup {name}.", "preset": "tiny", "settings": {"epochs": 3}, "seeds": [0, 1, 2],
        "per_seed": {"mem_stage1_lrDecay": [mean - 0.01, mean, mean + 0.01]},
        "summary": {"mem_stage1_lrDecay": {"mean": mean, "std": 0.01, "values": [mean - 0.01, mean, mean + 0.01]}},
        "table": {"headers": ["schedule", "memorized"], "rows": [["lrDecay", f"{mean:.3f} ± 0.010"]]},
        "verdict_keys": ["mem_stage1_lrDecay"],
        "curves": {}, "verdict": {"status": status, "rule": f"rule of {name}", "details": {"lower": [True] * 3}},
        "plots": [f"{name}.png"], "notes": ["a note"], "wall_time": 1.5,
        "training": {"runs": 9, "shared_runs": 6, "cached_runs": 0, "train_time": 12.0},
    }


def test_write_report_files_and_content(tmp_path):
    results = {"memorization": _result("memorization", "C4", "supported", 0.123),
               "stages": _result("stages", "C1", "not supported", 0.5)}
    paths = write_report(results, tmp_path, {"preset": "tiny", "command": "lrdecay reproduce", "wall_time": 3.0,
                                             "notes": ["tried n=10k"]})
    assert sorted(os.listdir(tmp_path)) == ["report.md", "results.json"]  # no temp files left
    data = json.loads(open(paths["json"]).read())
    assert data["experiments"] == results and data["meta"]["preset"] == "tiny" and data["meta"]["machine"]
    md = open(paths["markdown"]).read()
    assert "## C4 — title memorization (`memorization`)" in md and "## C1 — title stages" in md
    assert "**Verdict: supported.**" in md and "**Verdict: not supported.**" in md
    assert "rule of memorization" in md and "![memorization.png](memorization.png)" in md
    assert "| lrDecay | 0.123 ± 0.010 |" in md and "tried n=10k" in md
    assert "9 training runs, 6 of them shared with other experiments" in md
    assert data["meta"]["machine"]["cpu_model"] and "torch_cpu_capability" in data["meta"]["machine"]
    # the verdict table shows the key numbers of the rule
    table = verdict_table(results)
    assert "| C4 | `memorization` | **supported** | mem_stage1_lrDecay = 0.123 ± 0.010 |" in table
    assert md == render_markdown(results, data["meta"])


def test_write_report_refuses_nan(tmp_path):
    r = _result("memorization", "C4", "supported", 0.1)
    r["summary"]["bad"] = {"mean": float("nan"), "std": 0.0, "values": []}
    with pytest.raises(ValueError):
        write_report({"memorization": r}, tmp_path)
    assert not os.path.exists(tmp_path / "results.json")


@pytest.mark.slow
def test_cli_run_and_reproduce_tiny(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["reproduce", "--preset", "tiny", "--only", "memorization,beliefs", "--seeds", "3",
                 "--device", "cpu", "--workers", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "C4  memorization" in printed and "C3  beliefs" in printed
    data = json.loads((out / "results.json").read_text())
    # the command as given (the device too) and the threads the runs used
    assert "--device cpu" in data["meta"]["command"] and "--workers 2" in data["meta"]["command"]
    assert data["meta"]["threads"] == 1
    assert "(2 worker processes, 1 torch thread each)" in (out / "report.md").read_text()
    assert list(data["experiments"]) == ["memorization", "beliefs"]
    assert data["experiments"]["beliefs"]["seeds"] == [0, 1, 2]
    assert (out / "memorization.png").exists() and "## C3" in (out / "report.md").read_text()

    out2 = tmp_path / "one"
    assert main(["run", "autodecay", "--preset", "tiny", "--seeds", "0,1,2", "--out", str(out2)]) == 0
    data = json.loads((out2 / "results.json").read_text())
    assert list(data["experiments"]) == ["autodecay"]


def test_cli_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["reproduce", "--preset", "tiny", "--only", "nope", "--out", str(tmp_path)])
    assert e.value.code == 2 and "--only must name experiments" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["run", "memorization", "--preset", "tiny", "--seeds", "x", "--out", str(tmp_path)])
    assert e.value.code == 2 and "--seeds must be" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "nope"])


@pytest.mark.slow
def test_cli_report_folder_rule(tmp_path, capsys):
    """An existing report folder needs --resume (its finished runs are read back) or --overwrite."""
    out = tmp_path / "rep"
    args = ["run", "memorization", "--preset", "tiny", "--workers", "1", "--out", str(out)]
    assert main(args) == 0
    first = json.loads((out / "results.json").read_text())["experiments"]["memorization"]
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2 and "--resume" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    again = json.loads((out / "results.json").read_text())["experiments"]["memorization"]
    assert again["per_seed"] == first["per_seed"]
    assert again["training"]["cached_runs"] == again["training"]["runs"]
    (out / "notes.txt").write_text("mine")  # not something reproduce writes: --overwrite refuses the folder
    with pytest.raises(SystemExit) as e:
        main([*args, "--overwrite"])
    assert e.value.code == 2 and "notes.txt" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    assert main([*args, "--overwrite"]) == 0
    assert json.loads((out / "results.json").read_text())["experiments"]["memorization"]["training"]["cached_runs"] == 0


def test_torch_threads_is_what_the_runner_uses():
    from lrdecay.experiments.runner import torch_threads

    assert torch_threads([{"threads": None}, {"threads": 4}]) == 1  # unset (the GPU presets): 1
    assert torch_threads([{"threads": 3}, {"threads": 2}]) == 2
    assert torch_threads([{}]) == 1


def test_report_without_a_thread_count_does_not_invent_one():
    from lrdecay.report import render_markdown

    text = render_markdown({}, {"workers": 2, "threads": None, "wall_time": 1.0})
    assert "(2 worker processes)" in text and "None" not in text
