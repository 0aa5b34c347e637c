"""Exit statuses and output folders of the commands as a hostile user meets them: a sweep or reproduce with a
run missing from its results never exits 0 (and never with the usage error's status), `train --resume A
--out B` never writes over another run, `regime` follows the output-folder rule."""

from __future__ import annotations

import json
import os

import pytest

from lrdecay.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_RUNS_MISSING, EXIT_STATUSES, EXIT_USAGE, build_parser
from lrdecay.trainer import TrainConfig, Trainer, read_jsonl
from support import run_cli, toy_spec, train_args

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _snapshot(folder) -> dict:
    """Every file under ``folder`` (but the lock marker) with its bytes."""
    out = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if name != ".lrdecay-run":
                p = os.path.join(root, name)
                out[os.path.relpath(p, folder)] = open(p, "rb").read()
    return out


def test_exit_statuses_are_distinct_and_documented():
    import contextlib
    import io

    assert len(set(EXIT_STATUSES)) == 4 and {EXIT_OK, EXIT_USAGE, EXIT_RUNS_MISSING, EXIT_INTERRUPTED} == set(EXIT_STATUSES)
    assert EXIT_RUNS_MISSING not in (EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = " ".join(buf.getvalue().split())
    for code in EXIT_STATUSES:
        assert f" {code} " in text
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8").read()
    section = readme.split("## Signals, full disks, diverged runs and exit statuses", 1)[1].split("\n## ", 1)[0]
    for code in EXIT_STATUSES:
        assert f"`{code}`" in section, code


# ---------------------------------------------------------------------------------------- sweeps
SPEC = toy_spec("exits", "[0, 1]", epochs=3, milestones="[2]")


def _fail_after_first_checkpoint(monkeypatch, seed: int):
    """The run of ``seed`` raises in its second epoch, after its first epoch's checkpoint was written."""
    real = Trainer.close_epoch

    def close_epoch(self, lr, started):
        if self.config.seed == seed and self.epoch == 1:
            assert os.path.exists(os.path.join(self.out_dir, "checkpoint.pt"))
            raise RuntimeError("disk on fire")
        return real(self, lr, started)

    monkeypatch.setattr(Trainer, "close_epoch", close_epoch)


@pytest.mark.parametrize("stack", [True, False])
def test_a_run_that_raised_after_its_checkpoint_counts_as_failed(tmp_path, monkeypatch, capsys, stack):
    # It counted as "partial": no failure in the manifest, exit status 0, a run missing from the table.
    (tmp_path / "s.toml").write_text(SPEC)
    _fail_after_first_checkpoint(monkeypatch, seed=1)
    argv = ["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sw"), "--executor", "stack",
            "--checkpoint-seconds", "0", *([] if stack else ["--no-stack"])]
    code, out, err = run_cli(argv, capsys)
    assert code == EXIT_RUNS_MISSING, err
    assert "failed: run" in err and "disk on fire" in err and "missing from the table" in err
    manifest = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert manifest["counts"]["failed"] == (2 if stack else 1) and manifest["counts"]["done"] == (0 if stack else 1)
    assert all("disk on fire" in f["error"] for f in manifest["failed"])
    # a rerun resumes the failed run from its checkpoint and finishes it
    monkeypatch.undo()
    code, out, err = run_cli(argv, capsys)
    assert code == EXIT_OK, err
    assert "2 runs (2 done)" in out
    manifest = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert manifest["failed"] == [] and manifest["counts"]["done"] == 2


