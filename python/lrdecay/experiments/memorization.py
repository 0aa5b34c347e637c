"""C4: an initially large LR suppresses memorization of noisy (label-flipped) data.

For each schedule (lrDecay, large, small) the ledger gives, per epoch, the memorized fraction: the share
of label-flipped training samples predicted as their (wrong) observed label. We compare it at the end of
stage 1 and at the end of training.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping, Sequence

from lrdecay.experiments import base
from lrdecay.experiments.common import (
    NOT_SUPPORTED,
    SUPPORTED,
    INCONCLUSIVE,
    RunCache,
    Verdict,
    all_seeds,
    at_epoch,
    finish_result,
    fmt,
    line_plot,
    log,
    mean_curve,
    prepare,
    stat,
    torch_threads,
)

NAME = "memorization"
CLAIM = "C4"
TITLE = "An initially large LR suppresses memorization of noisy data"
CLAIM_TEXT = (
    "While the LR is large, the network does not fit label-flipped samples (memorized fraction stays near "
    "chance); memorization starts after the decay. A small LR from the start memorizes early."
)
PRESETS = base.BASE_PRESETS

# Fixed before any result was seen.
MARGIN = 0.05
RISE = 0.05
RULE = (
    f"Supported if, on every seed, the memorized fraction at the end of stage 1 is lower for lrDecay than "
    f"for the small LR by at least {MARGIN}, and lrDecay's memorized fraction rises by at least {RISE} from "
    f"the end of stage 1 to the end of training. Not supported if, on every seed, lrDecay's memorized "
    f"fraction at the end of stage 1 is at least the small LR's. Otherwise inconclusive."
)


def judge(numbers: Mapping[str, Sequence[float]]) -> Verdict:
    """Apply :data:`RULE` to per-seed ``mem_stage1_lrDecay``, ``mem_stage1_small``, ``mem_final_lrDecay``."""
    d, s, f = numbers["mem_stage1_lrDecay"], numbers["mem_stage1_small"], numbers["mem_final_lrDecay"]
    lower = [a is not None and b is not None and a <= b - MARGIN for a, b in zip(d, s)]
    rises = [a is not None and e is not None and e >= a + RISE for a, e in zip(d, f)]
    against = [a is not None and b is not None and a >= b for a, b in zip(d, s)]
    if all_seeds(lower) and all_seeds(rises):
        status = SUPPORTED
    elif all_seeds(against):
        status = NOT_SUPPORTED
    else:
        status = INCONCLUSIVE
    return Verdict(status, RULE, {"lower_than_small": lower, "rises_after_decay": rises, "small_not_higher": against})


def setup_text(settings: Mapping[str, Any]) -> str:
    """The setup paragraph of the report section for these settings."""
    return base.describe(settings) + " Memorized fraction = accuracy on label-flipped training samples " \
        "against their noisy labels (from the per-sample ledger, predictions made during the epoch)."


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
    e1 = settings["milestones"][0]
    end = settings["epochs"]
    mem_curves: dict[str, list] = {s: [] for s in base.SCHEDULES}
    per_seed: dict[str, list] = {}
    log(f"[{NAME}] preset {preset}, seeds {seeds}")
    with torch_threads(settings.get("threads")):
        runs = {(seed, s): base.schedule_run(settings, s, seed, cache=cache, device=device)
                for seed in seeds for s in base.SCHEDULES}
    for seed in seeds:
        for sched in base.SCHEDULES:
            out = runs[seed, sched]
            mem = [None if v != v else v for v in out.ledger_summary["memorized"]]  # NaN → None
            mem_curves[sched].append(mem)
            per_seed.setdefault(f"mem_stage1_{sched}", []).append(at_epoch(mem, e1))
            per_seed.setdefault(f"mem_final_{sched}", []).append(at_epoch(mem, end))
            for m in settings["milestones"][1:]:
                per_seed.setdefault(f"mem_epoch{m}_{sched}", []).append(at_epoch(mem, m))
            per_seed.setdefault(f"test_final_{sched}", []).append(out.history[-1]["test"]["test"]["acc"])
    verdict = judge(per_seed)
    ends = [*settings["milestones"], end]
    rows = []
    for sched in base.SCHEDULES:
        cells = [sched]
        for e in ends:
            key = f"mem_stage1_{sched}" if e == e1 else (f"mem_final_{sched}" if e == end else f"mem_epoch{e}_{sched}")
            cells.append(fmt(stat(per_seed[key])))
        cells.append(fmt(stat(per_seed[f"test_final_{sched}"])))
        rows.append(cells)
    table = {"headers": ["schedule", *[f"memorized @ ep {e}" for e in ends], "final test acc"], "rows": rows}
    curves = {s: mean_curve(c) for s, c in mem_curves.items()}
    plots = []
    if out_dir is not None:
        plots.append(line_plot(
            f"{out_dir}/memorization.png", curves, title="C4: memorized fraction of label-flipped samples",
            ylabel="memorized fraction", vlines=[m + 0.5 for m in settings["milestones"]],
        ))
    return finish_result(
        sys.modules[__name__], preset=preset, settings=settings, seeds=seeds,
        per_seed=per_seed, table=table, curves={"memorized": curves}, verdict=verdict, plots=plots, t0=t0,
    )
