"""Diverged runs: the loss turning non-finite is said (with its epoch), the run's files are all written and
its plots drawn; non-finite features in an .npz are refused before anything runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrdecay.cli import EXIT_OK, EXIT_USAGE
from lrdecay.trainer import DivergedWarning, TrainConfig, diverged_at, train
from support import run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RUN_FILES = ("config.json", "log.jsonl", "log.csv", "checkpoint.pt", "ledger.npz", "loss.png", "accuracy.png")


def _tiny(**kw) -> TrainConfig:
    base = dict(preset="toy", n_train=200, n_test=50, width=8, depth=2, epochs=3, milestones=[1], batch_size=50,
                device="cpu", progress=False)
    base.update(kw)
    return TrainConfig(**base)


def test_diverged_at_reads_the_first_non_finite_loss():
    assert diverged_at([]) is None
    assert diverged_at([{"epoch": 1, "train_loss": 2.0}, {"epoch": 2, "train_loss": 1.0}]) is None
    for bad in (math.nan, math.inf, None):  # None: NaN as JSON stores it
        hist = [{"epoch": 1, "train_loss": 2.0}, {"epoch": 2, "train_loss": bad}, {"epoch": 3, "train_loss": 1.0}]
        assert diverged_at(hist) == 2


def test_a_diverged_run_warns_with_its_epoch_and_writes_every_file(tmp_path):
    with pytest.warns(DivergedWarning, match=r"non-finite .* in epoch 1: the run diverged \(lr 1e\+30") as rec:
        res = train(_tiny(lr=1e30), out_dir=tmp_path / "run")
    assert len([w for w in rec if w.category is DivergedWarning]) == 1  # once, at the epoch it happened
    assert diverged_at(res.history) == 1 and len(res.history) == 3
    for name in RUN_FILES:
        assert (tmp_path / "run" / name).stat().st_size > 0, name


def test_a_healthy_run_does_not_warn(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DivergedWarning)
        res = train(_tiny())
    assert diverged_at(res.history) is None


@pytest.mark.slow
def test_plots_of_non_finite_losses(tmp_path):
    # matplotlib's "Data cannot be log-scaled" reached the user as exit 2 when no loss was finite.
    from lrdecay.trainer.plots import plot_history

    for losses in ([math.nan, math.nan], [math.inf, None], [5.0, math.nan], [0.0, 0.0], [math.nan]):
        recs = [{"epoch": i + 1, "train_loss": v, "train_acc": 0.25, "test": {"test": {"acc": 0.25, "loss": v}}}
                for i, v in enumerate(losses)]
        paths = plot_history(recs, str(tmp_path / "p"), decay_epochs=[1])
        assert all(open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_cli_train_says_the_run_diverged_and_exits_0(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run_cli(["train", "--preset", "toy", "--n-train", "200", "--n-test", "50", "--width", "8",
                              "--depth", "2", "--epochs", "3", "--milestones", "1", "--batch-size", "50",
                              "--lr", "1e30", "--device", "cpu", "--out", str(out)], capsys)
    assert code == EXIT_OK, err
    assert "diverged" in err and "in epoch 1" in err and "smaller --lr" in err
    assert err.count("diverged") == 1 and "DivergedWarning" not in err
    for name in RUN_FILES:
        assert (out / name).exists(), name


def test_cli_sweep_names_diverged_runs(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('name = "div"\nseeds = 1\n[base]\npreset = "toy"\nn_train = 200\nn_test = 50\nwidth = 8\n'
                    'depth = 2\nepochs = 2\nmilestones = [1]\nbatch_size = 50\ndevice = "cpu"\n[grid]\nlr = [0.1, 1e30]\n')
    code, stdout, err = run_cli(["sweep", str(spec), "--out", str(tmp_path / "sw"), "--executor", "stack"], capsys)
    assert code == EXIT_OK, err
    assert err.count("diverged: run") == 1 and "non-finite in epoch 1 (lr 1e+30)" in err


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_cli_refuses_non_finite_features(tmp_path, capsys, bad):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    x[rng.integers(60), rng.integers(4)] = bad
    np.savez(tmp_path / "d.npz", x=x, y=rng.integers(0, 3, 60))
    out = tmp_path / "run"
    code, stdout, err = run_cli(["train", "--data", str(tmp_path / "d.npz"), "--epochs", "1", "--device", "cpu",
                              "--out", str(out)], capsys)
    assert code == EXIT_USAGE and "1 non-finite value(s)" in err and "d.npz" in err
    assert not out.exists()
