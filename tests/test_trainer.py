"""Trainer: learns, its per-epoch numbers equal a direct recomputation, logs/CSV/PNGs, determinism, CLI."""

from __future__ import annotations

import copy
import csv
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lrdecay.trainer import Trainer, TrainConfig, read_jsonl, train

from support import clusters, small_config, strip

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_short_run_learns_well_above_chance():
    train_ds = clusters(1200, seed=1)
    test_ds = clusters(600, seed=1, draw=1)  # same centres, fresh samples
    r = train(small_config(epochs=4), dataset=train_ds, test_sets={"test": test_ds})
    last = r.final
    assert last["train_acc"] > 0.8  # chance = 0.25
    assert last["test"]["test"]["acc"] > 0.8
    assert last["train_acc_group"]["easy"] > 0.9
    assert [h["epoch"] for h in r.history] == [1, 2, 3, 4]
    assert [h["lr"] for h in r.history] == pytest.approx([0.1, 0.1, 0.01, 0.01])


def test_short_run_learns_the_ps10_pattern_dataset():
    # the config builds the data itself: ps10 with label noise, a test split and one probe set per group
    cfg = small_config(n_train=2000, n_test=500, probe_groups=True, label_noise=0.2, epochs=3, width=64,
                       batch_size=128)
    r = train(cfg)
    last = r.final
    chance = 0.1
    assert last["test"]["probe_easy"]["acc"] > 0.7  # the easy pattern is learned fast
    assert last["test"]["test"]["acc"] > 3 * chance
    assert last["train_acc"] > 3 * chance
    assert set(last["test"]) == {"test", "probe_easy", "probe_complex", "probe_noise"}
    assert set(last["test"]["probe_complex"]["acc_group"]) == {"complex"}
    assert last["memorized"] is not None and 0 <= last["memorized"] <= 1