def test_a_run_folder_holding_another_configs_checkpoint_fails_the_sweep(tmp_path, capsys):
    # Exit 0 on every rerun, with a run missing from the table.
    from lrdecay.sweep import load_sweep

    (tmp_path / "s.toml").write_text(SPEC)
    argv = ["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sw"), "--executor", "stack"]
    assert run_cli(argv, capsys)[0] == EXIT_OK
    res = load_sweep(tmp_path / "sw")
    a, b = res.runs
    # b's folder gets a's checkpoint, and b is not done any more
    (tmp_path / "sw" / "runs" / b.id / "checkpoint.pt").write_bytes((tmp_path / "sw" / "runs" / a.id / "checkpoint.pt").read_bytes())
    (tmp_path / "sw" / "runs" / b.id / "result.json").unlink()
    for _ in range(2):
        code, out, err = run_cli(argv, capsys)
        assert code == EXIT_RUNS_MISSING, err
        assert f"failed: run {b.id}" in err


def test_a_result_json_of_another_run_is_not_trusted(tmp_path, capsys):
    from lrdecay.sweep import load_sweep

    (tmp_path / "s.toml").write_text(SPEC)
    argv = ["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sw"), "--executor", "stack"]
    assert run_cli(argv, capsys)[0] == EXIT_OK
    a, b = load_sweep(tmp_path / "sw").runs
    rows_before = (tmp_path / "sw" / "table.csv").read_text()
    for name in os.listdir(tmp_path / "sw" / "runs" / b.id):
        if name not in (".lrdecay-run",):
            os.unlink(tmp_path / "sw" / "runs" / b.id / name)
    (tmp_path / "sw" / "runs" / b.id / "result.json").write_bytes((tmp_path / "sw" / "runs" / a.id / "result.json").read_bytes())
    assert load_sweep(tmp_path / "sw")[b.id].status == "pending"
    code, out, err = run_cli(argv, capsys)  # b is trained again, not read from a's result
    assert code == EXIT_OK, err
    assert json.loads((tmp_path / "sw" / "runs" / b.id / "result.json").read_text())["id"] == b.id
    assert (tmp_path / "sw" / "table.csv").read_text().count("\n") == rows_before.count("\n")


@pytest.mark.slow
def test_reproduce_with_a_failed_run_says_so_and_exits_runs_missing(tmp_path, monkeypatch, capsys):
    # It died with an IndexError when a run had raised after its checkpoint (counted as partial).
    real = Trainer.close_epoch

    def close_epoch(self, lr, started):
        if self.epoch == 1 and self.config.seed == 1:
            self.save_checkpoint()
            raise RuntimeError("disk on fire")
        return real(self, lr, started)

    monkeypatch.setattr(Trainer, "close_epoch", close_epoch)
    out = tmp_path / "rep"
    code, stdout, err = run_cli(["run", "memorization", "--preset", "tiny", "--seeds", "0,1", "--workers", "1",
                              "--device", "cpu", "--out", str(out)], capsys)
    assert code == EXIT_RUNS_MISSING, err
    assert "training run(s) failed" in err and "disk on fire" in err and "IndexError" not in err
    assert not (out / "report.md").exists() and not (out / "results.json").exists()
    manifest = json.loads((out / "runs" / "sweep.json").read_text())
    assert manifest["counts"]["failed"] >= 1


# ---------------------------------------------------------------------------------------- train --resume A --out B


def _stoppedrun_cli(tmp_path, folder, epochs_done: int = 2):
    """A run of the _train_args config stopped after ``epochs_done`` of its 3 epochs, in ``folder``."""
    from lrdecay.cli import _load_npz_dataset

    cfg = TrainConfig(epochs=3, batch_size=30, width=8, depth=1, milestones=[2], optimizer="torch", device="cpu",
                      ledger=False)
    t = Trainer(cfg, dataset=_load_npz_dataset(str(tmp_path / "d.npz")), test_sets={}, out_dir=folder)
    for _ in range(epochs_done):
        t.run_epoch()
    t.save_checkpoint()
    cfg.to_json(os.path.join(folder, "config.json"))
    t.close()


