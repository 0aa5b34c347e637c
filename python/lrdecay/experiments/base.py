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

__all__ = ["BASE_PRESETS", "MAP_PICKS", "with_map_picks", "BASE_OPTIONS", "SCHEDULES", "base_runs", "snapshot_epochs", "describe", "stage_ends"]

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

#: The claim map's picks (docs/claims/selection.json, docs/regime/PREREGISTRATION.md) as presets of their
#: own: the quick preset with the picked grid point's settings (lrdecay.experiments.claim_map.point_settings),
#: exactly as the map ran it, on the quick preset's held-out seeds. Written after the map, before their
#: held-out runs.
MAP_PICKS: dict[str, dict[str, Any]] = {
    # claims-best (docs/claims/selection.json): C1, C2, C4, C5 supported on all three pilot seeds; the
    # paper-like rule chose no setting (no grid point met it even on pilot seed 1000)
    "claimsbest": {"width": 128, "n_train": 20_000, "label_noise": 0.0, "preset": "ps10", "weight_decay": 2e-3,
                   "milestones": [10, 15], "epochs": 20},
}


def with_map_picks(presets: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``presets`` plus one preset per claim-map pick: ``presets["quick"]`` with the pick's settings."""
    import copy

    return {**presets, **{name: {**copy.deepcopy(dict(presets["quick"])), **copy.deepcopy(changes)}
                          for name, changes in MAP_PICKS.items()}}


BASE_PRESETS = with_map_picks(BASE_PRESETS)

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
    if settings.get("data") is not None:  # real images: see the block at the end of this module
        return describe_images(settings)
    s = settings
    noise = f"{s['label_noise']:.0%} symmetric label noise" if s.get("label_noise") else "no label noise"
    return (
        f"Data: preset `{s['preset']}`, {s['n_train']:,} training samples, {s['n_test']:,} test samples "
        f"(plus one probe test set per pattern group), {noise}. Model: MLP {s['depth']}×{s['width']} with "
        f"BatchNorm. SGD momentum {s['momentum']}, weight decay {s['weight_decay']}, batch {s['batch_size']}, "
        f"{s['epochs']} epochs. lrDecay: LR {s['lr']} × {s['gamma']} at epochs {s['milestones']}; "
        f"large: constant {s['lr']}; small: constant {s['lr_small']}. Seeds {s['seeds']}."
    )


# ============================================================================ real images
# Kept apart from the pattern presets above, which the pre-registered regime search chooses. No search
# chose these. They follow the usual CIFAR recipe (He et al. 2016: SGD with momentum 0.9, LR 0.1 decayed
# ×0.1 twice, batch 128, weight decay 5e-4, random crop + flip), with 20% symmetric label noise (C4's
# flipped images) and small LR 0.01; sized for one GPU: `quick` ResNet-20, 60 epochs, 3 seeds; `full`
# ResNet-56, 160 epochs (milestones 80, 120 as in He et al.), 5 seeds. `tiny` (every data kind) is a CPU
# smoke test on a 256-image subset: its verdicts mean nothing. `digits` (8×8 images, 1,442 for training)
# has `tiny` (CI) and `quick` (a 2-core CPU), no GPU preset.
_IMAGE_SGD = {"lr": 0.1, "lr_small": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "gamma": 0.1, "label_noise": 0.2}
_IMAGE_TINY = {**_IMAGE_SGD, "model": "resnet20", "width": 4, "train_subset": 256, "epochs": 4, "milestones": [2, 3],
               "batch_size": 64, "seeds": [0, 1], "device": "cpu", "threads": 1}
_IMAGE_GPU = {
    "quick": {**_IMAGE_SGD, "model": "resnet20", "epochs": 60, "milestones": [30, 45], "batch_size": 128,
              "seeds": [0, 1, 2], "device": "auto", "threads": None},
    "full": {**_IMAGE_SGD, "model": "resnet56", "epochs": 160, "milestones": [80, 120], "batch_size": 128,
             "seeds": [0, 1, 2, 3, 4], "device": "auto", "threads": None},
}
# The MNIST family (28×28 grayscale IDX files) on a 2-core CPU: a BatchNorm MLP (a SmallCNN epoch costs
# ~15× an MLP's there), no augmentation (a flipped digit is another shape). `quick` is the setting the
# pre-registered Fashion-MNIST search picked (docs/regime-fmnist/); its seeds 10-12 were never seen by it.
MNIST_FAMILY = ("mnist", "fashion-mnist", "kmnist")
_MNIST_TINY = {**_IMAGE_SGD, "model": "mlp", "width": 64, "depth": 2, "train_subset": 512, "epochs": 4,
               "milestones": [2, 3], "batch_size": 64, "seeds": [0, 1], "device": "cpu", "threads": 1,
               "augment": "none"}
# The pick (docs/regime-fmnist/selection.json): 20% label noise, a 30,000-image subset, weight decay 0.002.
_MNIST_QUICK = {**_IMAGE_SGD, "model": "mlp", "width": 256, "depth": 2, "train_subset": 30_000, "weight_decay": 0.002,
                "label_noise": 0.2, "epochs": 20,
                "milestones": [10, 15], "batch_size": 128, "seeds": [10, 11, 12], "device": "cpu", "threads": 1,
                "augment": "none"}
BASE_IMAGE_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "digits": {
        "tiny": {**_IMAGE_SGD, "model": "resnet20", "width": 8, "epochs": 6, "milestones": [2, 4], "batch_size": 64,
                 "seeds": [0, 1], "device": "cpu", "threads": 1},
        "quick": {**_IMAGE_SGD, "model": "resnet20", "width": 16, "epochs": 30, "milestones": [10, 20],
                  "batch_size": 64, "seeds": [0, 1, 2], "device": "cpu", "threads": 1},
    },
    **{data: {"tiny": _IMAGE_TINY, **_IMAGE_GPU} for data in ("cifar10", "cifar100", "folder")},
    **{data: {"tiny": _MNIST_TINY, "quick": _MNIST_QUICK} for data in MNIST_FAMILY},
}

