"""C4: an initially large LR suppresses memorization of noisy (label-flipped) data.

The memorized fraction is the share of label-flipped training samples predicted as their (wrong) observed
label. It is read two ways: from a fixed model at each stage end (an eval-mode pass over the training set,
``train_eval`` in the run's records: what the rule uses), and from the predictions made during each epoch
in training mode while the weights move (the per-sample ledger: reported beside it). Pattern settings with
clean labels read the noise group instead (samples with no pattern and uniformly random labels, which only
memorization fits); without either, the experiment does not apply.
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
    at_epoch,
    fmt,
    line_plot,
    mean_curve,
    series,
    stat,
)
from lrdecay.experiments.runner import Experiment, NotApplicable

# Fixed before any result was seen; the measure the rule reads changed later to the eval-mode pass
# (docs/memorization-vs-prototype.md says why).
MARGIN = 0.05
RISE = 0.05
RULE = (
    f"Memorized fraction from an eval-mode pass over the training set at each stage end. Supported if, on "
    f"every seed, it is lower at the end of stage 1 for lrDecay than for the small LR by at least {MARGIN}, "
    f"and lrDecay's rises by at least {RISE} from the end of stage 1 to the end of training. Not supported "
    f"if, on every seed, lrDecay's at the end of stage 1 is at least the small LR's. Otherwise inconclusive."
)


def judge(numbers: Mapping[str, Sequence[float]]) -> Verdict:
    """Apply :data:`RULE` to per-seed ``mem_eval_stage1_lrDecay``, ``mem_eval_stage1_small``,
    ``mem_eval_final_lrDecay``."""
    d, s, f = numbers["mem_eval_stage1_lrDecay"], numbers["mem_eval_stage1_small"], numbers["mem_eval_final_lrDecay"]
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


def setup(settings: Mapping[str, Any]) -> str:
    """The setup paragraph of the report section."""
    return base.describe(settings) + (
        (" Memorized fraction = accuracy on label-flipped training samples against their noisy labels: from an "
         if memorized_samples(settings) == "flipped" else
         f" No label noise: memorized fraction = training accuracy of the `{memorized_samples(settings)}` group "
         "(no pattern, uniformly random labels): from an ")
        + "eval-mode pass over the training set after each epoch (used by the rule), and from the predictions "
        "made during the epoch in training mode (per-sample ledger; reported beside it).")


#: The group of the pattern presets whose samples carry no pattern (their labels are uniformly random):
#: fitting them is memorization, with or without label noise.
NOISE_GROUP = "noise"


def memorized_samples(settings: Mapping[str, Any]) -> str | None:
    """Which training samples' fit counts as memorization: ``"flipped"`` (label noise on), else the pattern
    preset's noise group (``"noise"``; the settings have clean labels), else None (nothing to memorize)."""
    if settings.get("label_noise"):
        return "flipped"
    if settings.get("data") is None:
        from lrdecay.data import PRESETS as DATA_PRESETS

        groups = [g["name"] for g in DATA_PRESETS[settings["preset"]]["groups"]]
        if NOISE_GROUP in groups:
            return NOISE_GROUP
    return None


def prepare(settings: dict) -> dict:
    """Images: :func:`base.prepare_images`; pattern settings without label noise and without a noise group
    have no sample only memorization can fit: the experiment does not apply."""
    settings = base.prepare_images(settings)
    if settings.get("data") is None and memorized_samples(settings) is None:
        raise NotApplicable(f"preset {settings['preset']!r} without label noise has no sample whose label only "
                            f"memorization can fit (no flipped labels, no noise group)")
    return settings


def _eval_mem(history, samples: str = "flipped") -> list:
    if samples == "flipped":
        return series(history, lambda r: r["train_eval"]["memorized"])
    return series(history, lambda r: r["train_eval"]["acc_group"][samples])


def _ledger_mem(run, samples: str = "flipped") -> list:
    led = run.ledger_summary
    if samples == "flipped":
        values = led["memorized"]
    else:
        values = [row[list(led["group_names"]).index(samples)] for row in led["accuracy_group"]]
    return [None if v is None or v != v else float(v) for v in values]  # NaN → None


def runs(settings: Mapping[str, Any], seed: int, done: Mapping) -> dict:
    """The three base runs."""
    return base.base_runs(settings, seed)