@pytest.mark.slow
def test_train_resume_into_a_folder_holding_another_run_is_refused(tmp_path, capsys):
    # It exited 0 and B's config, log, checkpoint and ledger then held A's run.
    a, b = tmp_path / "A", tmp_path / "B"
    assert run_cli(train_args(tmp_path, "--out", str(b), "--lr", "0.05"), capsys)[0] == EXIT_OK
    _stoppedrun_cli(tmp_path, a)
    before_a, before_b = _snapshot(a), _snapshot(b)
    code, out, err = run_cli(["train", "--resume", str(a), "--out", str(b), "--data", str(tmp_path / "d.npz")], capsys)
    assert code == EXIT_USAGE and out == ""
    assert "already holds a run" in err and "another folder" in err
    assert _snapshot(a) == before_a and _snapshot(b) == before_b
    # into a new folder: A's run continues there, A untouched
    c = tmp_path / "C"
    code, out, err = run_cli(["train", "--resume", str(a), "--out", str(c), "--data", str(tmp_path / "d.npz")], capsys)
    assert code == EXIT_OK, err
    assert _snapshot(a) == before_a and len(read_jsonl(c / "log.jsonl")) == 3
    # --overwrite does not go with --resume
    code, out, err = run_cli(["train", "--resume", str(a), "--out", str(b), "--overwrite", "--data",
                           str(tmp_path / "d.npz")], capsys)
    assert code == EXIT_USAGE and "exclude each other" in err
    assert _snapshot(a) == before_a and _snapshot(b) == before_b


# ---------------------------------------------------------------------------------------- regime
@pytest.mark.parametrize("workers", ["-3", "0"])
def test_regime_refuses_bad_workers_before_creating_anything(tmp_path, capsys, workers):
    out = tmp_path / "reg"
    code, stdout, err = run_cli(["regime", "--out", str(out), "--workers", workers], capsys)
    assert code == EXIT_USAGE and "--workers must be >= 1" in err
    assert not out.exists()


def test_regime_phase_2_without_phase_1_says_so(tmp_path, capsys):
    # It wrote "no setting meets the premise" (and a table) into an empty folder.
    out = tmp_path / "reg"
    code, stdout, err = run_cli(["regime", "--out", str(out), "--phase", "2"], capsys)
    assert code == EXIT_USAGE and "phase 1" in err and "premise" not in stdout + err
    assert not out.exists()
    out.mkdir()
    code, stdout, err = run_cli(["regime", "--out", str(out), "--phase", "2", "--resume"], capsys)
    assert code == EXIT_USAGE and "phase 1" in err
    assert os.listdir(out) == []


@pytest.mark.slow
def test_regime_follows_the_output_folder_rule(tmp_path, monkeypatch, capsys):
    # A search into a folder with other files overwrote its table.csv.
    from types import SimpleNamespace

    import lrdecay.sweep

    trained = []
    monkeypatch.setattr(lrdecay.sweep, "run_sweep",
                        lambda spec, out_dir, **kw: trained.append(len(spec.runs())) or SimpleNamespace(missing=[]))
    out = tmp_path / "reg"
    out.mkdir()
    (out / "table.csv").write_text("mine\n")
    (out / "notes.txt").write_text("mine too\n")
    before = _snapshot(out)
    code, stdout, err = run_cli(["regime", "--out", str(out), "--phase", "1"], capsys)
    assert code == EXIT_USAGE and "--resume" in err and "--overwrite" in err
    code, stdout, err = run_cli(["regime", "--out", str(out), "--phase", "1", "--overwrite"], capsys)
    assert code == EXIT_USAGE and "notes.txt" in err
    assert _snapshot(out) == before and trained == []
    # --resume continues there (nothing to train here: the stub), rewriting the search's own files
    code, stdout, err = run_cli(["regime", "--out", str(out), "--phase", "1", "--resume"], capsys)
    assert code == EXIT_OK, err
    assert len(trained) == 1 and (out / "notes.txt").read_text() == "mine too\n"
    assert (out / "table.csv").read_text() != "mine\n" and (out / "selection.json").exists()
