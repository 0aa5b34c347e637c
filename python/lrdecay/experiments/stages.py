"""C1: with SGD and step decay, training curves split into stages with sharp transitions at each decay.

Transition sharpness at a decay after epoch d: the change in train accuracy over the epoch right after the
decay divided by the change over the epoch before it (denominator floored at 0.005, see
:func:`~lrdecay.experiments.common.sharpness`); the same for the training loss (decrease). The no-decay
run (constant large LR) gives the same ratio at the same epochs as a control.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping, Sequence

from lrdecay.experiments import base
from lrdecay.experiments.common import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    RunCache,
    Verdict,
    all_seeds,
    finish_result,
    fmt,
    line_plot,
    log,
    mean_curve,
    prepare,
    series,
    sharpness,
    stat,
    torch_threads,
)

NAME = "stages"
CLAIM = "C1"
TITLE = "SGD with step decay: stages with sharp transitions"
CLAIM_TEXT = (
    "With SGD and step decay, the training curves split into stages with sharp transitions at each decay."
)
PRESETS = base.BASE_PRESETS

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


def setup_text(settings: Mapping[str, Any]) -> str:
    """The setup paragraph of the report section for these settings."""
    return base.describe(settings) + " Compared: lrDecay vs the constant large LR (no decay)."


def run(
    preset: str = "quick",
    *,
    seeds: Sequence[int] | int | None = None,
    out_dir: str | None = None,
    device: str | None = None,
    cache: RunCache | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict:
    """Run the experiment; returns the result dict (see :mod:`lrdecay.experiments.common`)."""
    t0 = time.perf_counter()
    settings, seeds, cache = prepare(PRESETS, preset, seeds, overrides, cache)
    decays = [m for m in settings["milestones"] if m < settings["epochs"]]
    log(f"[{NAME}] preset {preset}, seeds {seeds}")
    with torch_threads(settings.get("threads")):
        runs = {(seed, s): base.schedule_run(settings, s, seed, cache=cache, device=device)
                for seed in seeds for s in ("lrDecay", "large")}
    per_seed: dict[str, list] = {}
    acc_curves: dict[str, list] = {"lrDecay": [], "large (no decay)": []}
    loss_curves: dict[str, list] = {"lrDecay": [], "large (no decay)": []}
    for seed in seeds:
        for sched, label in (("lrDecay", "lrDecay"), ("large", "large (no decay)")):
            h = runs[seed, sched].history
            acc = series(h, lambda r: r["train_acc"])
            loss = series(h, lambda r: r["train_loss"])
            acc_curves[label].append(acc)
            loss_curves[label].append(loss)
            neg_loss = [None if v is None else -v for v in loss]
            tag = "decay" if sched == "lrDecay" else "control"
            for i, d in enumerate(decays, 1):
                sa, sl = sharpness(acc, d), sharpness(neg_loss, d)
                per_seed.setdefault(f"jump_acc_{tag}{i}", []).append(sa["after"])
                per_seed.setdefault(f"before_acc_{tag}{i}", []).append(sa["before"])
                per_seed.setdefault(f"ratio_acc_{tag}{i}", []).append(sa["ratio"])
                per_seed.setdefault(f"drop_loss_{tag}{i}", []).append(sl["after"])
                per_seed.setdefault(f"ratio_loss_{tag}{i}", []).append(sl["ratio"])
    verdict = judge(per_seed)
    rows = []
    for i, d in enumerate(decays, 1):
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
    curves = {"train_acc": {k: mean_curve(v) for k, v in acc_curves.items()},
              "train_loss": {k: mean_curve(v) for k, v in loss_curves.items()}}
    plots = []
    if out_dir is not None:
        vl = [d + 0.5 for d in decays]
        plots.append(line_plot(f"{out_dir}/stages_acc.png", curves["train_acc"], title="C1: train accuracy",
                               ylabel="train accuracy", vlines=vl))
        plots.append(line_plot(f"{out_dir}/stages_loss.png", curves["train_loss"], title="C1: train loss",
                               ylabel="train loss", vlines=vl))
    return finish_result(
        sys.modules[__name__], preset=preset, settings=settings, seeds=seeds, per_seed=per_seed, table=table,
        curves=curves, verdict=verdict, plots=plots, t0=t0,
    )