def measure(settings: Mapping[str, Any], seed: int, runs: Mapping) -> dict:
    """Memorized fraction (eval mode and in-epoch) at each stage end, and final test accuracy."""
    ends = base.stage_ends(settings)
    samples = memorized_samples(settings)
    out: dict[str, Any] = {}
    for s in base.SCHEDULES:
        ev, led = _eval_mem(runs[s].history, samples), _ledger_mem(runs[s], samples)
        out[f"mem_eval_stage1_{s}"] = at_epoch(ev, ends[0])
        out[f"mem_eval_final_{s}"] = at_epoch(ev, ends[-1])
        out[f"mem_epoch_stage1_{s}"] = at_epoch(led, ends[0])
        out[f"mem_epoch_final_{s}"] = at_epoch(led, ends[-1])
        for e in ends[1:-1]:
            out[f"mem_eval_ep{e}_{s}"] = at_epoch(ev, e)
            out[f"mem_epoch_ep{e}_{s}"] = at_epoch(led, e)
        out[f"test_final_{s}"] = runs[s].history[-1]["test"]["test"]["acc"]
    return out


def present(settings, per_seed, runs_by_seed, out_dir):
    """Table per schedule and measure; both memorization curves."""
    ends = base.stage_ends(settings)
    samples = memorized_samples(settings)

    def key(kind, e, s):
        return (f"mem_{kind}_stage1_{s}" if e == ends[0] else f"mem_{kind}_final_{s}" if e == ends[-1]
                else f"mem_{kind}_ep{e}_{s}")

    rows = []
    for s in base.SCHEDULES:
        for kind, label in (("eval", "eval mode, stage end"), ("epoch", "during the epoch (ledger)")):
            rows.append([s, label, *[fmt(stat(per_seed[key(kind, e, s)])) for e in ends],
                         fmt(stat(per_seed[f"test_final_{s}"]))])
    table = {"headers": ["schedule", "measure", *[f"memorized @ ep {e}" for e in ends], "final test acc"],
             "rows": rows}
    curves = {
        "memorized_eval": {s: mean_curve([_eval_mem(r[s].history, samples) for r in runs_by_seed.values()])
                           for s in base.SCHEDULES},
        "memorized_epoch": {s: mean_curve([_ledger_mem(r[s], samples) for r in runs_by_seed.values()])
                            for s in base.SCHEDULES},
    }
    plots = []
    if out_dir is not None:
        both = {**{f"{s} (eval mode)": c for s, c in curves["memorized_eval"].items()},
                **{f"{s} (during epoch)": c for s, c in curves["memorized_epoch"].items()}}
        plots.append(line_plot(
            f"{out_dir}/memorization.png", both, title="C4: memorized fraction of label-flipped samples"
            if samples == "flipped" else f"C4: training accuracy of the {samples} group (random labels)",
            ylabel="memorized fraction", vlines=[m + 0.5 for m in settings["milestones"]]))
    notes = [] if samples == "flipped" else [
        f"No label noise here: the memorized fraction is the training accuracy of the `{samples}` group, whose "
        f"samples carry no pattern and have uniformly random labels (only memorization fits them)."]
    return table, curves, plots, notes


# Memorization needs flipped labels: on an image preset with clean labels (the Fashion-MNIST search may pick
# one; its pre-registration says so) this experiment reads its own runs of the same setting with
# NOISE_IF_CLEAN symmetric label noise, while the other experiments keep the clean runs.
NOISE_IF_CLEAN = 0.2
IMAGE_PRESETS = base.image_presets(
    lambda data, preset: {} if base.BASE_IMAGE_PRESETS[data][preset].get("label_noise") else {"label_noise": NOISE_IF_CLEAN})

EXPERIMENT = Experiment(
    name="memorization", claim="C4", title="An initially large LR suppresses memorization of noisy data",
    claim_text=("While the LR is large, the network does not fit label-flipped samples (memorized fraction stays "
                "near chance); memorization starts after the decay. A small LR from the start memorizes early."),
    presets=base.BASE_PRESETS, options=base.BASE_OPTIONS, rule=RULE, judge=judge,
    verdict_keys=("mem_eval_stage1_lrDecay", "mem_eval_stage1_small", "mem_eval_final_lrDecay",
                  "mem_epoch_stage1_lrDecay", "mem_epoch_stage1_small"),
    runs=runs, measure=measure, present=present, setup=setup,
    applies_to=("patterns", "images"), image_presets=IMAGE_PRESETS,
    prepare=prepare,
)