__all__ += ["MNIST_FAMILY", "BASE_IMAGE_PRESETS", "image_presets", "image_family", "prepare_images", "describe_images", "augment_text", "MODEL_TITLES"]

MODEL_TITLES = {"resnet20": "ResNet-20", "resnet56": "ResNet-56", "resnet18": "ResNet-18", "mlp": "MLP"}


def image_family(data: str) -> str:
    """Which group of per-experiment image settings ``data`` takes: ``digits``, ``mnist`` (the MNIST family)
    or ``other`` (CIFAR and folders)."""
    return "digits" if data == "digits" else "mnist" if data in MNIST_FAMILY else "other"


def image_presets(extra=None) -> dict[str, dict[str, dict[str, Any]]]:
    """:data:`BASE_IMAGE_PRESETS` (copied) with ``extra(data, preset)`` (a dict of more settings) merged into each."""
    import copy

    return {data: {p: {**copy.deepcopy(s), **(extra(data, p) if extra else {})} for p, s in by_preset.items()}
            for data, by_preset in BASE_IMAGE_PRESETS.items()}


def prepare_images(settings: dict) -> dict:
    """The ``prepare`` of every experiment on real images: ``train_subset`` is at most the training images
    there are (None: all of them), so a tiny preset runs on a small folder. Identical for every experiment,
    so their shared runs stay one run each. Pattern settings pass unchanged."""
    if settings.get("data") is None or settings.get("train_subset") is None:
        return settings
    from lrdecay.experiments import realdata

    meta = realdata.info(settings["data"], settings.get("data_dir"), settings.get("image_size", 32))
    if settings["train_subset"] >= meta.n_train_of(settings.get("classes")):
        return {**settings, "train_subset": None}
    return settings


def augment_text(settings: Mapping[str, Any]) -> str:
    """The augmentation of the settings' image runs, in words."""
    aug = settings.get("augment", "auto")
    if aug == "auto":
        aug = "none" if settings["data"] in ("digits", *MNIST_FAMILY) else "crop+flip"
    pad = settings.get("crop_padding", 4)
    return {"none": "none", "crop": f"random crop (zero padding {pad})", "flip": "horizontal flip",
            "crop+flip": f"random crop (zero padding {pad}) + horizontal flip"}[aug]


def describe_images(settings: Mapping[str, Any]) -> str:
    """One paragraph describing the base setting on real images (reads what the data holds)."""
    from lrdecay.experiments import realdata

    s = settings
    meta = realdata.info(s["data"], s.get("data_dir"), s.get("image_size", 32))
    classes = s.get("classes")
    n = meta.n_train_of(classes)
    of = "" if classes is None else f" of classes {classes}"
    sub = (f"a class-balanced subset of {s['train_subset']:,} of the {n:,} training images{of}"
           if s.get("train_subset") is not None else f"all {n:,} training images{of}")
    noise = f"{s['label_noise']:.0%} symmetric label noise" if s.get("label_noise") else "no label noise"
    width = f" (first-stage width {s['width']})" if s.get("width") else ""
    return (
        f"Data: {meta.describe()}; {sub}, the whole test split{of} as the test set, {noise} on the training "
        f"labels; augmentation: {augment_text(s)}"
        + ("" if augment_text(s) == "none" else " (on the device, drawn per image and epoch)") + ". Model: "
        f"{MODEL_TITLES.get(s['model'], s['model'])}{width}. SGD momentum {s['momentum']}, weight decay "
        f"{s['weight_decay']}, batch {s['batch_size']}, {s['epochs']} epochs. lrDecay: LR {s['lr']} × {s['gamma']} "
        f"at epochs {s['milestones']}; large: constant {s['lr']}; small: constant {s['lr_small']}. "
        f"Seeds {s['seeds']}."
    )
