"""Plots from the sweep table: the regime map's numbers are the mean over seeds of each run's value;
the difference panel is a − b; PNGs are written; bad axes are named."""

from __future__ import annotations


import numpy as np
import pytest

from lrdecay.sweep import regime_map, run_curves
from lrdecay.sweep.plots import regime_table


def fake_rows():
    """A hand-made table: 2 settings × lr {0.1, 0.3} × noise {0, 0.2} × 3 seeds × 2 epochs, the metric a
    known function of (setting, lr, noise, seed, epoch); the per-epoch ``lr`` column is decayed, as in a
    real table, so an axis named ``lr`` must read ``config.lr``."""
    rows = []
    for s_i, setting in enumerate(("decay", "flat")):
        for lr in (0.1, 0.3):
            for noise in (0.0, 0.2):
                for seed in range(3):
                    rid = f"{setting}-{lr}-{noise}-{seed}"
                    for epoch in (1, 2):
                        rows.append({
                            "run_id": rid, "setting": setting, "seed": seed, "config.lr": lr,
                            "config.label_noise": noise, "epoch": epoch, "lr": lr * 0.1 ** (epoch - 1),
                            "acc": s_i + 10 * lr + 100 * noise + seed + 1000 * epoch,
                            # a metric only evaluated at epoch 1
                            "probe": (s_i + seed) if epoch == 1 else None,
                        })
    return rows


def test_regime_table_is_the_mean_over_seeds_of_each_runs_value():
    t = regime_table(fake_rows(), "lr", "label_noise", "acc")
    assert t["columns"] == ("config.lr", "config.label_noise", "acc", "setting")
    assert t["x"] == [0.1, 0.3] and t["y"] == [0.0, 0.2]
    for s_i, setting in enumerate(("decay", "flat")):
        p = t["panels"][setting]
        for i, noise in enumerate((0.0, 0.2)):
            for j, lr in enumerate((0.1, 0.3)):
                want = np.mean([s_i + 10 * lr + 100 * noise + seed + 2000 for seed in range(3)])
                assert p["mean"][i, j] == pytest.approx(want)
                assert p["std"][i, j] == pytest.approx(1.0)  # seeds 0, 1, 2
                assert p["n"][i, j] == 3


def test_epoch_choice_and_last_value_of_a_sparse_metric():
    t = regime_table(fake_rows(), "lr", "label_noise", "acc", epoch=1)
    assert t["panels"]["decay"]["mean"][0, 0] == pytest.approx(0 + 1 + 0 + 1 + 1000)
    # "last" reads each run's last epoch that has a value: epoch 1 for "probe"
    t = regime_table(fake_rows(), "lr", "label_noise", "probe")
    assert t["panels"]["flat"]["mean"][1, 1] == pytest.approx(1 + 1)


@pytest.mark.slow
def test_regime_map_png_and_difference(tmp_path):
    rows = fake_rows()
    p = regime_map(rows, "lr", "label_noise", "acc", tmp_path / "map.png")
    assert (tmp_path / "map.png").stat().st_size > 1000 and p.endswith("map.png")
    regime_map(rows, "lr", "label_noise", "acc", tmp_path / "diff.png", diff=("flat", "decay"))
    assert (tmp_path / "diff.png").stat().st_size > 1000
    t = regime_table(rows, "lr", "label_noise", "acc")
    d = t["panels"]["flat"]["mean"] - t["panels"]["decay"]["mean"]
    assert np.allclose(d, 1.0)


@pytest.mark.slow
def test_run_curves_png(tmp_path):
    run_curves(fake_rows(), "acc", tmp_path / "c.png", by=["setting", "lr"])
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_bad_columns_are_named():
    with pytest.raises(ValueError, match="x 'momentum' is not a column of the table"):
        regime_table(fake_rows(), "momentum", "label_noise", "acc")
    with pytest.raises(ValueError, match=r"diff: \['slow'\] not among the values of 'setting'"):
        regime_map(fake_rows(), "lr", "label_noise", "acc", "/tmp/never.png", diff=("flat", "slow"))
    with pytest.raises(ValueError, match="table is empty"):
        regime_table([], "lr", "label_noise", "acc")


@pytest.mark.slow
def test_a_real_sweep_table(tmp_path):
    import torch

    from lrdecay.sweep import run_sweep

    torch.set_num_threads(1)
    spec = {"seeds": 2, "base": {"preset": "toy", "n_train": 200, "n_test": 100, "width": 8, "depth": 2,
                                 "epochs": 2, "milestones": [1], "batch_size": 50, "device": "cpu"},
            "grid": {"lr": [0.05, 0.2], "label_noise": [0.0, 0.3]},
            "settings": [{"name": "decay", "schedule": "multistep"}, {"name": "flat", "schedule": "constant"}]}
    res = run_sweep(spec, tmp_path / "sw", executor="stack", progress=False)
    t = regime_table(res, "lr", "label_noise", "test.test.acc")
    o = [o for o in res if o.run.setting == "flat" and o.config.lr == 0.2 and o.config.label_noise == 0.3]
    want = np.mean([x.final["test"]["test"]["acc"] for x in o])
    assert len(o) == 2 and t["panels"]["flat"]["mean"][1, 1] == pytest.approx(want)
    assert np.isfinite(t["panels"]["decay"]["mean"]).all()
    regime_map(tmp_path / "sw", "lr", "label_noise", "test.test.acc", tmp_path / "m.png", diff=("decay", "flat"))
