"""Hostile and surprising inputs to the commands: each is refused with exit status 2 and one line naming
what is wrong (no traceback), or handled as the user meant; a full disk or a read-only file system too."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest

from lrdecay.cli import EXIT_OK, EXIT_USAGE
from lrdecay.trainer import TrainConfig, Trainer
from support import run_cli, toy_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--preset", "toy", "--n-train", "200", "--n-test", "50", "--width", "8", "--depth", "2", "--epochs", "2",
        "--milestones", "1", "--batch-size", "50", "--device", "cpu"]

SPEC = toy_spec("hostile", "1")


def _refused(argv, capsys, *needles):
    code, out, err = run_cli(argv, capsys)
    assert code == EXIT_USAGE, (argv, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for n in needles:
        assert n in err, (n, err)
    return err


# ---------------------------------------------------------------------------------------- full disk, read-only
def _raiser(code: int, name: str):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code), name)
    return fail


def test_data_on_a_full_disk(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(np, "savez", _raiser(errno.ENOSPC, str(tmp_path / "d.npz")))
    _refused(["data", "--n", "20", "--out", str(tmp_path / "d.npz")], capsys, "No space left on device", "d.npz")
    assert os.listdir(tmp_path) == []


def test_train_on_a_read_only_file_system(tmp_path, capsys, monkeypatch):
    from lrdecay.trainer import loop

    monkeypatch.setattr(loop, "save_checkpoint", _raiser(errno.EROFS, str(tmp_path / "run" / "checkpoint.pt")))
    _refused(["train", *TINY, "--out", str(tmp_path / "run")], capsys, "Read-only file system", "checkpoint.pt")


def test_sweep_and_sweep_plot_on_a_full_disk(tmp_path, capsys, monkeypatch):
    from lrdecay.sweep import store

    (tmp_path / "s.toml").write_text(SPEC)
    argv = ["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sw"), "--executor", "stack"]
    with monkeypatch.context() as m:
        m.setattr(store, "_write_csv", _raiser(errno.ENOSPC, str(tmp_path / "sw" / "table.csv")))
        _refused(argv, capsys, "No space left on device", "table.csv")
    assert run_cli(argv, capsys)[0] == EXIT_OK  # the disk has room again: the rerun finishes the folder
    from matplotlib.figure import Figure

    monkeypatch.setattr(Figure, "savefig", _raiser(errno.ENOSPC, "map.png"))
    _refused(["sweep-plot", str(tmp_path / "sw"), "--curves", "train_loss"], capsys, "No space left on device")


# ---------------------------------------------------------------------------------------- paths
def test_out_through_a_file_and_config_a_folder(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    _refused(["train", *TINY, "--out", str(tmp_path / "f" / "sub")], capsys, "Not a directory")
    _refused(["train", *TINY, "--config", str(tmp_path)], capsys, "is a folder, not a JSON file")
    _refused(["data", "--n", "5", "--out", str(tmp_path / "f" / "sub.npz")], capsys, "Not a directory")


def test_data_out_naming_a_folder_is_refused(tmp_path, capsys):
    # `--out newdir/` wrote a hidden newdir/.npz
    for out in (str(tmp_path / "newdir") + "/", str(tmp_path / ".npz")):
        _refused(["data", "--n", "5", "--out", out], capsys, "names a folder")
    assert os.listdir(tmp_path) == []


def test_a_missing_spec_path_is_not_parsed_as_toml(tmp_path, capsys):
    # `lrdecay sweep seeds=3 --out X` ran 3 default runs
    _refused(["sweep", "seeds=3", "--out", str(tmp_path / "X")], capsys, "spec file 'seeds=3' does not exist")
    _refused(["sweep", str(tmp_path), "--out", str(tmp_path / "X")], capsys, "is a folder")
    assert not (tmp_path / "X").exists()


# ---------------------------------------------------------------------------------------- sizes
def test_sizes_beyond_any_machine_are_refused_up_front(tmp_path, capsys):
    _refused(["train", *TINY, "--width", "3000000000"], capsys, "width must be an int <= 65536")
    _refused(["train", *TINY, "--n-train", str(10**15)], capsys, "n_train must be an int <= 2147483647")
    _refused(["reproduce", "--preset", "tiny", "--seeds", "100000000", "--out", str(tmp_path / "r")], capsys,
             "seeds must be a count >= 1 and <= 100000")
    for extra, msg in (("seeds = 1000000000000", "seeds must be a count >= 1 and <= 100000"),
                       ("n_train = 1000000000000000", "n_train must be an int <= 2147483647")):
        (tmp_path / "s.toml").write_text(SPEC.replace('seeds = 1\n', '').replace("n_train = 200\n", "")
                                         .replace('name = "hostile"', f'name = "hostile"\n{extra}' if "seeds" in extra
                                                  else 'name = "hostile"').replace("[base]", "[base]\n" + extra
                                                                                   if "n_train" in extra else "[base]\nn_train = 200"))
        _refused(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sw")], capsys, msg)
    assert not (tmp_path / "sw").exists() and not (tmp_path / "r").exists()


def test_a_grid_of_too_many_runs_is_refused(tmp_path, capsys):
    (tmp_path / "s.toml").write_text(SPEC + "[grid]\nlr = [" + ", ".join(str(0.001 * (i + 1)) for i in range(400))
                                     + "]\nmomentum = [" + ", ".join(str(0.001 * i) for i in range(300)) + "]\n")
    _refused(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sw")], capsys, "120000 runs")


# ---------------------------------------------------------------------------------------- files people write
def test_deeply_nested_spec_and_config(tmp_path, capsys):
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "s.json").write_text('{"name": "x", "base": {"lr": ' + deep + "}}")
    _refused(["sweep", str(tmp_path / "s.json"), "--out", str(tmp_path / "sw")], capsys, "nested too deeply")
    (tmp_path / "s.toml").write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    _refused(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sw")], capsys)
    (tmp_path / "c.json").write_text('{"lr": ' + deep + "}")
    _refused(["train", *TINY, "--config", str(tmp_path / "c.json")], capsys, "nested too deeply")


def test_duplicate_json_keys_are_refused(tmp_path, capsys):
    # the last one won silently
    (tmp_path / "c.json").write_text('{"lr": 0.1, "epochs": 2, "lr": 5.0}')
    _refused(["train", *TINY, "--config", str(tmp_path / "c.json")], capsys, "gives the key 'lr' twice")
    (tmp_path / "s.json").write_text('{"name": "x", "seeds": 1, "seeds": 2, "base": {"preset": "toy"}}')
    _refused(["sweep", str(tmp_path / "s.json"), "--out", str(tmp_path / "sw")], capsys, "gives the key 'seeds' twice")


def test_non_utf8_spec_and_config_name_the_file(tmp_path, capsys):
    (tmp_path / "s.toml").write_bytes(b'name = "\xff\xfe"\n')
    _refused(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sw")], capsys, "s.toml", "not UTF-8")
    (tmp_path / "c.json").write_bytes(b'{"lr": 0.1, "x": "\xff"}')
    _refused(["train", *TINY, "--config", str(tmp_path / "c.json")], capsys, "c.json", "not UTF-8")
    (tmp_path / "l.json").write_text("[1, 2]")
    _refused(["train", *TINY, "--config", str(tmp_path / "l.json")], capsys, "must hold a JSON object")


def test_specs_that_cannot_run_are_refused_before_anyrun_cli(tmp_path, capsys):
    import torch

    cases = [('data = "cifar10"\ndata_dir = "' + str(tmp_path / "nowhere") + '"', "is not a folder")]
    if not torch.cuda.is_available():
        cases.append(('device = "cuda"', "CUDA is not available"))
    for extra, msg in cases:
        (tmp_path / "s.toml").write_text(SPEC.replace('device = "cpu"', extra))
        _refused(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sw")], capsys, msg)
        assert not (tmp_path / "sw").exists()


# ---------------------------------------------------------------------------------------- checkpoints, results
def _stopped(tmp_path):
    cfg = TrainConfig(preset="toy", n_train=200, n_test=50, width=8, depth=2, epochs=2, milestones=[1], batch_size=50,
                      device="cpu", snapshot_epochs=[1])
    t = Trainer(cfg, out_dir=tmp_path / "run")
    t.run_epoch()
    t.save_checkpoint()
    t.close()
    return cfg


def test_resume_from_a_snapshot_says_what_it_is(tmp_path, capsys):
    _stopped(tmp_path)
    snap = tmp_path / "run" / "snapshots" / "epoch_0001.pt"
    assert snap.exists()
    _refused(["train", *TINY, "--resume", str(snap), "--out", str(tmp_path / "new")], capsys,
             "is a model snapshot", "checkpoint.pt")


def test_a_checksum_valid_checkpoint_missing_keys(tmp_path, capsys):
    from lrdecay.trainer.checkpoint import load_checkpoint, save_checkpoint

    _stopped(tmp_path)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    st = load_checkpoint(ckpt)
    for key in ("history", "optimizer", "epoch"):
        broken = {k: v for k, v in st.items() if k != key}
        save_checkpoint(broken, tmp_path / "b.pt")  # a valid checksum over an incomplete state
        _refused(["train", *TINY, "--snapshot-epochs", "1", "--resume", str(tmp_path / "b.pt"), "--out",
                  str(tmp_path / f"new_{key}")], capsys, "incomplete or damaged lrdecay checkpoint")


def test_a_truncated_manifest_does_not_lock_an_intact_folder_out(tmp_path, capsys):
    (tmp_path / "s.toml").write_text(SPEC.replace("seeds = 1", "seeds = 2"))
    argv = ["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sw"), "--executor", "stack"]
    assert run_cli(argv, capsys)[0] == EXIT_OK
    table = (tmp_path / "sw" / "table.csv").read_text()
    m = tmp_path / "sw" / "sweep.json"
    m.write_bytes(m.read_bytes()[: len(m.read_bytes()) // 2])
    code, out, err = run_cli(argv, capsys)
    assert code == EXIT_OK, err
    assert "2 runs (2 done)" in out and json.loads(m.read_text())["counts"]["done"] == 2
    assert (tmp_path / "sw" / "table.csv").read_text() == table
    # a folder whose run folders belong to another spec is still refused
    m.write_text("{")
    (tmp_path / "other.toml").write_text(SPEC.replace("seeds = 1", "seeds = [7]"))
    _refused(["sweep", str(tmp_path / "other.toml"), "--out", str(tmp_path / "sw")], capsys,
             "not a readable sweep manifest")


def test_a_result_json_that_is_not_an_object(tmp_path, capsys):
    from lrdecay.sweep import load_sweep

    (tmp_path / "s.toml").write_text(SPEC)
    argv = ["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sw"), "--executor", "stack"]
    assert run_cli(argv, capsys)[0] == EXIT_OK
    (run,) = load_sweep(tmp_path / "sw").runs
    (tmp_path / "sw" / "runs" / run.id / "result.json").write_text("[1, 2, 3]")
    assert load_sweep(tmp_path / "sw")[run.id].status == "partial"  # not done: its checkpoint resumes it
    code, out, err = run_cli(argv, capsys)
    assert code == EXIT_OK, err
    assert load_sweep(tmp_path / "sw")[run.id].status == "done"
