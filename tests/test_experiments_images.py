"""The experiments on real images: ``lrdecay reproduce --data digits --preset tiny`` end to end (what CI
runs), the image presets of every record, what is checked before anything is trained or written, the
transfer target ("another label set": the other CIFAR, or a held-out class split) and the frozen features
it probes, and the experiment that does not apply (complexity)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from lrdecay import experiments
from lrdecay.cli import main
from lrdecay.experiments import realdata, runner, transfer
from lrdecay.experiments.common import DOES_NOT_APPLY, INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED

from support.image_files import make_cifar10, make_tree, random_cifar

STATUSES = {SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE}
IMAGE_EXPERIMENTS = [n for n in experiments.NAMES if n != "complexity"]


@pytest.fixture(autouse=True)
def _fresh_data_info():
    realdata.clear_cache()  # each test writes its own folders
    yield
    realdata.clear_cache()


def _cifar100(root, n_train=220, n_test=120, seed=5):
    from lrdecay.images import write_cifar

    names = [f"c{i:03d}" for i in range(100)]
    return write_cifar(root, "cifar100", random_cifar(n_train, 100, seed), random_cifar(n_test, 100, seed + 1), names)


# ---------------------------------------------------------------------------- digits end to end (CI's command)
@pytest.fixture(scope="module")
def digits_report(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("digits")) + "/report"
    realdata.clear_cache()
    code = main(["reproduce", "--data", "digits", "--preset", "tiny", "--out", out, "--workers", "2"])
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        return code, out, json.load(f)


@pytest.mark.slow
def test_digits_reproduce_runs_every_experiment_that_applies(digits_report):
    code, out, payload = digits_report
    assert code == 0
    results = payload["experiments"]
    assert list(results) == list(experiments.NAMES)
    assert payload["meta"]["data"] == "digits" and "--data digits" in payload["meta"]["command"]
    for name in IMAGE_EXPERIMENTS:
        r = results[name]
        e = experiments.get(name)
        assert r["data"] == "digits" and r["settings"]["data"] == "digits"
        assert r["verdict"]["status"] in STATUSES
        assert r["verdict"]["status"] == e.judge(r["per_seed"]).status  # the rule applied to the numbers
        assert r["seeds"] == [0, 1]
        for k in r["verdict_keys"]:
            assert len(r["per_seed"][k]) == 2, (name, k)
        for p in r["plots"]:
            assert os.path.getsize(os.path.join(out, p)) > 1000
        assert "scikit-learn's digits" in r["setup"] and "ResNet-20" in r["setup"]
    # base runs (3 schedules), gd (SGD + GD), autodecay (3 arms: auto, auto_val, plateau), transfer (its own 2
    # class-split runs): × 2 seeds
    runs = os.path.join(out, "runs", "runs")
    assert len([d for d in os.listdir(runs) if os.path.isdir(os.path.join(runs, d))]) == 2 * (3 + 2 + 3 + 2)
    assert results["beliefs"]["training"]["shared_runs"] == 6


@pytest.mark.slow
def test_digits_report_says_complexity_does_not_apply(digits_report):
    _, out, payload = digits_report
    r = payload["experiments"]["complexity"]
    assert r["verdict"]["status"] == DOES_NOT_APPLY
    assert "pattern groups" in r["verdict"]["details"]["reason"]
    assert r["training"]["runs"] == 0 and r["per_seed"] == {}
    md = open(os.path.join(out, "report.md"), encoding="utf-8").read()
    assert "| C5 | `complexity` | **does not apply** | needs pattern groups" in md
    assert "**Does not apply** to `digits`" in md
    assert "- data: `digits`" in md


@pytest.mark.slow
def test_digits_memorization_reads_flipped_images(digits_report):
    _, _, payload = digits_report
    r = payload["experiments"]["memorization"]
    assert r["settings"]["label_noise"] == 0.2
    for k in ("mem_eval_stage1_lrDecay", "mem_eval_stage1_small", "mem_eval_final_lrDecay"):
        assert all(0.0 <= v <= 1.0 for v in r["per_seed"][k])


@pytest.mark.slow
def test_digits_gd_trains_on_a_subset_without_augmentation(digits_report):
    _, out, payload = digits_report
    r = payload["experiments"]["gd"]
    assert r["settings"]["augment"] == "none" and r["settings"]["gd_n_train"] == 256
    assert "augmentation none" in r["setup"]
    for d_gd, acc_sgd, acc_gd in zip(r["per_seed"]["decay1_gd"], r["per_seed"]["train_acc_at_decay1_sgd"],
                                     r["per_seed"]["train_acc_at_decay1_gd"]):
        if d_gd is not None:
            assert acc_gd >= acc_sgd


@pytest.mark.slow
def test_digits_transfer_holds_out_half_the_classes(digits_report):
    _, out, payload = digits_report
    r = payload["experiments"]["transfer"]
    assert r["settings"]["transfer_target"] == "classes"
    assert "first 5 classes only (0, 1, 2, 3, 4)" in r["setup"] and "held-out classes (5, 6, 7, 8, 9)" in r["setup"]
    for k in ("probe_stage1", "probe_final", "probe_final_large"):
        assert all(0.0 <= v <= 1.0 for v in r["per_seed"][k])
    # its source runs are its own: trained on classes 0-4 only
    runs = os.path.join(out, "runs", "runs")
    classes = set()
    for d in os.listdir(runs):
        with open(os.path.join(runs, d, "config.json"), encoding="utf-8") as f:
            classes.add(str(json.load(f)["classes"]))
    assert classes == {"None", "[0, 1, 2, 3, 4]"}


@pytest.mark.slow
def test_digits_rerun_reads_the_runs_back(digits_report):
    _, out, payload = digits_report
    again = experiments.run_all(["transfer", "stages"], "tiny", data="digits", out_dir=out, progress=False)
    for name in ("transfer", "stages"):
        assert again[name]["training"]["cached_runs"] == again[name]["training"]["runs"]
        assert again[name]["per_seed"] == payload["experiments"][name]["per_seed"]


# ---------------------------------------------------------------------------- presets
@pytest.mark.parametrize("name", list(experiments.NAMES))
def test_image_presets_are_complete_and_checked(name):
    e = experiments.get(name)
    if name == "complexity":
        assert "images" not in e.applies_to and e.image_presets == {} and "pattern groups" in e.needs
        with pytest.raises(ValueError, match="does not apply"):
            runner.resolve_settings(e, "tiny", data="digits")
        return
    assert "images" in e.applies_to
    assert set(e.image_presets) == set(experiments.IMAGE_PRESETS)
    for data, presets in experiments.IMAGE_PRESETS.items():
        assert tuple(e.image_presets[data]) == presets
        root = None if data == "digits" else "/somewhere"
        for p in presets:
            s = runner.resolve_settings(e, p, data=data, data_dir=root)  # every key a field or an option
            assert s["data"] == data and s["data_dir"] == root
            assert "preset" not in s and "n_train" not in s and not s.get("probe_groups")
            assert s["label_noise"] == 0.2
            # the MNIST family runs a BatchNorm MLP on the CPU; the others ResNets
            assert s["model"] == "mlp" if data in ("mnist", "fashion-mnist", "kmnist") else s["model"].startswith("resnet")
        with pytest.raises(ValueError, match="unknown setting"):
            runner.resolve_settings(e, presets[0], data=data, data_dir=root, overrides={"widht": 3})
    with pytest.raises(ValueError, match=r"preset must be one of \['quick', 'tiny'\] for data='digits'"):
        runner.resolve_settings(e, "full", data="digits")


def test_gpu_presets_follow_the_cifar_recipe():
    s = runner.resolve_settings(experiments.get("stages"), "full", data="cifar10", data_dir="/x")
    assert (s["model"], s["epochs"], s["milestones"], s["batch_size"], s["lr"]) == ("resnet56", 160, [80, 120], 128, 0.1)
    assert len(s["seeds"]) == 5 and s["device"] == "auto"
    q = runner.resolve_settings(experiments.get("stages"), "quick", data="cifar100", data_dir="/x")
    assert (q["model"], q["epochs"], q["milestones"]) == ("resnet20", 60, [30, 45]) and len(q["seeds"]) == 3
    g = runner.resolve_settings(experiments.get("gd"), "full", data="cifar10", data_dir="/x")
    assert g["augment"] == "none" and g["gd_n_train"] == 5000


def test_data_dir_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = runner.resolve_settings(experiments.get("stages"), "tiny", data="folder", data_dir="trees")
    assert s["data_dir"] == os.path.join(str(tmp_path), "trees")


# ---------------------------------------------------------------------------- checked before anything runs
def _cli_error(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("argv, match", [
    (["--data", "cifar10", "--data-dir", "{tmp}/nowhere"], "nowhere.*CIFAR-10"),
    (["--data", "cifar10"], "needs data_dir"),
    (["--data", "folder"], "needs data_dir"),
    (["--data", "digits", "--data-dir", "{tmp}"], "takes no data_dir"),
    (["--data-dir", "{tmp}"], "--data-dir goes with --data"),
    (["--data", "digits", "--preset", "full"], r"preset must be one of \['quick', 'tiny'\] for data='digits'"),
    (["--data", "cifar100", "--data-dir", "{tmp}/c10"], r"CIFAR-100 \(train\) not found"),
])
def test_cli_errors_exit_2_and_write_nothing(tmp_path, capsys, argv, match):
    import re

    make_cifar10(str(tmp_path / "c10"))
    out = tmp_path / "report"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--preset" not in argv:
        argv += ["--preset", "tiny"]
    for cmd in (["reproduce"], ["run", "stages"]):
        err = _cli_error(capsys, [*cmd, *argv, "--out", str(out)])
        assert re.search(match, err), err
        assert not out.exists()


def test_folder_without_a_test_split_is_refused_before_training(tmp_path, capsys):
    make_tree(str(tmp_path / "tree"), per_class=(6, 6, 6), size=(8, 8))
    out = tmp_path / "report"
    err = _cli_error(capsys, ["reproduce", "--data", "folder", "--data-dir", str(tmp_path / "tree"), "--preset",
                              "tiny", "--out", str(out)])
    assert "test split" in err and not out.exists()


def test_runs_beyond_the_data_are_errors_naming_the_field(tmp_path):
    from lrdecay.trainer import TrainConfig

    make_cifar10(str(tmp_path), n_train=250)
    cfg = TrainConfig(data="cifar10", data_dir=str(tmp_path), train_subset=251, batch_size=16)
    with pytest.raises(ValueError, match=r"train_subset=251 exceeds the 250 training images"):
        realdata.check_configs([cfg])
    n_01 = int(np.isin(__import__("lrdecay").data.cifar10(str(tmp_path)).y, [0, 1]).sum())
    with pytest.raises(ValueError, match=rf"train_subset={n_01 + 1} exceeds the {n_01} training images of classes"):
        realdata.check_configs([cfg.replace(classes=[0, 1], train_subset=n_01 + 1)])
    with pytest.raises(ValueError, match=r"classes must be indices in \[0, 10\)"):
        realdata.check_configs([cfg.replace(classes=[3, 10], train_subset=None)])
    realdata.check_configs([cfg.replace(classes=[0, 1], train_subset=n_01)])  # fits
    with pytest.raises(ValueError, match=r"batch_size=128 exceeds the run's 100 training images"):
        realdata.check_configs([cfg.replace(train_subset=100, batch_size=128)])
    realdata.check_configs([cfg.replace(train_subset=100, batch_size=None)])  # full batch


def test_tiny_subset_is_capped_on_small_data(tmp_path):
    make_cifar10(str(tmp_path), n_train=200, n_test=40)
    plan = experiments.plan(["stages", "gd", "autodecay"], "tiny", data="cifar10", data_dir=str(tmp_path))
    assert {s["train_subset"] for s in plan.settings.values()} == {None}  # 256 > 200: all of them
    assert plan.settings["gd"]["gd_n_train"] == 128
    make_cifar10(str(tmp_path / "big"), n_train=400, n_test=40)
    plan = experiments.plan(["stages"], "tiny", data="cifar10", data_dir=str(tmp_path / "big"))
    assert plan.settings["stages"]["train_subset"] == 256


def test_run_complexity_on_images_reports_that_it_does_not_apply(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["run", "complexity", "--data", "digits", "--preset", "tiny", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "C5  complexity  does not apply (needs pattern groups" in printed
    assert not (out / "runs").exists()
    md = (out / "report.md").read_text()
    assert "**does not apply**" in md and "## C5" in md


# ---------------------------------------------------------------------------- transfer: another label set
def test_transfer_target_is_the_other_cifar_when_the_folder_holds_it(tmp_path):
    make_cifar10(str(tmp_path))
    plan = experiments.plan(["transfer"], "tiny", data="cifar10", data_dir=str(tmp_path))
    assert plan.settings["transfer"]["transfer_target"] == "classes"
    _cifar100(str(tmp_path))
    realdata.clear_cache()
    plan = experiments.plan(["transfer", "stages"], "tiny", data="cifar10", data_dir=str(tmp_path))
    s = plan.settings["transfer"]
    assert s["transfer_target"] == "cifar100"
    assert (s["n_target_train"], s["n_target_test"]) == (220, 120)  # capped at what CIFAR-100 holds here
    # its source runs are the shared base runs (stages trains the same lrDecay and large runs)
    keys = {e: {runner.run_key(c) for seed in (0, 1) for c in experiments.get(e).runs(plan.settings[e], seed, {}).values()}
            for e in ("transfer", "stages")}
    assert keys["transfer"] == keys["stages"] and len(keys["transfer"]) == 4
    train, test = transfer.target_images(s, seed=0)
    assert train["n_classes"] == 100 and train["x"].shape == (220, 3, 32, 32)
    with pytest.raises(ValueError, match="another label set"):
        experiments.plan(["transfer"], "tiny", data="cifar10", data_dir=str(tmp_path),
                         overrides={"transfer": {"transfer_target": "cifar10"}})


def test_explicit_other_cifar_must_be_there(tmp_path):
    from lrdecay.images import DatasetNotFoundError

    make_cifar10(str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="CIFAR-100"):
        experiments.plan(["transfer"], "tiny", data="cifar10", data_dir=str(tmp_path),
                         overrides={"transfer": {"transfer_target": "cifar100"}})
    with pytest.raises(ValueError, match="transfer_target must be one of"):
        experiments.plan(["transfer"], "tiny", data="cifar10", data_dir=str(tmp_path),
                         overrides={"transfer": {"transfer_target": "imagenet"}})


def test_class_split_target_is_exactly_the_held_out_classes():
    from lrdecay.data import digits

    plan = experiments.plan(["transfer"], "tiny", data="digits")
    s = plan.settings["transfer"]
    src = transfer.source_settings(s)
    assert src["classes"] == [0, 1, 2, 3, 4]
    for seed in (0, 3):
        train, test = transfer.target_images(s, seed)
        assert train["class_names"] == tuple("56789") and train["n_classes"] == 5
        full = digits("train")
        held = full.select_classes([5, 6, 7, 8, 9])
        assert len(train["y"]) == s["n_target_train"] == 300
        ref = held.balanced_subset(300, seed=seed)
        np.testing.assert_array_equal(train["x"], ref.x)
        np.testing.assert_array_equal(train["y"], ref.y)
        assert set(np.unique(train["y"])) == set(range(5))
        # no target image is a source image: the source trains on classes 0-4 only
        src_imgs = {x.tobytes() for x in full.select_classes([0, 1, 2, 3, 4]).x}
        assert not any(x.tobytes() in src_imgs for x in train["x"])
        assert len(test["y"]) == 150
    # the source runs carry the classes; the target is never trained on
    cfgs = transfer.runs(s, 0, {})
    assert set(cfgs) == {"lrDecay", "large"} and all(c.classes == [0, 1, 2, 3, 4] for c in cfgs.values())


def test_class_split_of_too_few_classes_does_not_apply(tmp_path):
    for split in ("train", "test"):
        make_tree(str(tmp_path / split), classes=("a", "b", "c"), per_class=(30, 30, 30), size=(8, 8), nested=False)
    plan = experiments.plan(["transfer", "stages"], "tiny", data="folder", data_dir=str(tmp_path))
    assert "transfer" in plan.skipped and "at least 4 classes" in plan.skipped["transfer"]
    assert [e.name for e in plan.runnable] == ["stages"]


@pytest.mark.slow
def test_image_features_are_the_trainers(one_torch_thread):
    """The frozen model rebuilt from a snapshot, fed target images normalized with the run's own
    training statistics, gives the penultimate activations the trainer's model gives."""
    from lrdecay.data import digits
    from lrdecay.trainer import TrainConfig, train

    cfg = TrainConfig(data="digits", model="resnet20", width=4, epochs=2, milestones=[1], batch_size=64,
                      classes=[7, 2, 9], train_subset=200, label_noise=0.1, device="cpu", progress=False,
                      plots=False, snapshot_epochs=[1, 2], seed=3)
    x = digits("test").select_classes([0, 1]).x  # images of other classes than the run's
    seen = {}

    def grab(trainer, record):
        seen[trainer.epoch] = trainer.features(x).cpu()

    res = train(cfg, callbacks=[grab])
    for e in (1, 2):
        model, features = transfer.image_features(cfg, res.snapshots[e], torch.device("cpu"))
        torch.testing.assert_close(features(model, x), seen[e], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(seen[1], seen[2])


# ---------------------------------------------------------------------------- the cifar and folder paths
@pytest.mark.slow
def test_cifar10_to_cifar100_transfer_end_to_end(tmp_path, one_torch_thread):
    make_cifar10(str(tmp_path), n_train=260, n_test=60)
    _cifar100(str(tmp_path))
    r = experiments.run_all(["transfer"], "tiny", data="cifar10", data_dir=str(tmp_path), seeds=[0],
                            out_dir=str(tmp_path / "report"), progress=False)["transfer"]
    assert r["settings"]["transfer_target"] == "cifar100" and r["settings"]["train_subset"] == 256
    assert "CIFAR-100" in r["setup"] and "mutually exclusive" in r["setup"]
    assert r["verdict"]["status"] in STATUSES
    assert r["table"]["headers"][-1] == "fine-tune: target acc"
    for k in ("probe_stage1", "probe_final", "probe_final_large"):
        assert 0.0 <= r["per_seed"][k][0] <= 1.0


@pytest.mark.slow
def test_folder_reproduce_with_class_split(tmp_path, one_torch_thread):
    classes = ("ant", "bee", "cat", "dog", "eel")
    for split, n in (("train", 30), ("test", 5)):
        make_tree(str(tmp_path / "tree" / split), classes=classes, per_class=(n,) * 5, size=(10, 12), seed=len(split),
                  nested=False)
    out = tmp_path / "report"
    assert main(["reproduce", "--only", "transfer,complexity", "--data", "folder", "--data-dir",
                 str(tmp_path / "tree"), "--preset", "tiny", "--seeds", "1", "--workers", "1", "--out", str(out)]) == 0
    payload = json.loads((out / "results.json").read_text())
    r = payload["experiments"]["transfer"]
    assert r["settings"]["transfer_target"] == "classes"
    assert "(ant, bee, cat)" in r["setup"] and "(dog, eel)" in r["setup"]
    assert r["settings"]["n_target_train"] == 60 and r["settings"]["n_target_test"] == 10
    assert r["settings"]["train_subset"] is None  # 256 > the 90 source images: all of them
    assert payload["experiments"]["complexity"]["verdict"]["status"] == DOES_NOT_APPLY
    # run ids leave data_dir out: the same folder name elsewhere must not read these runs back as its own
    import shutil

    shutil.copytree(tmp_path / "tree", tmp_path / "other")
    with pytest.raises(ValueError, match="use another output folder"):
        experiments.run_all(["transfer"], "tiny", data="folder", data_dir=str(tmp_path / "other"), seeds=1,
                            out_dir=str(out), progress=False)


# ---------------------------------------------------------------------------- TrainConfig.classes
@pytest.mark.slow
def test_train_config_classes_selects_and_relabels(one_torch_thread, tmp_path, capsys):
    from lrdecay.data import digits
    from lrdecay.trainer import TrainConfig, Trainer

    with pytest.raises(ValueError, match="classes selects classes of real images"):
        TrainConfig(classes=[0, 1])
    with pytest.raises(ValueError, match="at least 2 distinct"):
        TrainConfig(data="digits", classes=[1, 1])
    with pytest.raises(ValueError, match="at least 2 distinct"):
        TrainConfig(data="digits", classes=[3])
    with pytest.raises(TypeError, match=r"classes\[0\]"):
        TrainConfig(data="digits", classes=[1.0, 2])
    with pytest.raises(ValueError, match=r"classes\[1\]"):
        TrainConfig(data="digits", classes=[1, -2])
    cfg = TrainConfig(data="digits", classes=[np.int64(3), 1], model="resnet20", width=4, epochs=1, device="cpu",
                      progress=False, plots=False)
    assert cfg.classes == [3, 1] and all(type(c) is int for c in cfg.classes)
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    t = Trainer(cfg)
    for split, d in (("train", t.data), ("test", t.test_data["test"])):
        ref = digits(split)
        keep = np.isin(ref.y, [3, 1])
        np.testing.assert_array_equal(d.x.cpu().numpy(), ref.x[keep])
        np.testing.assert_array_equal(d.y.cpu().numpy(), np.where(ref.y[keep] == 3, 0, 1))  # 3 → 0, 1 → 1
        assert d.n_classes == 2
    with pytest.raises(ValueError, match=r"classes must be indices in \[0, 10\)"):
        Trainer(cfg.replace(classes=[3, 10]))
    # the CLI flag
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--classes", "2,7", "--model", "resnet20", "--width", "4", "--epochs",
                 "1", "--device", "cpu", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["classes"] == [2, 7]
    err = _cli_error(capsys, ["train", "--data", "digits", "--classes", "2,x", "--out", str(tmp_path / "bad")])
    assert "--classes must be comma-separated class indices" in err


def test_memorization_reads_noisy_runs_even_when_a_preset_has_clean_labels():
    # Memorization needs flipped labels: where an image preset has none, it trains its own runs of the same
    # setting with NOISE_IF_CLEAN; elsewhere it shares the other experiments' runs (same label noise).
    from lrdecay.experiments import memorization

    for data, presets in experiments.IMAGE_PRESETS.items():
        root = None if data == "digits" else "/somewhere"
        for p in presets:
            base_noise = runner.resolve_settings(experiments.get("stages"), p, data=data, data_dir=root)["label_noise"]
            mem = runner.resolve_settings(experiments.get("memorization"), p, data=data, data_dir=root)
            assert mem["label_noise"] == (base_noise or memorization.NOISE_IF_CLEAN)
