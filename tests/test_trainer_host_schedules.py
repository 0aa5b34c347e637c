"""Host-side schedules (``auto``, ``plateau``, ``train_acc``), snapshots and ``eval_train`` in the trainer:
decisions from the epoch's numbers, the same on both optimizers, exact resume, snapshots equal to shorter
runs, an eval-mode pass equal to a plain reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrdecay.schedules import AccuracyMilestones, AutoDecay
from lrdecay.trainer import Trainer, decays_in, load_checkpoint, train

from support import assert_same_run, clusters, small_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HOST = {
    "auto": dict(schedule="auto", auto_window=3, auto_fraction=0.5, max_decays=2),
    "plateau": dict(schedule="plateau", plateau_patience=1, plateau_threshold=0.2, max_decays=2),
    "train_acc": dict(schedule="train_acc", decay_train_acc=[0.6, 0.8]),
}


def _replay(history, kind, cfg):
    """Which epochs the documented host rule decays after, replayed on the run's own records."""
    if kind == "auto":
        sched = AutoDecay(base_lr=cfg.lr, gamma=cfg.gamma, window=cfg.auto_window, fraction=cfg.auto_fraction,
                          max_decays=cfg.max_decays)
        return [r["epoch"] for r in history if sched.step(r["train_loss"])]
    if kind == "train_acc":
        sched = AccuracyMilestones(base_lr=cfg.lr, thresholds=cfg.decay_train_acc, gamma=cfg.gamma)
        return [r["epoch"] for r in history if sched.step(r["train_acc"])]
    # ReduceLROnPlateau, rel threshold, mode min, written out
    best, bad, out = float("inf"), 0, []
    for r in history:
        if r["train_loss"] < best * (1 - cfg.plateau_threshold):
            best, bad = r["train_loss"], 0
        else:
            bad += 1
        if bad > cfg.plateau_patience and len(out) < cfg.max_decays:
            out.append(r["epoch"])
            bad = 0  # torch's cooldown 0 resets the count after a reduction
    return out


@pytest.mark.parametrize("kind", list(HOST))
@pytest.mark.parametrize("optimizer", ["fused", "torch"])
def test_host_schedule_decays_where_its_rule_says(kind, optimizer):
    ds = clusters(400, seed=3, noise=0.2)
    cfg = small_config(epochs=12, batch_size=50, optimizer=optimizer, **HOST[kind])
    r = train(cfg, dataset=ds)
    lrs = [h["lr"] for h in r.history]
    decays = decays_in(r.history)
    assert decays == _replay(r.history, kind, cfg)
    assert decays, "the construction must decay at least once"
    # the LR each epoch used: lr × gamma^(decays before it)
    want = [cfg.lr * cfg.gamma ** sum(1 for d in decays if d < h["epoch"]) for h in r.history]
    assert lrs == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("kind", list(HOST))
def test_host_schedule_fused_equals_torch(kind):
    ds = clusters(300, seed=4, noise=0.2)
    runs = [train(small_config(epochs=10, batch_size=50, optimizer=o, **HOST[kind]), dataset=ds)
            for o in ("fused", "torch")]
    assert decays_in(runs[0].history) == decays_in(runs[1].history)
    for a, b in zip(runs[0].history, runs[1].history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)


@pytest.mark.parametrize("kind", list(HOST))
def test_resume_with_host_schedule_equals_uninterrupted(tmp_path, kind):
    ds = clusters(300, seed=5, noise=0.2)
    cfg = small_config(epochs=10, batch_size=50, optimizer="fused", **HOST[kind])
    full = train(cfg, dataset=ds)
    assert decays_in(full.history)
    t = Trainer(cfg, dataset=ds)
    for _ in range(decays_in(full.history)[0] + 1):  # past the first decay: the decay state must travel
        t.run_epoch()
    path = t.save_checkpoint(tmp_path / "mid.pt")
    resumed = Trainer(cfg, dataset=ds, resume=path).fit()
    assert_same_run(full, resumed)


