"""The shared setting of the SGD experiments (stages, beliefs, memorization, complexity, transfer, autodecay).

One pattern dataset (an easy pattern, a fine low-amplitude complex pattern, symmetric label noise), an MLP
with BatchNorm, SGD momentum + weight decay, and three schedules:

- ``lrDecay``: the large LR, decayed by ``gamma`` at each milestone;
- ``large``: the large LR, constant;
- ``small``: the small LR (``lr_small``), constant.

The ``quick`` and ``full`` settings are the regime search's picks (``docs/regime/``, chosen by the premise
"lrDecay generalizes better than both constant LRs" on pilot seeds, see
:mod:`lrdecay.experiments.regime`); their seeds are held out from that search. The base runs record
every epoch's test and probe accuracies, an eval-mode pass over the training set, and model snapshots
mid stage 1 and at every stage end, so every experiment that needs them shares the same three runs.
"""

from __future__ import annotations

from typing import Any, Mapping

from lrdecay.experiments.runner import config_from

__all__ = ["BASE_PRESETS", "BASE_OPTIONS", "SCHEDULES", "base_runs", "snapshot_epochs", "describe", "stage_ends"]

BASE_PRESETS: dict[str, dict[str, Any]] = {
    # seconds: for tests and CI (4-class toy data, a narrow MLP); its verdicts mean nothing
    "tiny": {
        "preset": "toy", "n_train": 600, "n_test": 300, "label_noise": 0.2, "probe_groups": True,
        "model": "mlp", "width": 64, "depth": 2, "epochs": 6, "milestones": [2, 4], "batch_size": 64,
        "lr": 0.1, "lr_small": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "gamma": 0.1,
        "seeds": [0, 1, 2], "device": "cpu", "threads": 1,
    },
    # the 2-core CPU (two worker processes, one thread each): the regime search's pick
    # (docs/regime/REGIME.md: w512-n50000-noise0.4-ps10-clean-10-10-10-wd0.002), held-out seeds
    "quick": {
        "preset": "ps10-clean", "n_train": 50_000, "n_test": 5_000, "label_noise": 0.4, "probe_groups": True,
        "model": "mlp", "width": 512, "depth": 3, "epochs": 30, "milestones": [10, 20], "batch_size": 128,
        "lr": 0.1, "lr_small": 0.01, "momentum": 0.9, "weight_decay": 2e-3, "gamma": 0.1,
        "seeds": [10, 11, 12], "device": "cpu", "threads": 1,
    },
    # one GPU: the regime search's full pick (the same setting: within the CPU cost limit it was also the
    # best overall), a larger test set and 5 held-out seeds
    "full": {
        "preset": "ps10-clean", "n_train": 50_000, "n_test": 10_000, "label_noise": 0.4, "probe_groups": True,
        "model": "mlp", "width": 512, "depth": 3, "epochs": 30, "milestones": [10, 20], "batch_size": 128,
        "lr": 0.1, "lr_small": 0.01, "momentum": 0.9, "weight_decay": 2e-3, "gamma": 0.1,
        "seeds": [10, 11, 12, 13, 14], "device": "auto", "threads": None,
    },
}

#: Settings keys of the base setting that are not TrainConfig fields.
BASE_OPTIONS = {"lr_small": "the constant small LR of the `small` schedule"}

SCHEDULES = ("lrDecay", "large", "small")


def snapshot_epochs(settings: Mapping[str, Any]) -> list[int]:
    """Epochs at which the base runs keep a model snapshot: mid stage 1, every stage end."""
    m = [e for e in settings["milestones"] if e < settings["epochs"]]
    first = m[0] if m else settings["epochs"]
    return sorted({max(1, first // 2), *m, settings["epochs"]})


def stage_ends(settings: Mapping[str, Any]) -> list[int]:
    """The epochs at which each stage of the lrDecay run ends: the milestones, then the last epoch."""
    return [*[m for m in settings["milestones"] if m < settings["epochs"]], settings["epochs"]]


def base_runs(settings: Mapping[str, Any], seed: int, schedules=SCHEDULES) -> dict[str, Any]:
    """The base runs of one seed (``{schedule: TrainConfig}``), identical for every experiment."""
    common = dict(eval_every=1, eval_train=True, snapshot_epochs=snapshot_epochs(settings))
    make = {
        "lrDecay": lambda: config_from(settings, seed=seed, schedule="multistep", **common),
        "large": lambda: config_from(settings, seed=seed, schedule="constant", **common),
        "small": lambda: config_from(settings, seed=seed, schedule="constant", lr=settings["lr_small"], **common),
    }
    unknown = [s for s in schedules if s not in make]
    if unknown:
        raise ValueError(f"schedules must be among {list(SCHEDULES)}, got {unknown}")
    return {s: make[s]() for s in schedules}


def describe(settings: Mapping[str, Any]) -> str:
    """One paragraph describing the base setting (used in every experiment's setup text)."""
    s = settings
    noise = f"{s['label_noise']:.0%} symmetric label noise" if s.get("label_noise") else "no label noise"
    return (
        f"Data: preset `{s['preset']}`, {s['n_train']:,} training samples, {s['n_test']:,} test samples "
        f"(plus one probe test set per pattern group), {noise}. Model: MLP {s['depth']}×{s['width']} with "
        f"BatchNorm. SGD momentum {s['momentum']}, weight decay {s['weight_decay']}, batch {s['batch_size']}, "
        f"{s['epochs']} epochs. lrDecay: LR {s['lr']} × {s['gamma']} at epochs {s['milestones']}; "
        f"large: constant {s['lr']}; small: constant {s['lr_small']}. Seeds {s['seeds']}."
    )
