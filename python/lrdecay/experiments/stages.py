"""C1: with SGD and step decay, training curves split into stages with sharp transitions at each decay.

Transition sharpness at a decay after epoch d: the change in train accuracy over the epoch right after the
decay divided by the change over the epoch before it (denominator floored at 0.005, see
:func:`~lrdecay.experiments.common.sharpness`); the same for the training loss (decrease). The no-decay
run (constant large LR) gives the same ratio at the same epochs as a control.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from lrdecay.experiments import base
from lrdecay.experiments.common import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    Verdict,
    all_seeds,
    fmt,
    line_plot,
    mean_curve,
    series,
    sharpness,
    stat,
)
from lrdecay.experiments.runner import Experiment

# Fixed before any result was seen.
MIN_JUMP = 0.02
MIN_RATIO = 3.0
MAX_RATIO_AGAINST = 1.5
RULE = (
    f"At the first decay, on every seed: lrDecay's train accuracy rises by at least {MIN_JUMP} over the "
    f"epoch after the decay, its sharpness ratio (change over the epoch after / change over the epoch "
    f"before, denominator floored at 0.005) is at least {MIN_RATIO}, and it exceeds the no-decay run's "
    f"ratio at the same epoch → supported. Not supported if, on every seed, the ratio is below "
    f"{MAX_RATIO_AGAINST}. Otherwise inconclusive."
)


def judge(numbers: Mapping[str, Sequence[float]]) -> Verdict:
    """Apply :data:`RULE` to per-seed ``jump_acc_decay1``, ``ratio_acc_decay1``, ``ratio_acc_control1``."""
    jump, ratio, ctrl = numbers["jump_acc_decay1"], numbers["ratio_acc_decay1"], numbers["ratio_acc_control1"]
    support = [
        j is not None and r is not None and c is not None and j >= MIN_JUMP and r >= MIN_RATIO and r > c
        for j, r, c in zip(jump, ratio, ctrl)
    ]
    against = [r is not None and r < MAX_RATIO_AGAINST for r in ratio]
    status = SUPPORTED if all_seeds(support) else NOT_SUPPORTED if all_seeds(against) else INCONCLUSIVE
    return Verdict(status, RULE, {"sharp_on_seed": support, "flat_on_seed": against})


def setup(settings: Mapping[str, Any]) -> str:
    """The setup paragraph of the report section."""
    return base.describe(settings) + " Compared: lrDecay vs the constant large LR (no decay)."


def runs(settings: Mapping[str, Any], seed: int, done: Mapping) -> dict:
    """lrDecay and the constant large LR (the shared base runs)."""
    return base.base_runs(settings, seed, ("lrDecay", "large"))


def _decays(settings):
    return [m for m in settings["milestones"] if m < settings["epochs"]]


def measure(settings: Mapping[str, Any], seed: int, runs: Mapping) -> dict:
    """Sharpness of train accuracy and loss at each decay, for lrDecay and the control."""
    out: dict[str, Any] = {}
    for sched, tag in (("lrDecay", "decay"), ("large", "control")):
        h = runs[sched].history
        acc = series(h, lambda r: r["train_acc"])
        neg_loss = [None if v is None else -v for v in series(h, lambda r: r["train_loss"])]
        for i, d in enumerate(_decays(settings), 1):
            sa, sl = sharpness(acc, d), sharpness(neg_loss, d)
            out[f"jump_acc_{tag}{i}"] = sa["after"]
            out[f"before_acc_{tag}{i}"] = sa["before"]
            out[f"ratio_acc_{tag}{i}"] = sa["ratio"]
            out[f"drop_loss_{tag}{i}"] = sl["after"]
            out[f"ratio_loss_{tag}{i}"] = sl["ratio"]
    return out


def present(settings, per_seed, runs_by_seed, out_dir):
    """Table of sharpness per decay; train accuracy and loss curves."""
    rows = []
    for i, d in enumerate(_decays(settings), 1):
        for tag, label in (("decay", "lrDecay"), ("control", "no decay")):
            rows.append([
                f"after epoch {d}", label,
                fmt(stat(per_seed[f"before_acc_{tag}{i}"])), fmt(stat(per_seed[f"jump_acc_{tag}{i}"])),
                fmt(stat(per_seed[f"ratio_acc_{tag}{i}"]), 2), fmt(stat(per_seed[f"drop_loss_{tag}{i}"])),
                fmt(stat(per_seed[f"ratio_loss_{tag}{i}"]), 2),
            ])
    table = {
        "headers": ["decay", "run", "Δ train acc, epoch before", "Δ train acc, epoch after",
                    "sharpness (acc)", "loss drop, epoch after", "sharpness (loss)"],
        "rows": rows,
    }
    curves: dict[str, dict] = {"train_acc": {}, "train_loss": {}}
    for sched, label in (("lrDecay", "lrDecay"), ("large", "large (no decay)")):
        hs = [runs_by_seed[s][sched].history for s in runs_by_seed]
        curves["train_acc"][label] = mean_curve([series(h, lambda r: r["train_acc"]) for h in hs])
        curves["train_loss"][label] = mean_curve([series(h, lambda r: r["train_loss"]) for h in hs])
    plots = []
    if out_dir is not None:
        vl = [d + 0.5 for d in _decays(settings)]
        plots.append(line_plot(f"{out_dir}/stages_acc.png", curves["train_acc"], title="C1: train accuracy",
                               ylabel="train accuracy", vlines=vl))
        plots.append(line_plot(f"{out_dir}/stages_loss.png", curves["train_loss"], title="C1: train loss",
                               ylabel="train loss", vlines=vl))
    return table, curves, plots, []


EXPERIMENT = Experiment(
    name="stages", claim="C1", title="SGD with step decay: stages with sharp transitions",
    claim_text="With SGD and step decay, the training curves split into stages with sharp transitions at each decay.",
    presets=base.BASE_PRESETS, options=base.BASE_OPTIONS, rule=RULE, judge=judge,
    verdict_keys=("jump_acc_decay1", "ratio_acc_decay1", "ratio_acc_control1"),
    runs=runs, measure=measure, present=present, setup=setup,
    applies_to=("patterns", "images"), image_presets=base.image_presets(),
    prepare=base.prepare_images,
)
