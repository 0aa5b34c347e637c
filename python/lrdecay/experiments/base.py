"""The shared setting of the SGD experiments (stages, beliefs, memorization, complexity, transfer).

One pattern dataset (easy pattern, fine low-amplitude complex pattern, a noise group, symmetric label
noise), an MLP with BatchNorm, SGD momentum + weight decay, and three schedules:

- ``lrDecay``: large LR, decayed by ``gamma`` at each milestone;
- ``large``: the large LR, constant;
- ``small``: the small LR, constant.

The settings come from PROTOTYPE.md (the first settings that showed the effects). Experiments that share
these settings share the runs through a :class:`~lrdecay.experiments.common.RunCache`.
"""

from __future__ import annotations

from typing import Any, Mapping

from lrdecay.experiments.common import RunCache, RunOutput, base_config, train_run

__all__ = ["BASE_PRESETS", "SCHEDULES", "schedule_run", "snapshot_epochs", "describe"]

BASE_PRESETS: dict[str, dict[str, Any]] = {
    # seconds: for tests and CI (4-class toy data, a narrow MLP)
    "tiny": {
        "preset": "toy", "n_train": 600, "n_test": 300, "label_noise": 0.2, "probe_groups": True,
        "model": "mlp", "width": 64, "depth": 2, "epochs": 6, "milestones": [2, 4], "batch_size": 64,
        "lr": 0.1, "lr_small": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "gamma": 0.1,
        "seeds": [0, 1, 2], "device": "cpu", "threads": 1,
    },
    # the 2-core CPU: 32k samples, a 3×64 MLP, 30 epochs, one thread (see PRESET_NOTES for what was tried)
    "quick": {
        "preset": "ps10", "n_train": 32_000, "n_test": 2_000, "label_noise": 0.2, "probe_groups": True,
        "model": "mlp", "width": 64, "depth": 3, "epochs": 30, "milestones": [10, 20], "batch_size": 128,
        "lr": 0.1, "lr_small": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "gamma": 0.1,
        "seeds": [0, 1, 2], "device": "cpu", "threads": 1,
    },
    # GPU-sized: the prototype's 50k samples, 5 seeds
    "full": {
        "preset": "ps10", "n_train": 50_000, "n_test": 10_000, "label_noise": 0.2, "probe_groups": True,
        "model": "mlp", "width": 512, "depth": 3, "epochs": 30, "milestones": [10, 20], "batch_size": 128,
        "lr": 0.1, "lr_small": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "gamma": 0.1,
        "seeds": [0, 1, 2, 3, 4], "device": "auto", "threads": None,
    },
}

SCHEDULES = ("lrDecay", "large", "small")


def snapshot_epochs(settings: Mapping[str, Any]) -> list[int]:
    """Epochs at which the base runs keep a model snapshot: mid stage 1, every stage end."""
    m = [e for e in settings["milestones"] if e < settings["epochs"]]
    first = m[0] if m else settings["epochs"]
    return sorted({max(1, first // 2), *m, settings["epochs"]})


def schedule_run(
    settings: Mapping[str, Any],
    schedule: str,
    seed: int,
    *,
    cache: RunCache | None = None,
    device: str | None = None,
    label: str = "",
) -> RunOutput:
    """Train (or fetch from ``cache``) one base run: ``schedule`` in :data:`SCHEDULES`, one seed."""
    if schedule == "lrDecay":
        cfg = base_config(settings, seed=seed, device=device, schedule="multistep")
    elif schedule == "large":
        cfg = base_config(settings, seed=seed, device=device, schedule="constant")
    elif schedule == "small":
        cfg = base_config(settings, seed=seed, device=device, schedule="constant", lr=settings["lr_small"])
    else:
        raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {schedule!r}")
    return train_run(
        cfg, cache=cache, snapshot_epochs=snapshot_epochs(settings), label=label or f"{schedule} seed {seed}"
    )


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