def test_snapshot_equals_the_model_of_a_shorter_run(tmp_path):
    ds = clusters(200, seed=6, noise=0.1)
    cfg = small_config(epochs=5, batch_size=40, schedule="constant", snapshot_epochs=[2, 5, 9])
    r = train(cfg, dataset=ds, out_dir=tmp_path)
    assert sorted(r.snapshots) == [2, 5]
    short = train(cfg.replace(epochs=2, snapshot_epochs=[]), dataset=ds)
    for k, v in short.model.state_dict().items():
        assert torch.equal(r.snapshots[2][k], v.cpu()), k
    for k, v in r.model.state_dict().items():
        assert torch.equal(r.snapshots[5][k], v.cpu()), k
    on_disk = load_checkpoint(tmp_path / "snapshots" / "epoch_0002.pt")
    assert all(torch.equal(on_disk["model"][k], r.snapshots[2][k]) for k in r.snapshots[2])


def test_snapshots_survive_a_resume(tmp_path):
    ds = clusters(200, seed=7)
    cfg = small_config(epochs=4, batch_size=40, snapshot_epochs=[1, 3])
    full = train(cfg, dataset=ds)
    t = Trainer(cfg, dataset=ds)
    t.run_epoch()
    t.run_epoch()
    resumed = Trainer(cfg, dataset=ds, resume=t.save_checkpoint(tmp_path / "c.pt")).fit()
    assert sorted(resumed.snapshots) == [1, 3]
    for e in (1, 3):
        assert all(torch.equal(full.snapshots[e][k], resumed.snapshots[e][k]) for k in full.snapshots[e])


def test_eval_train_matches_a_plain_eval_pass():
    ds = clusters(333, seed=8, noise=0.25)
    r = train(small_config(epochs=2, batch_size=64, eval_train=True), dataset=ds)
    rec = r.history[-1]["train_eval"]
    m = r.model.eval()
    with torch.no_grad():
        logits = m(torch.from_numpy(ds["x"]))
    pred = logits.argmax(1).numpy()
    y, flipped = ds["y"], ds["flipped"]
    assert rec["acc"] == pytest.approx(np.mean(pred == y))
    assert rec["memorized"] == pytest.approx(np.mean(pred[flipped] == y[flipped]))
    assert rec["predicted_clean"] == pytest.approx(np.mean(pred[flipped] == ds["y_clean"][flipped]))
    assert rec["acc_clean"] == pytest.approx(np.mean(pred[~flipped] == y[~flipped]))
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y)).item()
    assert rec["loss"] == pytest.approx(loss, rel=1e-5)


def test_checkpoint_from_before_new_fields_still_resumes(tmp_path):
    ds = clusters(120, seed=9)
    cfg = small_config(epochs=2, batch_size=40)
    t = Trainer(cfg, dataset=ds)
    t.run_epoch()
    st = t.state_dict()
    for k in ("max_decays", "auto_window", "decay_train_acc"):  # as a checkpoint written before they existed
        st["signature"]["identity"].pop(k)
    from lrdecay.trainer.checkpoint import save_checkpoint

    path = save_checkpoint(st, tmp_path / "old.pt")
    assert Trainer(cfg, dataset=ds, resume=path).fit().history[-1]["epoch"] == 2
    with pytest.raises(ValueError, match="another config"):
        Trainer(cfg.replace(auto_window=4), dataset=ds, resume=path)


@pytest.mark.parametrize(
    "change, exc, match",
    [
        (dict(schedule="train_acc"), ValueError, "decay_train_acc"),
        (dict(decay_train_acc=[0.5, 0.4]), ValueError, "strictly increasing"),
        (dict(decay_train_acc=[1.5]), ValueError, "decay_train_acc"),
        (dict(auto_window=2), ValueError, "auto_window"),
        (dict(schedule="auto", gamma=1.5), ValueError, "gamma"),
        (dict(snapshot_epochs=[0]), ValueError, "snapshot_epochs"),
        (dict(snapshot_epochs=3), TypeError, "snapshot_epochs"),
        (dict(max_decays=-1), ValueError, "max_decays"),
    ],
)
def test_bad_host_schedule_settings(change, exc, match):
    with pytest.raises(exc, match=match):
        small_config(**change)
