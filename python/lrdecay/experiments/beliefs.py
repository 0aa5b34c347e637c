"""C3: the common beliefs do not explain lrDecay's benefit.

Three runs per seed (small constant LR, large constant LR, large LR with step decay). We look at the
training loss after the first few epochs (does the large LR train faster? the paper says no), the final
train accuracy (is the small LR trapped in a poor minimum? the paper says no) and the final test accuracy
(lrDecay generalizes better than both constant LRs).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from lrdecay.experiments import base
from lrdecay.experiments.common import (
    Verdict,
    at_epoch,
    combine,
    fmt,
    line_plot,
    mean_curve,
    seed_rule,
    series,
    stat,
)
from lrdecay.experiments.runner import Experiment

# Fixed before any result was seen; (d) added later with the same margin.
FIT_TOL = 0.02
GEN_MARGIN = 0.01
RULE = (
    "Four sub-claims, each on every seed. (a) No acceleration: the small LR's training loss after the first "
    "few epochs (a third of the first stage) is ≤ the large LR's (lrDecay equals the large LR before its "
    f"first decay). (b) Not trapped: the small LR's final train accuracy ≥ lrDecay's − {FIT_TOL}. (c) lrDecay "
    f"generalizes better than the small LR: lrDecay's final test accuracy ≥ the small LR's + {GEN_MARGIN}. "
    f"(d) lrDecay generalizes better than the constant large LR: lrDecay's final test accuracy ≥ the large "
    f"LR's + {GEN_MARGIN}. Each sub-claim is supported if it holds on every seed, not supported if its "
    f"opposite (a: small loss > large loss; b: small train acc < lrDecay's − {FIT_TOL}; c: lrDecay test acc ≤ "
    "small's; d: lrDecay test acc ≤ large's) holds on every seed, else inconclusive. The claim is supported "
    "if all four are, not supported if any is not supported, otherwise inconclusive."
)


def judge(numbers: Mapping[str, Sequence[float]]) -> Verdict:
    """Apply :data:`RULE` to per-seed ``early_loss_small``, ``early_loss_large``, ``final_train_acc_small``,
    ``final_train_acc_lrDecay``, ``final_test_acc_lrDecay``, ``final_test_acc_small``,
    ``final_test_acc_large``."""
    ls, ll = numbers["early_loss_small"], numbers["early_loss_large"]
    ts, td = numbers["final_train_acc_small"], numbers["final_train_acc_lrDecay"]
    gd, gs, gl = numbers["final_test_acc_lrDecay"], numbers["final_test_acc_small"], numbers["final_test_acc_large"]
    a = seed_rule([s <= l for s, l in zip(ls, ll)], [s > l for s, l in zip(ls, ll)])
    b = seed_rule([s >= d - FIT_TOL for s, d in zip(ts, td)], [s < d - FIT_TOL for s, d in zip(ts, td)])
    c = seed_rule([d >= s + GEN_MARGIN for d, s in zip(gd, gs)], [d <= s for d, s in zip(gd, gs)])
    d_ = seed_rule([d >= x + GEN_MARGIN for d, x in zip(gd, gl)], [d <= x for d, x in zip(gd, gl)])
    return Verdict(combine([a, b, c, d_]), RULE,
                   {"a_no_acceleration": a, "b_not_trapped": b, "c_better_than_small": c,
                    "d_better_than_large": d_})


def early_epochs(settings: Mapping[str, Any]) -> int:
    """'The first few epochs': a third of the first stage (at least 1)."""
    return max(1, settings["milestones"][0] // 3)


def setup(settings: Mapping[str, Any]) -> str:
    """The setup paragraph of the report section."""
    return base.describe(settings) + f" Early training loss is read after epoch {early_epochs(settings)}."


def runs(settings: Mapping[str, Any], seed: int, done: Mapping) -> dict:
    """The three base runs."""
    return base.base_runs(settings, seed)


def measure(settings: Mapping[str, Any], seed: int, runs: Mapping) -> dict:
    """Early loss, final train loss/accuracy and final test accuracy per schedule."""
    k = early_epochs(settings)
    out: dict[str, Any] = {}
    for s in base.SCHEDULES:
        h = runs[s].history
        out[f"early_loss_{s}"] = at_epoch(series(h, lambda r: r["train_loss"]), k)
        out[f"early_train_acc_{s}"] = h[k - 1]["train_acc"]
        out[f"final_train_loss_{s}"] = h[-1]["train_loss"]
        out[f"final_train_acc_{s}"] = h[-1]["train_acc"]
        out[f"final_test_acc_{s}"] = h[-1]["test"]["test"]["acc"]
    return out


def present(settings, per_seed, runs_by_seed, out_dir):
    """Table per schedule; train loss and test accuracy curves."""
    k = early_epochs(settings)
    rows = [
        [s, fmt(stat(per_seed[f"early_loss_{s}"])), fmt(stat(per_seed[f"early_train_acc_{s}"])),
         fmt(stat(per_seed[f"final_train_loss_{s}"])), fmt(stat(per_seed[f"final_train_acc_{s}"])),
         fmt(stat(per_seed[f"final_test_acc_{s}"]))]
        for s in base.SCHEDULES
    ]
    table = {"headers": ["schedule", f"train loss @ ep {k}", f"train acc @ ep {k}", "final train loss",
                         "final train acc", "final test acc"], "rows": rows}
    curves: dict[str, dict] = {"train_loss": {}, "test_acc": {}}
    for s in base.SCHEDULES:
        hs = [r[s].history for r in runs_by_seed.values()]
        curves["train_loss"][s] = mean_curve([series(h, lambda r: r["train_loss"]) for h in hs])
        curves["test_acc"][s] = mean_curve([series(h, lambda r: r["test"]["test"]["acc"]) for h in hs])
    plots = []
    if out_dir is not None:
        vl = [m + 0.5 for m in settings["milestones"]]
        plots.append(line_plot(f"{out_dir}/beliefs_loss.png", curves["train_loss"], title="C3: train loss",
                               ylabel="train loss", vlines=vl))
        plots.append(line_plot(f"{out_dir}/beliefs_test.png", curves["test_acc"], title="C3: test accuracy",
                               ylabel="test accuracy", vlines=vl))
    return table, curves, plots, []


EXPERIMENT = Experiment(
    name="beliefs", claim="C3", title="The common beliefs do not explain lrDecay",
    claim_text=("A large LR neither accelerates training nor is needed to escape poor minima: a small constant LR "
                "drives the training loss down as fast or faster and fits the training set at least as well, yet "
                "generalizes worse than lrDecay, which also generalizes better than the constant large LR."),
    presets=base.BASE_PRESETS, options=base.BASE_OPTIONS, rule=RULE, judge=judge,
    verdict_keys=("early_loss_small", "early_loss_large", "final_train_acc_small", "final_train_acc_lrDecay",
                  "final_test_acc_small", "final_test_acc_large", "final_test_acc_lrDecay"),
    runs=runs, measure=measure, present=present, setup=setup,
    applies_to=("patterns", "images"), image_presets=base.image_presets(),
    prepare=base.prepare_images,
)
