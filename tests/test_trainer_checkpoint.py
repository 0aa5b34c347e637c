"""Checkpoints: resume after an interrupt equals an uninterrupted run bitwise (CPU); corrupt or foreign
checkpoints are refused before training; a failed write never replaces a good checkpoint."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from torch import nn

from lrdecay.models import MLP
from lrdecay.trainer import CheckpointError, Trainer, load_checkpoint, read_jsonl, train
from lrdecay.trainer import checkpoint as ckpt_mod

from support import assert_same_run, clusters, small_config, strip

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class SigintAt(nn.Module):
    """Wraps an MLP; sends a real SIGINT to this process at its k-th training forward (Ctrl-C mid-epoch)."""

    def __init__(self, inner: nn.Module, k: int) -> None:
        super().__init__()
        self.inner = inner
        self.k = k
        self.calls = 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == self.k:
                os.kill(os.getpid(), signal.SIGINT)
        return self.inner(x)


def _model(ds, k=None):
    torch.manual_seed(123)
    m = MLP(ds["x"].shape[1], ds["n_classes"], width=16, depth=2)
    return SigintAt(m, k if k is not None else 10**9)


@pytest.mark.parametrize(
    "n,batch,drop_last,k",
    [
        (203, 32, False, 11),  # mid-epoch 2 (7 steps/epoch), partial tail batch
        (203, 32, True, 9),  # drop_last: 6 steps/epoch, interrupted in epoch 2
        (150, 50, False, 3),  # in the last step of epoch 1: stops at the epoch boundary
    ],
)
def test_ctrl_c_checkpoint_then_resume_equals_uninterrupted(tmp_path, n, batch, drop_last, k):
    ds = clusters(n, seed=11, noise=0.2)
    cfg = small_config(epochs=3, batch_size=batch, drop_last=drop_last, milestones=[2], ledger=True)
    full = train(cfg, dataset=ds, test_sets={"t": ds}, model=_model(ds), out_dir=tmp_path / "full")

    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt, match="resume from"):
        train(cfg, dataset=ds, test_sets={"t": ds}, model=_model(ds, k), out_dir=out)
    st = load_checkpoint(out / "checkpoint.pt")
    # the step whose forward got the signal completes; the run stops at the next step boundary
    assert st["epoch"] * ((n // batch) + (0 if drop_last or n % batch == 0 else 1)) + st["batch"] == k
    logged = read_jsonl(out / "log.jsonl")
    assert len(logged) == st["epoch"]  # flushed up to the last completed epoch

    resumed = train(cfg, dataset=ds, test_sets={"t": ds}, model=_model(ds), out_dir=out,
                    resume=out / "checkpoint.pt")
    assert_same_run(full, resumed)
    assert strip(read_jsonl(out / "log.jsonl")) == strip(read_jsonl(tmp_path / "full" / "log.jsonl"))


@pytest.mark.parametrize("optimizer", ["torch", "fused"])
def test_resume_from_epoch_checkpoint_via_trainer_steps(tmp_path, optimizer):
    ds = clusters(120, seed=12, noise=0.1)
    cfg = small_config(epochs=4, batch_size=25, schedule="multistep", milestones=[1, 3], optimizer=optimizer)
    full = train(cfg, dataset=ds)
    t = Trainer(cfg, dataset=ds)
    t.run_epoch()
    t.run_epoch()
    path = t.save_checkpoint(tmp_path / "ep2.pt")
    t.run_epoch()  # the stopped run went further; the checkpoint is what counts
    resumed = Trainer(cfg, dataset=ds, resume=path).fit()
    assert_same_run(full, resumed)


def test_resume_of_a_finished_run_trains_nothing(tmp_path):
    ds = clusters(60)
    cfg = small_config(epochs=2)
    a = train(cfg, dataset=ds, out_dir=tmp_path)
    b = train(cfg, dataset=ds, out_dir=tmp_path, resume=tmp_path / "checkpoint.pt")
    assert_same_run(a, b)


@pytest.mark.parametrize(
    "change,match",
    [
        (dict(lr=0.05), "another config.*lr"),
        (dict(seed=1), "another config.*seed"),
        (dict(epochs=5), "another config.*epochs"),
        (dict(width=8), "another config.*width"),
    ],
)
def test_resume_from_another_config_is_refused(tmp_path, change, match):
    ds = clusters(60)
    train(small_config(epochs=2), dataset=ds, out_dir=tmp_path)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError, match=match):
        train(small_config(**({"epochs": 2} | change)), dataset=ds, out_dir=tmp_path, resume=tmp_path / "checkpoint.pt")
    assert (tmp_path / "checkpoint.pt").read_bytes() == before


def test_resume_with_other_data_or_model_is_refused(tmp_path):
    ds = clusters(60)
    cfg = small_config(epochs=2)
    train(cfg, dataset=ds, out_dir=tmp_path)
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(ValueError, match="different training data"):
        train(cfg, dataset=clusters(60, seed=9), resume=path)
    with pytest.raises(ValueError, match="different model"):
        train(cfg, dataset=ds, model=MLP(12, 4, width=16, depth=3), resume=path)


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_checkpoint_is_refused_before_training(tmp_path, damage):
    ds = clusters(60)
    cfg = small_config(epochs=2)
    train(cfg, dataset=ds, out_dir=tmp_path / "a")
    blob = (tmp_path / "a" / "checkpoint.pt").read_bytes()
    bad = tmp_path / "bad.pt"
    if damage == "truncate":
        bad.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        i = len(blob) - 100
        bad.write_bytes(blob[:i] + bytes([blob[i] ^ 1]) + blob[i + 1 :])
    elif damage == "garbage":
        bad.write_bytes(b"not a checkpoint at all" * 10)
    else:
        bad.write_bytes(b"")
    out = tmp_path / "b"
    with pytest.raises(CheckpointError):
        train(cfg, dataset=ds, out_dir=out, resume=bad)
    assert not out.exists()  # refused before any output was written
    with pytest.raises(ValueError, match="does not exist"):
        train(cfg, dataset=ds, resume=tmp_path / "missing.pt")


def test_failed_write_never_replaces_a_good_checkpoint(tmp_path, monkeypatch):
    ds = clusters(60)
    t = Trainer(small_config(epochs=3), dataset=ds, out_dir=tmp_path)
    t.run_epoch()
    good = t.save_checkpoint()
    before = open(good, "rb").read()
    t.run_epoch()

    real_parse = ckpt_mod._parse

    def corrupting_parse(blob, path):  # what reached the disk is damaged
        return real_parse(blob[:-7], path)

    monkeypatch.setattr(ckpt_mod, "_parse", corrupting_parse)
    with pytest.raises(CheckpointError):
        t.save_checkpoint()
    monkeypatch.setattr(ckpt_mod, "_parse", real_parse)
    assert open(good, "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == [".lrdecay-run", "checkpoint.pt", "config.json", "log.jsonl"]  # no temp left
    assert load_checkpoint(good)["epoch"] == 1


def test_checkpoint_every_k_epochs(tmp_path):
    ds = clusters(60)
    epochs_seen = []

    def cb(trainer, record):
        p = tmp_path / "checkpoint.pt"
        epochs_seen.append(load_checkpoint(p)["epoch"] if p.exists() else None)

    train(small_config(epochs=5, checkpoint_every=2), dataset=ds, out_dir=tmp_path, callbacks=[cb])
    # callbacks run before that epoch's checkpoint: at epoch e they see the one from the last even epoch
    assert epochs_seen == [None, None, 2, 2, 4]
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 5


@pytest.mark.parametrize("epochs, every, writes", [(4, 2, [2, 4]), (5, 2, [2, 4, 5]), (3, 0, [3])])
def test_the_final_checkpoint_is_written_once(tmp_path, monkeypatch, epochs, every, writes):
    # when checkpoint_every divides the epochs, the last epoch's checkpoint is the final one: written once
    import lrdecay.trainer.loop as loop_mod

    real = loop_mod.save_checkpoint
    written = []

    def counting(state, path):
        written.append(state["epoch"])
        return real(state, path)

    monkeypatch.setattr(loop_mod, "save_checkpoint", counting)
    res = train(small_config(epochs=epochs, checkpoint_every=every), dataset=clusters(60), out_dir=tmp_path)
    assert written == writes
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == epochs
    # what was skipped is what a fresh write would hold: resuming it is a finished run with the same history
    again = train(small_config(epochs=epochs, checkpoint_every=every), dataset=clusters(60), resume=tmp_path,
                  out_dir=tmp_path)
    assert again.history == res.history
