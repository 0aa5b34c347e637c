"""C5: decaying the LR enables learning of complex patterns.

Per pattern group: train accuracy (ledger, per group) and probe test accuracy (a test set made of that
group only) at each stage end. Under lrDecay the easy pattern should be learned in stage 1 and the complex
one mainly after the decays; the constant large LR is the control over the same epochs.
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
    at_epoch,
    finish_result,
    fmt,
    line_plot,
    log,
    mean_curve,
    prepare,
    series,
    stat,
    torch_threads,
)

NAME = "complexity"
CLAIM = "C5"
TITLE = "LR decay enables learning of complex patterns"
CLAIM_TEXT = (
    "The easy pattern is learned during the large-LR stage; the complex pattern is learned mainly after the "
    "LR decays (a constant large LR does not learn it further)."
)
PRESETS = base.BASE_PRESETS

# Fixed before any result was seen.
EASY_FRACTION = 0.9
COMPLEX_GAIN = 0.03
CONTROL_MARGIN = 0.02
RULE = (
    "Probe test accuracy per pattern, lrDecay, on every seed: (i) the easy pattern is learned in stage 1: "
    f"(easy acc at the end of stage 1 − chance) ≥ {EASY_FRACTION} × (final easy acc − chance); (ii) the "
    f"complex pattern gains at least {COMPLEX_GAIN} from the end of stage 1 to the end of training, and at "
    f"least {CONTROL_MARGIN} more than the constant large LR gains over the same epochs; (iii) the share of "
    "the final above-chance accuracy reached by the end of stage 1 is smaller for the complex pattern than "
    "for the easy one. Supported if (i)–(iii) hold on every seed; not supported if, on every seed, the "
    "complex pattern gains no more after the first decay under lrDecay than under the constant large LR; "
    "otherwise inconclusive."
)


def judge(numbers: Mapping[str, Sequence[float]]) -> Verdict:
    """Apply :data:`RULE` to per-seed ``easy_stage1``, ``easy_final``, ``complex_stage1``, ``complex_final``
    (lrDecay), ``complex_stage1_large``, ``complex_final_large`` and ``chance``."""
    ch = numbers["chance"]
    e1, ef = numbers["easy_stage1"], numbers["easy_final"]
    c1, cf = numbers["complex_stage1"], numbers["complex_final"]
    l1, lf = numbers["complex_stage1_large"], numbers["complex_final_large"]
    n = len(e1)

    def share(a, f, c):
        return (a - c) / (f - c) if f - c > 1e-9 else 1.0

    i = [e1[k] - ch[k] >= EASY_FRACTION * (ef[k] - ch[k]) for k in range(n)]
    ii = [cf[k] - c1[k] >= COMPLEX_GAIN and (cf[k] - c1[k]) >= (lf[k] - l1[k]) + CONTROL_MARGIN for k in range(n)]
    iii = [share(c1[k], cf[k], ch[k]) < share(e1[k], ef[k], ch[k]) for k in range(n)]
    against = [(cf[k] - c1[k]) <= (lf[k] - l1[k]) for k in range(n)]
    support = [a and b and c for a, b, c in zip(i, ii, iii)]
    status = SUPPORTED if all_seeds(support) else NOT_SUPPORTED if all_seeds(against) else INCONCLUSIVE
    return Verdict(status, RULE, {"i_easy_in_stage1": i, "ii_complex_after_decay": ii,
                                  "iii_complex_later_than_easy": iii, "decay_no_help": against})


def setup_text(settings: Mapping[str, Any]) -> str:
    """The setup paragraph of the report section for these settings."""
    return base.describe(settings) + (
        " Groups: `easy` (one wide cluster per class), `complex` (4 fine, low-amplitude clusters per class "
        "in another block), `noise` (no pattern, random labels). Probe test sets contain one group each."
    )


def _probe(h: Sequence[Mapping], group: str) -> list:
    return series(h, lambda r: r["test"][f"probe_{group}"]["acc"])


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
    e1, end = settings["milestones"][0], settings["epochs"]
    ends = [*[m for m in settings["milestones"] if m < end], end]
    log(f"[{NAME}] preset {preset}, seeds {seeds}")
    with torch_threads(settings.get("threads")):
        runs = {(seed, s): base.schedule_run(settings, s, seed, cache=cache, device=device)
                for seed in seeds for s in ("lrDecay", "large", "small")}
    per_seed: dict[str, list] = {}
    probe_c: dict[str, list] = {}
    train_c: dict[str, list] = {}
    for seed in seeds:
        h = runs[seed, "lrDecay"].history
        groups = list(h[0]["train_acc_group"])
        k = _n_classes(settings)
        per_seed.setdefault("chance", []).append(1.0 / k)
        for s in ("lrDecay", "large", "small"):
            hs = runs[seed, s].history
            for g in groups:
                probe = _probe(hs, g)
                train = series(hs, lambda r, g=g: r["train_acc_group"][g])
                probe_c.setdefault(f"{s}: {g}", []).append(probe)
                if s == "lrDecay":
                    train_c.setdefault(g, []).append(train)
                for e in ends:
                    per_seed.setdefault(f"probe_{g}_ep{e}_{s}", []).append(at_epoch(probe, e))
                    per_seed.setdefault(f"train_{g}_ep{e}_{s}", []).append(at_epoch(train, e))
        per_seed.setdefault("easy_stage1", []).append(per_seed[f"probe_easy_ep{e1}_lrDecay"][-1])
        per_seed.setdefault("easy_final", []).append(per_seed[f"probe_easy_ep{end}_lrDecay"][-1])
        per_seed.setdefault("complex_stage1", []).append(per_seed[f"probe_complex_ep{e1}_lrDecay"][-1])
        per_seed.setdefault("complex_final", []).append(per_seed[f"probe_complex_ep{end}_lrDecay"][-1])
        per_seed.setdefault("complex_stage1_large", []).append(per_seed[f"probe_complex_ep{e1}_large"][-1])
        per_seed.setdefault("complex_final_large", []).append(per_seed[f"probe_complex_ep{end}_large"][-1])
    verdict = judge(per_seed)
    groups = [g for g in ("easy", "complex", "noise") if f"probe_{g}_ep{end}_lrDecay" in per_seed] or sorted(
        {k.split("_")[1] for k in per_seed if k.startswith("probe_")})
    rows = []
    for s in ("lrDecay", "large", "small"):
        for g in groups:
            rows.append([s, g, *[fmt(stat(per_seed[f"train_{g}_ep{e}_{s}"])) for e in ends],
                         *[fmt(stat(per_seed[f"probe_{g}_ep{e}_{s}"])) for e in ends]])
    table = {"headers": ["schedule", "group", *[f"train acc @ ep {e}" for e in ends],
                         *[f"probe test acc @ ep {e}" for e in ends]], "rows": rows}
    curves = {"probe_test_acc": {k: mean_curve(v) for k, v in probe_c.items()},
              "train_acc_group_lrDecay": {k: mean_curve(v) for k, v in train_c.items()}}
    plots = []
    if out_dir is not None:
        vl = [m + 0.5 for m in settings["milestones"]]
        sel = {k: v for k, v in curves["probe_test_acc"].items() if not k.endswith("noise")}
        plots.append(line_plot(f"{out_dir}/complexity_probe.png", sel, title="C5: probe test accuracy per pattern",
                               ylabel="test accuracy", vlines=vl))
        plots.append(line_plot(f"{out_dir}/complexity_train.png", curves["train_acc_group_lrDecay"],
                               title="C5: lrDecay train accuracy per group", ylabel="train accuracy", vlines=vl))
    return finish_result(
        sys.modules[__name__], preset=preset, settings=settings, seeds=seeds, per_seed=per_seed, table=table,
        curves=curves, verdict=verdict, plots=plots, t0=t0,
    )


def _n_classes(settings: Mapping[str, Any]) -> int:
    from lrdecay.data import PRESETS as DATA_PRESETS

    return int(DATA_PRESETS[settings["preset"]]["n_classes"])
