"""C3: the common beliefs do not explain lrDecay's benefit.

Three runs per seed (small constant LR, large constant LR, large LR with step decay). We look at the
training loss after the first few epochs (does the large LR train faster? the paper says no), the final
train accuracy (is the small LR trapped in a poor minimum? the paper says no) and the final test accuracy
(lrDecay generalizes best).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping, Sequence

from lrdecay.experiments import base
from lrdecay.experiments.common import (
    RunCache,
    Verdict,
    at_epoch,
    combine,
    finish_result,
    fmt,
    line_plot,
    log,
    mean_curve,
    prepare,
    seed_rule,
    series,
    stat,
    torch_threads,
)

NAME = "beliefs"
CLAIM = "C3"
TITLE = "The common beliefs do not explain lrDecay"
CLAIM_TEXT = (
    "A large LR neither accelerates training nor is needed to escape poor minima: a small constant LR "
    "drives the training loss down as fast or faster and fits the training set at least as well, yet "
    "generalizes worse than lrDecay."
)
PRESETS = base.BASE_PRESETS

# Fixed before any result was seen.
FIT_TOL = 0.02
GEN_MARGIN = 0.01
RULE = (
    "Three sub-claims, each on every seed. (a) No acceleration: the small LR's training loss after the first "
    "few epochs (`early_epochs`) is ≤ the large LR's (lrDecay equals the large LR before its first decay). "
    f"(b) Not trapped: the small LR's final train accuracy ≥ lrDecay's − {FIT_TOL}. (c) lrDecay generalizes "
    f"better: lrDecay's final test accuracy ≥ the small LR's + {GEN_MARGIN}. Each sub-claim is supported if "
    "it holds on every seed, not supported if its opposite (a: small loss > large loss; b: small train acc "
    f"< lrDecay's − {FIT_TOL}; c: lrDecay test acc ≤ small's) holds on every seed, else inconclusive. The "
    "claim is supported if all three are, not supported if any is not supported, otherwise inconclusive."
)


def judge(numbers: Mapping[str, Sequence[float]]) -> Verdict:
    """Apply :data:`RULE` to per-seed ``early_loss_small``, ``early_loss_large``, ``final_train_acc_small``,
    ``final_train_acc_lrDecay``, ``final_test_acc_lrDecay``, ``final_test_acc_small``."""
    ls, ll = numbers["early_loss_small"], numbers["early_loss_large"]
    ts, td = numbers["final_train_acc_small"], numbers["final_train_acc_lrDecay"]
    gd, gs = numbers["final_test_acc_lrDecay"], numbers["final_test_acc_small"]
    a = seed_rule([s <= l for s, l in zip(ls, ll)], [s > l for s, l in zip(ls, ll)])
    b = seed_rule([s >= d - FIT_TOL for s, d in zip(ts, td)], [s < d - FIT_TOL for s, d in zip(ts, td)])
    c = seed_rule([d >= s + GEN_MARGIN for d, s in zip(gd, gs)], [d <= s for d, s in zip(gd, gs)])
    return Verdict(combine([a, b, c]), RULE,
                   {"a_no_acceleration": a, "b_not_trapped": b, "c_lrdecay_generalizes_better": c})


def early_epochs(settings: Mapping[str, Any]) -> int:
    """'The first few epochs': a third of the first stage (at least 1)."""
    return max(1, settings["milestones"][0] // 3)


def setup_text(settings: Mapping[str, Any]) -> str:
    """The setup paragraph of the report section for these settings."""
    return base.describe(settings) + f" Early training loss is read after epoch {early_epochs(settings)}."


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
    k = early_epochs(settings)
    log(f"[{NAME}] preset {preset}, seeds {seeds}")
    with torch_threads(settings.get("threads")):
        runs = {(seed, s): base.schedule_run(settings, s, seed, cache=cache, device=device)
                for seed in seeds for s in base.SCHEDULES}
    per_seed: dict[str, list] = {}
    loss_c: dict[str, list] = {s: [] for s in base.SCHEDULES}
    test_c: dict[str, list] = {s: [] for s in base.SCHEDULES}
    for seed in seeds:
        for s in base.SCHEDULES:
            h = runs[seed, s].history
            loss = series(h, lambda r: r["train_loss"])
            loss_c[s].append(loss)
            test_c[s].append(series(h, lambda r: r["test"]["test"]["acc"]))
            per_seed.setdefault(f"early_loss_{s}", []).append(at_epoch(loss, k))
            per_seed.setdefault(f"early_train_acc_{s}", []).append(h[k - 1]["train_acc"])
            per_seed.setdefault(f"final_train_loss_{s}", []).append(h[-1]["train_loss"])
            per_seed.setdefault(f"final_train_acc_{s}", []).append(h[-1]["train_acc"])
            per_seed.setdefault(f"final_test_acc_{s}", []).append(h[-1]["test"]["test"]["acc"])
    verdict = judge(per_seed)
    rows = [
        [s, fmt(stat(per_seed[f"early_loss_{s}"])), fmt(stat(per_seed[f"early_train_acc_{s}"])),
         fmt(stat(per_seed[f"final_train_loss_{s}"])), fmt(stat(per_seed[f"final_train_acc_{s}"])),
         fmt(stat(per_seed[f"final_test_acc_{s}"]))]
        for s in base.SCHEDULES
    ]
    table = {"headers": ["schedule", f"train loss @ ep {k}", f"train acc @ ep {k}", "final train loss",
                         "final train acc", "final test acc"], "rows": rows}
    curves = {"train_loss": {s: mean_curve(c) for s, c in loss_c.items()},
              "test_acc": {s: mean_curve(c) for s, c in test_c.items()}}
    plots = []
    if out_dir is not None:
        vl = [m + 0.5 for m in settings["milestones"]]
        plots.append(line_plot(f"{out_dir}/beliefs_loss.png", curves["train_loss"], title="C3: train loss",
                               ylabel="train loss", vlines=vl))
        plots.append(line_plot(f"{out_dir}/beliefs_test.png", curves["test_acc"], title="C3: test accuracy",
                               ylabel="test accuracy", vlines=vl))
    return finish_result(
        sys.modules[__name__], preset=preset, settings=settings, seeds=seeds, per_seed=per_seed, table=table,
        curves=curves, verdict=verdict, plots=plots, t0=t0,
    )
