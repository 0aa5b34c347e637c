"""C5: decaying the LR enables learning of complex patterns.

Per pattern: accuracy on a clean-label probe test set holding only that pattern's group, at every epoch.
lrDecay and the constant large LR are the same run until the first decay, so comparing them at the end of
the first post-decay stage (equal epochs) isolates what the decay did; the small LR is reported beside them.
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
from lrdecay.experiments.runner import Experiment

# Fixed before any result was seen; (ii) compares with the large LR at the end of the first post-decay
# stage instead of the end of training (changed later), margins unchanged.
EASY_FRACTION = 0.9
COMPLEX_GAIN = 0.03
CONTROL_MARGIN = 0.02
RULE = (
    "Clean-label probe test accuracy per pattern; e1 = end of stage 1 (the first decay), e2 = end of the "
    "next stage. On every seed: (i) the easy pattern is learned in stage 1 under lrDecay: (easy acc at e1 − "
    f"chance) ≥ {EASY_FRACTION} × (final easy acc − chance); (ii) lrDecay's complex-pattern accuracy gains at "
    f"least {COMPLEX_GAIN} from e1 to e2, and at e2 it is at least {CONTROL_MARGIN} above the constant large "
    "LR's at the same epoch (identical to lrDecay until e1); (iii) the share of the final above-chance "
    "accuracy reached by e1 is smaller for the complex pattern than for the easy one. Supported if (i)–(iii) "
    "hold on every seed; not supported if, on every seed, lrDecay's complex accuracy at e2 is not above the "
    "large LR's; otherwise inconclusive."
)


def judge(numbers: Mapping[str, Sequence[float]]) -> Verdict:
    """Apply :data:`RULE` to per-seed ``easy_e1``, ``easy_final``, ``complex_e1``, ``complex_e2``,
    ``complex_final`` (lrDecay), ``complex_e2_large`` and ``chance``."""
    ch = numbers["chance"]
    e1, ef = numbers["easy_e1"], numbers["easy_final"]
    c1, c2, cf = numbers["complex_e1"], numbers["complex_e2"], numbers["complex_final"]
    l2 = numbers["complex_e2_large"]
    n = len(e1)

    def share(a, f, c):
        return (a - c) / (f - c) if f - c > 1e-9 else 1.0

    i = [e1[k] - ch[k] >= EASY_FRACTION * (ef[k] - ch[k]) for k in range(n)]
    ii = [c2[k] - c1[k] >= COMPLEX_GAIN and c2[k] >= l2[k] + CONTROL_MARGIN for k in range(n)]
    iii = [share(c1[k], cf[k], ch[k]) < share(e1[k], ef[k], ch[k]) for k in range(n)]
    against = [c2[k] <= l2[k] for k in range(n)]
    support = [a and b and c for a, b, c in zip(i, ii, iii)]
    status = SUPPORTED if all_seeds(support) else NOT_SUPPORTED if all_seeds(against) else INCONCLUSIVE
    return Verdict(status, RULE, {"i_easy_in_stage1": i, "ii_complex_after_decay": ii,
                                  "iii_complex_later_than_easy": iii, "decay_no_help": against})


def setup(settings: Mapping[str, Any]) -> str:
    """The setup paragraph of the report section."""
    return base.describe(settings) + (
        " Groups: `easy` (one wide cluster per class), `complex` (4 fine, low-amplitude clusters per class in "
        "another block)" + (", `noise` (no pattern, random labels)" if settings["preset"] == "ps10" else "")
        + ". Probe test sets contain one group each and clean labels.")


def _probe(h: Sequence[Mapping], group: str) -> list:
    return series(h, lambda r: r["test"][f"probe_{group}"]["acc"])


def _groups(history) -> list[str]:
    return [g for g in history[0]["train_acc_group"] if g != "noise"]


def runs(settings: Mapping[str, Any], seed: int, done: Mapping) -> dict:
    """The three base runs."""
    return base.base_runs(settings, seed)


def measure(settings: Mapping[str, Any], seed: int, runs: Mapping) -> dict:
    """Probe accuracies per pattern and schedule at every stage end, and the numbers the rule reads."""
    from lrdecay.data import PRESETS as DATA_PRESETS

    ends = base.stage_ends(settings)
    e1, e2, end = ends[0], ends[min(1, len(ends) - 1)], ends[-1]
    out: dict[str, Any] = {"chance": 1.0 / DATA_PRESETS[settings["preset"]]["n_classes"]}
    for s in base.SCHEDULES:
        h = runs[s].history
        for g in _groups(h):
            probe = _probe(h, g)
            train = series(h, lambda r, g=g: r["train_eval"]["acc_group"][g])
            for e in ends:
                out[f"probe_{g}_ep{e}_{s}"] = at_epoch(probe, e)
                out[f"train_{g}_ep{e}_{s}"] = at_epoch(train, e)
    out.update(easy_e1=out[f"probe_easy_ep{e1}_lrDecay"], easy_final=out[f"probe_easy_ep{end}_lrDecay"],
               complex_e1=out[f"probe_complex_ep{e1}_lrDecay"], complex_e2=out[f"probe_complex_ep{e2}_lrDecay"],
               complex_final=out[f"probe_complex_ep{end}_lrDecay"],
               complex_e2_large=out[f"probe_complex_ep{e2}_large"], complex_e2_small=out[f"probe_complex_ep{e2}_small"])
    return out


def present(settings, per_seed, runs_by_seed, out_dir):
    """Table per schedule and pattern at each stage end; probe and per-group train curves."""
    ends = base.stage_ends(settings)
    first = next(iter(runs_by_seed.values()))
    groups = _groups(first["lrDecay"].history)
    rows = [[s, g, *[fmt(stat(per_seed[f"train_{g}_ep{e}_{s}"])) for e in ends],
             *[fmt(stat(per_seed[f"probe_{g}_ep{e}_{s}"])) for e in ends]]
            for s in base.SCHEDULES for g in groups]
    table = {"headers": ["schedule", "group", *[f"train acc (eval) @ ep {e}" for e in ends],
                         *[f"probe test acc @ ep {e}" for e in ends]], "rows": rows}
    curves = {"probe_test_acc": {f"{s}: {g}": mean_curve([_probe(r[s].history, g) for r in runs_by_seed.values()])
                                 for s in base.SCHEDULES for g in groups}}
    plots = []
    if out_dir is not None:
        vl = [m + 0.5 for m in settings["milestones"]]
        plots.append(line_plot(f"{out_dir}/complexity_probe.png", curves["probe_test_acc"],
                               title="C5: clean probe test accuracy per pattern", ylabel="test accuracy", vlines=vl))
    notes = [f"At e2 = epoch {ends[min(1, len(ends) - 1)]}: complex-pattern probe accuracy lrDecay "
             f"{fmt(stat(per_seed['complex_e2']))}, constant large LR {fmt(stat(per_seed['complex_e2_large']))}, "
             f"small LR {fmt(stat(per_seed['complex_e2_small']))}."]
    return table, curves, plots, notes


EXPERIMENT = Experiment(
    name="complexity", claim="C5", title="LR decay enables learning of complex patterns",
    claim_text=("The easy pattern is learned during the large-LR stage; the complex pattern is learned mainly "
                "after the LR decays (a constant large LR does not learn it as well over the same epochs)."),
    presets=base.BASE_PRESETS, options=base.BASE_OPTIONS, rule=RULE, judge=judge,
    verdict_keys=("easy_e1", "easy_final", "complex_e1", "complex_e2", "complex_final", "complex_e2_large"),
    runs=runs, measure=measure, present=present, setup=setup,
    applies_to=("patterns",),
    needs="pattern groups (an easy and a complex pattern, each with its own probe test set)",
)