def _reference_run(cfg, ds, trainer):
    """A plain loop a user would write: same init, same per-epoch order, torch SGD + MultiStepLR."""
    model = copy.deepcopy(trainer.model)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, cfg.milestones, cfg.gamma)
    x = torch.from_numpy(ds["x"])
    y = torch.from_numpy(ds["y"]).long()
    n, B = len(y), cfg.batch_size
    records = []
    for epoch in range(cfg.epochs):
        perm = trainer.epoch_permutation(epoch)
        losses, correct, seen = torch.zeros(n), torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
        stop = (n // B) * B if cfg.drop_last else n
        for s in range(0, stop, B):
            idx = perm[s : s + B]
            out = model(x[idx])
            loss = F.cross_entropy(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses[idx] = F.cross_entropy(out.detach(), y[idx], reduction="none")
            correct[idx] = out.argmax(1) == y[idx]
            seen[idx] = True
        sched.step()
        g = torch.from_numpy(ds["group"]).long()
        fl = torch.from_numpy(ds["flipped"])
        records.append({
            "presented": int(seen.sum()),
            "train_loss": float(losses[seen].double().mean()),
            "train_acc": float(correct[seen].double().mean()),
            "easy": float(correct[seen & (g == 0)].double().mean()),
            "hard": float(correct[seen & (g == 1)].double().mean()),
            "memorized": float(correct[seen & fl].double().mean()),
            "clean": float(correct[seen & ~fl].double().mean()),
        })
    return model, records


@pytest.mark.parametrize("n,batch,drop_last", [(203, 32, False), (203, 32, True), (97, 97, False)])
def test_epoch_numbers_equal_a_plain_reference_loop(n, batch, drop_last):
    ds = clusters(n, seed=3, noise=0.2)
    cfg = small_config(epochs=3, batch_size=batch, drop_last=drop_last, weight_decay=1e-3, lr=0.05)
    trainer = Trainer(cfg, dataset=ds)
    ref_model, ref = _reference_run(cfg, ds, trainer)
    result = trainer.fit()
    for rec, want in zip(result.history, ref, strict=True):
        assert rec["presented"] == want["presented"] == (n // batch * batch if drop_last else n)
        assert rec["train_loss"] == pytest.approx(want["train_loss"], rel=1e-5)
        assert rec["train_acc"] == pytest.approx(want["train_acc"], abs=1.5 / n)
        assert rec["train_acc_group"]["easy"] == pytest.approx(want["easy"], abs=3 / n)
        assert rec["train_acc_group"]["hard"] == pytest.approx(want["hard"], abs=3 / n)
        assert rec["memorized"] == pytest.approx(want["memorized"], abs=1.5 / (0.2 * n))
        assert rec["train_acc_clean"] == pytest.approx(want["clean"], abs=3 / n)
    for p, q in zip(result.model.parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_statistics_equal_direct_recomputation_at_lr_zero():
    # lr = 0, full batch: the model never changes, so every training-pass statistic must equal a direct
    # forward of the model on the whole (noisy, grouped) dataset in train mode.
    ds = clusters(301, seed=5, noise=0.3)
    cfg = small_config(epochs=2, batch_size=None, lr=0.0, momentum=0.0, weight_decay=0.0, schedule="constant")
    trainer = Trainer(cfg, dataset=ds, test_sets={"same": ds})
    model0 = copy.deepcopy(trainer.model)
    result = trainer.fit()
    with torch.no_grad():
        out = model0.train()(torch.from_numpy(ds["x"]))
        loss = F.cross_entropy(out, torch.from_numpy(ds["y"]).long(), reduction="none").numpy().astype(np.float64)
        pred = out.argmax(1).numpy()
        # BatchNorm running statistics did move (lr = 0 does not stop them): evaluate the final model
        out_eval = copy.deepcopy(result.model).eval()(torch.from_numpy(ds["x"]))
    correct = pred == ds["y"]
    fl, g = ds["flipped"], ds["group"]
    for rec in result.history:
        assert rec["train_loss"] == pytest.approx(loss.mean(), rel=1e-5)
        assert rec["train_acc"] == correct.mean()
        assert rec["train_acc_group"] == {"easy": correct[g == 0].mean(), "hard": correct[g == 1].mean()}
        assert rec["memorized"] == correct[fl].mean()
        assert rec["train_acc_clean"] == correct[~fl].mean()
        assert rec["predicted_clean"] == (pred[fl] == ds["y_clean"][fl]).mean()
    # the test-set evaluation runs the model in eval mode (BatchNorm running statistics)
    ev = result.history[-1]["test"]["same"]
    pred_eval = out_eval.argmax(1).numpy()
    assert ev["acc"] == (pred_eval == ds["y"]).mean()
    assert ev["acc_group"]["hard"] == (pred_eval == ds["y"])[g == 1].mean()
    want_loss = F.cross_entropy(out_eval, torch.from_numpy(ds["y"]).long()).item()
    assert ev["loss"] == pytest.approx(want_loss, rel=1e-5)


@pytest.mark.parametrize("drop_last", [False, True])
def test_ledger_agrees_with_the_epoch_records(tmp_path, drop_last):
    from lrdecay import Ledger

    ds = clusters(203, seed=7, noise=0.25)
    r = train(small_config(ledger=True, drop_last=drop_last), dataset=ds, out_dir=tmp_path)
    s = r.summary()
    # The ledger numbers its recorded epochs from 0 (lrdecay.ledger); a trainer record's "epoch" counts
    # completed epochs, from 1: ledger row e is the epoch of record e + 1.
    assert list(s["epoch"]) == [0, 1, 2]
    assert [rec["epoch"] for rec in r.history] == [1, 2, 3]
    for e, rec in enumerate(r.history):
        assert s["presented"][e] == rec["presented"]
        assert s["accuracy"][e] == pytest.approx(rec["train_acc"], abs=1e-12)
        assert s["memorized"][e] == pytest.approx(rec["memorized"], abs=1e-12)
        assert s["accuracy_clean"][e] == pytest.approx(rec["train_acc_clean"], abs=1e-12)
        assert s["predicted_clean"][e] == pytest.approx(rec["predicted_clean"], abs=1e-12)
        groups = dict(zip(s["group_names"], s["accuracy_group"][e]))
        assert groups == pytest.approx(rec["train_acc_group"], abs=1e-12)
    # the ledger saved next to the logs round-trips
    saved = Ledger.load(r.files["ledger"])
    assert np.array_equal(saved.history(), r.ledger.history())


def test_same_seed_same_bytes_other_seed_differs():
    ds = clusters(150, seed=2)
    runs = [train(small_config(seed=s, epochs=2), dataset=ds) for s in (7, 7, 8)]
    sd = [r.model.state_dict() for r in runs]
    for k in sd[0]:
        assert torch.equal(sd[0][k], sd[1][k])
    assert any(not torch.equal(sd[0][k], sd[2][k]) for k in sd[0] if sd[0][k].is_floating_point())
    assert strip(runs[0].history) == strip(runs[1].history)


def test_epoch_permutation_is_a_seeded_permutation():
    trainer = Trainer(small_config(), dataset=clusters(77))
    p0, p0b, p1 = trainer.epoch_permutation(0), trainer.epoch_permutation(0), trainer.epoch_permutation(1)
    assert sorted(p0.tolist()) == list(range(77))
    assert torch.equal(p0, p0b) and not torch.equal(p0, p1)


@pytest.mark.slow
def test_logs_csv_and_pngs_are_well_formed(tmp_path):
    ds = clusters(160, seed=4, noise=0.1)
    cfg = small_config(epochs=3, plots=True, eval_every=2, checkpoint_every=1)
    r = train(cfg, dataset=ds, test_sets={"probe": ds}, out_dir=tmp_path)
    assert set(r.files) >= {"config", "log", "csv", "checkpoint", "loss_png", "accuracy_png"}
    recs = read_jsonl(r.files["log"])
    assert recs == json.loads(json.dumps(r.history))
    assert [x["epoch"] for x in recs] == [1, 2, 3]
    # eval_every=2: epochs 2 and 3 (the last) carry test results
    assert ["test" in x for x in recs] == [False, True, True]
    for x in recs:
        for key in ("lr", "train_loss", "train_acc", "train_acc_clean", "memorized", "time", "elapsed"):
            assert isinstance(x[key], float) and math.isfinite(x[key])
        assert set(x["train_acc_group"]) == {"easy", "hard"}
    assert set(recs[1]["test"]["probe"]) == {"acc", "loss", "acc_group"}
    with open(r.files["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    assert float(rows[2]["test.probe.acc"]) == recs[2]["test"]["probe"]["acc"]
    assert rows[0]["test.probe.acc"] == ""
    assert float(rows[1]["train_acc_group.hard"]) == recs[1]["train_acc_group"]["hard"]
    assert TrainConfig.from_json(r.files["config"]) == cfg
    import matplotlib.image

    for key in ("loss_png", "accuracy_png"):
        with open(r.files[key], "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        img = matplotlib.image.imread(r.files[key])
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100


def test_callbacks_see_each_epoch_and_can_add_fields(tmp_path):
    seen = []

    def cb(trainer, record):
        seen.append((trainer.epoch, record["epoch"]))
        record["feat_norm"] = float(trainer.features(trainer.data.x[:5]).norm())
        if trainer.epoch in trainer.config.decay_epochs():
            trainer.save_checkpoint(tmp_path / f"stage{trainer.epoch}.pt")

    r = train(small_config(epochs=3, milestones=[1, 2]), dataset=clusters(64), callbacks=[cb], out_dir=tmp_path)
    assert seen == [(1, 1), (2, 2), (3, 3)]
    assert all("feat_norm" in rec for rec in read_jsonl(r.files["log"]))
    assert (tmp_path / "stage1.pt").exists() and (tmp_path / "stage2.pt").exists()


def test_features_match_model_split():
    trainer = Trainer(small_config(), dataset=clusters(50))
    x = trainer.data.x[:9]
    f = trainer.features(x)
    trainer.model.eval()
    torch.testing.assert_close(trainer.model.head(f), trainer.model(x))


def test_config_json_round_trip(tmp_path):
    cfg = TrainConfig(epochs=7, milestones=[2, 5], label_noise=0.2, batch_size=None, width=33, schedule="cosine")
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    cfg.to_json(tmp_path / "c.json")
    assert TrainConfig.from_json(tmp_path / "c.json") == cfg
    assert TrainConfig.from_dict(json.loads(cfg.to_json())) == cfg


@pytest.mark.parametrize("sched,lrs", [
    ("multistep", [0.1, 0.1, 0.01, 0.01, 0.001]),
    ("step", [0.1, 0.1, 0.01, 0.01, 0.001]),
    ("exponential", [0.1 * 0.5**e for e in range(5)]),
    ("constant", [0.1] * 5),
])
def test_torch_schedulers_give_the_config_lr(sched, lrs):
    gamma = 0.5 if sched == "exponential" else 0.1
    cfg = small_config(epochs=5, schedule=sched, milestones=[2, 4], step_size=2, gamma=gamma)
    r = train(cfg, dataset=clusters(40))
    assert [h["lr"] for h in r.history] == pytest.approx(lrs, rel=1e-12)
    assert [cfg.lr_at_epoch(e) for e in range(5)] == pytest.approx(lrs, rel=1e-12)


def test_cosine_lr_matches_torch():
    cfg = small_config(epochs=6, schedule="cosine", eta_min=0.001)
    r = train(cfg, dataset=clusters(40))
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    s = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 6, 0.001)
    want = []
    for _ in range(6):
        want.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    assert [h["lr"] for h in r.history] == pytest.approx(want, rel=1e-12)
    assert [cfg.lr_at_epoch(e) for e in range(6)] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("schedule", ["multistep", "step", "exponential", "cosine", "constant"])
def test_fused_optimizer_run_equals_torch_sgd_run(schedule):
    ds = clusters(203, seed=3, noise=0.2)
    kw = dict(epochs=4, schedule=schedule, milestones=[1, 3], step_size=2, gamma=0.5, eta_min=0.01)
    fused = train(small_config(optimizer="fused", **kw), dataset=ds)
    plain = train(small_config(optimizer="torch", **kw), dataset=ds)
    assert [h["lr"] for h in fused.history] == pytest.approx([h["lr"] for h in plain.history], rel=1e-12)
    for a, b in zip(fused.history, plain.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    for p, q in zip(fused.model.parameters(), plain.model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_cli_train(tmp_path, capsys):
    from lrdecay.cli import main

    ds = clusters(90, seed=6)
    np.savez(tmp_path / "d.npz", **{k: np.asarray(v) for k, v in ds.items()})
    small_config(epochs=2).to_json(tmp_path / "cfg.json")
    rc = main(["train", "--config", str(tmp_path / "cfg.json"), "--data", str(tmp_path / "d.npz"),
               "--out", str(tmp_path / "run"), "--epochs", "3", "--lr", "0.05"])
    assert rc == 0
    recs = read_jsonl(tmp_path / "run" / "log.jsonl")
    assert len(recs) == 3 and recs[0]["lr"] == 0.05
    cfg = TrainConfig.from_json(tmp_path / "run" / "config.json")
    assert cfg.epochs == 3 and cfg.lr == 0.05 and cfg.width == 16
    assert "epoch 3" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["train", "--config", str(tmp_path / "cfg.json"), "--data", str(tmp_path / "d.npz"), "--lr", "-1"])
    assert e.value.code == 2
    assert "lr must be" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graph_equals_eager():
    ds = clusters(1000, seed=8, noise=0.2)  # 1000 = 7 full batches of 128 + a tail of 104
    runs = []
    for graph in (True, False):
        cfg = small_config(epochs=4, batch_size=128, optimizer="fused", cuda_graph=graph, device="cuda",
                           milestones=[1, 3], width=64)
        t = Trainer(cfg, dataset=ds, test_sets={"t": ds})
        assert t.use_graph == graph
        runs.append(t.fit())
    g, e = runs
    assert strip(g.history) == strip(e.history)
    for a, b in zip(g.model.state_dict().values(), e.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
