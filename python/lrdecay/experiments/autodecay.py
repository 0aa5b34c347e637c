"""C7: detecting the end of a stage and decaying then (AutoDecay) shortens training without hurting accuracy.

Three arms per seed, same data, model and epoch budget: fixed milestones (the base lrDecay run),
:class:`lrdecay.schedules.AutoDecay` on the per-epoch training loss, and torch's ``ReduceLROnPlateau`` on
the same loss. Epochs to target: the first epoch whose test accuracy reaches the fixed-milestone run's
final test accuracy minus ``target_tol``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping, Sequence

from lrdecay.experiments import base
from lrdecay.trainer import decays_in
from lrdecay.experiments.common import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    RunCache,
    Verdict,
    all_seeds,
    base_config,
    epochs_to_target,
    finish_result,
    fmt,
    line_plot,
    log,
    mean_curve,
    prepare,
    series,
    stat,
    torch_threads,
    train_run,
)

NAME = "autodecay"
CLAIM = "C7"
TITLE = "AutoDecay: decay when a stage ends"
CLAIM_TEXT = (
    "Detecting the end of a stage from the training loss and decaying then (AutoDecay) reaches the accuracy "
    "of fixed milestones in fewer epochs, without hurting the final accuracy."
)

_AUTO = {"auto_window": 5, "auto_fraction": 0.1, "auto_min_stage": 5, "plateau_patience": 3,
         "plateau_threshold": 0.01, "target_tol": 0.005}
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {**base.BASE_PRESETS["tiny"], **_AUTO, "auto_window": 3, "auto_min_stage": 2, "plateau_patience": 1},
    "quick": {**base.BASE_PRESETS["quick"], **_AUTO},
    "full": {**base.BASE_PRESETS["full"], **_AUTO},
}

# Fixed before any result was seen.
ACC_TOL = 0.01
RULE = (
    "Target per seed: the fixed-milestone run's final test accuracy − `target_tol`. Supported if, on every "
    "seed, AutoDecay reaches the target no later than fixed milestones and its final test accuracy is ≥ "
    f"the fixed run's − {ACC_TOL}, and its mean epochs-to-target is strictly smaller. Not supported if, on "
    f"every seed, AutoDecay's final test accuracy is < the fixed run's − {ACC_TOL}, or if, on every seed, it "
    "reaches the target later (never reaching it counts as later). Otherwise inconclusive. "
    "(ReduceLROnPlateau is reported for comparison, not judged.)"
)


def judge(numbers: Mapping[str, Sequence[float | None]]) -> Verdict:
    """Apply :data:`RULE` to per-seed ``epochs_to_target_auto``, ``epochs_to_target_fixed`` (None: never),
    ``final_test_auto`` and ``final_test_fixed``."""
    big = float("inf")
    ea = [big if v is None else v for v in numbers["epochs_to_target_auto"]]
    ef = [big if v is None else v for v in numbers["epochs_to_target_fixed"]]
    fa, ff = numbers["final_test_auto"], numbers["final_test_fixed"]
    no_later = [a <= f for a, f in zip(ea, ef)]
    keeps_acc = [a >= f - ACC_TOL for a, f in zip(fa, ff)]
    shorter = bool(ea) and sum(ea) / len(ea) < sum(ef) / len(ef)
    if all_seeds(no_later) and all_seeds(keeps_acc) and shorter:
        status = SUPPORTED
    elif all_seeds([not k for k in keeps_acc]) or all_seeds([a > f for a, f in zip(ea, ef)]):
        status = NOT_SUPPORTED
    else:
        status = INCONCLUSIVE
    return Verdict(status, RULE, {"no_later_than_fixed": no_later, "keeps_accuracy": keeps_acc,
                                  "mean_shorter": shorter})


def setup_text(settings: Mapping[str, Any]) -> str:
    """The setup paragraph of the report section for these settings."""
    s = settings
    return base.describe(s) + (
        f" AutoDecay: window {s['auto_window']} epochs, fraction {s['auto_fraction']} (see "
        f"lrdecay.schedules.AutoDecay), at least {s['auto_min_stage']} epochs per stage, "
        f"at most {len(s['milestones'])} decays of ×{s['gamma']}. ReduceLROnPlateau: on the train loss, "
        f"patience {s['plateau_patience']}, relative threshold {s['plateau_threshold']}, factor {s['gamma']}, "
        f"min LR {s['lr']} × {s['gamma']}^{len(s['milestones'])}. Both use torch.optim.SGD (LR set on the host); "
        f"the fixed run uses FusedSGD (same update, tested equal). Target tolerance {s['target_tol']}."
    )


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
    log(f"[{NAME}] preset {preset}, seeds {seeds}")
    per_seed: dict[str, list] = {}
    test_c: dict[str, list] = {"fixed": [], "auto": [], "plateau": []}
    lr_c: dict[str, list] = {"fixed": [], "auto": [], "plateau": []}
    with torch_threads(settings.get("threads")):
        for seed in seeds:
            outs = {"fixed": base.schedule_run(settings, "lrDecay", seed, cache=cache, device=device)}
            for arm in ("auto", "plateau"):
                cfg = base_config(settings, seed=seed, device=device, schedule=arm,
                                  max_decays=len(settings["milestones"]),
                                  **{k: v for k, v in settings.items() if k.startswith(arm + "_")})
                outs[arm] = train_run(cfg, cache=cache, label=f"{arm} seed {seed}")
            target = outs["fixed"].history[-1]["test"]["test"]["acc"] - settings["target_tol"]
            per_seed.setdefault("target", []).append(target)
            for arm, out in outs.items():
                test = series(out.history, lambda r: r["test"]["test"]["acc"])
                test_c[arm].append(test)
                lr_c[arm].append(series(out.history, lambda r: r["lr"]))
                per_seed.setdefault(f"epochs_to_target_{arm}", []).append(epochs_to_target(test, target))
                per_seed.setdefault(f"final_test_{arm}", []).append(test[-1])
                per_seed.setdefault(f"best_test_{arm}", []).append(max(v for v in test if v is not None))
                decays = decays_in(out.history)
                per_seed.setdefault(f"decays_{arm}", []).append(decays)
    verdict = judge(per_seed)
    names = {"fixed": "fixed milestones", "auto": "AutoDecay", "plateau": "ReduceLROnPlateau"}
    rows = [[names[a], fmt(stat(per_seed[f"epochs_to_target_{a}"]), 1),
             " / ".join(str(d) for d in per_seed[f"decays_{a}"]),
             fmt(stat(per_seed[f"final_test_{a}"])), fmt(stat(per_seed[f"best_test_{a}"]))] for a in names]
    table = {"headers": ["schedule", "epochs to target", "decay epochs (per seed)", "final test acc",
                         "best test acc"], "rows": rows}
    curves = {"test_acc": {names[k]: mean_curve(v) for k, v in test_c.items()},
              "lr": {names[k]: mean_curve(v) for k, v in lr_c.items()}}
    plots = []
    if out_dir is not None:
        plots.append(line_plot(f"{out_dir}/autodecay.png", curves["test_acc"], title="C7: test accuracy",
                               ylabel="test accuracy"))
    return finish_result(
        sys.modules[__name__], preset=preset, settings=settings, seeds=seeds, per_seed=per_seed, table=table,
        curves=curves, verdict=verdict, plots=plots, t0=t0,
    )
