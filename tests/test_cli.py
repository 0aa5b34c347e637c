"""The `lrdecay data` and `lrdecay train` commands as a new user meets them: defaults and choices in --help, every argument checked before anything is written or printed,
existing results never silently replaced, --resume takes a run folder."""

from __future__ import annotations

import re

import numpy as np
import pytest

from lrdecay.cli import build_parser, main
from lrdecay.data import pattern_dataset
from lrdecay.trainer import TrainConfig, read_jsonl

from support import run_cli, strip, train_args

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _help(argv) -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    return " ".join(buf.getvalue().split())  # unwrapped


# ---------------------------------------------------------------------------------------- --help


def test_train_help_shows_every_default_and_choice():
    # Regression: `lrdecay train --help` showed no defaults or choices.
    text = _help(["train"])
    cfg = TrainConfig()
    for flag, value in [("--epochs", cfg.epochs), ("--batch-size", cfg.batch_size), ("--lr", cfg.lr),
                        ("--momentum", cfg.momentum), ("--weight-decay", cfg.weight_decay), ("--seed", cfg.seed),
                        ("--n-train", cfg.n_train), ("--gamma", cfg.gamma), ("--device", cfg.device)]:
        assert re.search(re.escape(flag) + r" \S+ .*?\(default: " + re.escape(str(value)) + r"\)", text), flag
    assert "(default: 10,20)" in text  # milestones
    for flag, options in [("--schedule", "constant,multistep,step,exponential,cosine"), ("--optimizer", "fused,torch"),
                          ("--model", "mlp,resnet20,resnet56"), ("--preset", "ps10,ps10-clean,ps10-2c,toy")]:
        assert f"{flag} {{{options}" in text, flag
    assert "--overwrite" in text and "--resume RUN" in text


def test_data_help_shows_defaults_and_choices():
    text = _help(["data"])
    assert "--preset {ps10,ps10-clean,ps10-2c,toy}" in text and "(default: 50000)" in text
    assert "--overwrite" in text
    top = _help([])
    assert "--resume or --overwrite" in top


# ---------------------------------------------------------------------------------------- lrdecay data


def test_data_refuses_to_replace_a_file_unless_told(tmp_path, capsys):
    # Regression: `lrdecay data --out` replaced an existing file, and not atomically.
    out = tmp_path / "d.npz"
    assert run_cli(["data", "--n", "50", "--seed", "1", "--out", str(out)], capsys)[0] == 0
    before = out.read_bytes()
    code, stdout, err = run_cli(["data", "--n", "60", "--seed", "2", "--out", str(out)], capsys)
    assert code == 2 and "already exists: pass --overwrite" in err and stdout == ""
    assert out.read_bytes() == before
    assert run_cli(["data", "--n", "60", "--seed", "2", "--out", str(out), "--overwrite"], capsys)[0] == 0
    with np.load(out) as z:
        assert np.array_equal(z["x"], pattern_dataset(60, seed=2).x)
    # without the .npz suffix the file still gets it, as np.savez(path) would name it
    assert run_cli(["data", "--n", "5", "--out", str(tmp_path / "e")], capsys)[0] == 0
    assert (tmp_path / "e.npz").is_file()


def test_data_killed_mid_write_leaves_the_old_file(tmp_path, capsys, monkeypatch):
    out = tmp_path / "d.npz"
    assert run_cli(["data", "--n", "50", "--out", str(out)], capsys)[0] == 0
    before = out.read_bytes()

    def dies_half_way(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", dies_half_way)
    assert main(["data", "--n", "70", "--out", str(out), "--overwrite"]) == 130  # Ctrl-C's exit status
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]  # no temp file left


def test_data_bad_arguments_write_nothing(tmp_path, capsys):
    out = tmp_path / "sub" / "d.npz"
    for argv, msg in [(["--n", "0"], r"n must be an int in \[1, 2147483647\], got 0"),
                      (["--label-noise", "1.5"], "label_noise must be"),
                      (["--seed", "-1"], "seed must be"),
                      (["--preset", "nope"], "invalid choice")]:
        code, stdout, err = run_cli(["data", *argv, "--out", str(out)], capsys)
        assert code == 2 and re.search(msg, err) and stdout == "", argv
    assert not (tmp_path / "sub").exists()


# ---------------------------------------------------------------------------------------- lrdecay train


def test_train_bad_arguments_are_reported_before_anything_is_written(tmp_path, capsys):
    # Regression: bad arguments were found after output had begun; --device cuda left an empty folder.
    import torch

    run = tmp_path / "run"
    cases = [
        (["--lr", "-1"], "lr must be"),
        (["--milestones", "2,x"], r"--milestones must be comma-separated epochs, e\.g\. 10,20; got '2,x'"),
        (["--schedule", "linear"], r"invalid choice: 'linear' \(choose from"),
        (["--model", "vgg"], "invalid choice"),
        (["--batch-size", "1000"], r"batch_size must be in \[1, n_train=90\]"),
        (["--test-data", str(tmp_path / "missing.npz")], "--test-data .*no such file"),
        (["--resume", str(tmp_path / "nope")], "does not exist"),
        (["--overwrite", "--resume", str(tmp_path)], "holds no checkpoint.pt"),
    ]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda"], "--device cuda: CUDA is not available"))
    for extra, msg in cases:
        args = train_args(tmp_path, "--out", str(run))
        i = args.index("--device") if extra[0] == "--device" else None
        if i is not None:
            del args[i : i + 2]
        code, stdout, err = run_cli([*args, *extra], capsys)
        assert code == 2 and re.search(msg, err), (extra, err)
        assert stdout == "", extra
        assert not run.exists(), extra


@pytest.mark.slow
def test_train_twice_into_one_folder_needs_resume_or_overwrite(tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli(train_args(tmp_path, "--out", str(run)), capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.name != ".lrdecay-run"}
    code, _, err = run_cli(train_args(tmp_path, "--out", str(run), "--lr", "0.05"), capsys)
    assert code == 2 and "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.name != ".lrdecay-run"} == before
    assert run_cli(train_args(tmp_path, "--out", str(run), "--lr", "0.05", "--overwrite"), capsys)[0] == 0
    assert TrainConfig.from_json(run / "config.json").lr == 0.05


@pytest.mark.slow
def test_train_resume_takes_the_run_folder_and_its_config(tmp_path, capsys):
    # Regression: `--resume DIR` said the checkpoint "does not exist".
    from lrdecay.cli import _load_npz_dataset
    from lrdecay.trainer import Trainer

    full, part = tmp_path / "full", tmp_path / "part"
    assert run_cli(train_args(tmp_path, "--out", str(full)), capsys)[0] == 0
    # a run of the same config stopped after 2 of its 3 epochs (as Ctrl-C leaves it)
    cfg = TrainConfig.from_json(full / "config.json")
    stopped = Trainer(cfg, dataset=_load_npz_dataset(str(tmp_path / "d.npz")), test_sets={}, out_dir=part)
    stopped.run_epoch()
    stopped.run_epoch()
    stopped.save_checkpoint()
    stopped.close()
    # resume by folder: the run's own config.json is the config, and the folder is the output
    code, stdout, err = run_cli(["train", "--resume", str(part), "--data", str(tmp_path / "d.npz")], capsys)
    assert code == 0, err
    assert f"logs in {part}" in stdout
    assert strip(read_jsonl(part / "log.jsonl")) == strip(read_jsonl(full / "log.jsonl"))
    assert len(read_jsonl(part / "log.jsonl")) == 3
