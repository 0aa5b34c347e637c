"""C7: detecting the end of a stage and decaying then (AutoDecay) shortens training without hurting accuracy.

Four arms per seed, same data, model and epoch budget: fixed milestones (the base lrDecay run),
:class:`lrdecay.schedules.AutoDecay` on the per-epoch training loss (schedule ``auto``: a noise-aware
plateau test relative to the stage's own drop, constants justified in its docstring), the same test on the
error of a validation split carved from the training set (schedule ``auto_val``, ``val_fraction``; that
run trains on the rest), and torch's ``ReduceLROnPlateau`` on the training loss (schedule ``plateau``), each
with at most as many decays as the fixed schedule. The target per seed is the fixed run's *best* test accuracy minus ``target_tol``; each arm's
epochs to target is the first epoch whose test accuracy reaches it. ReduceLROnPlateau is judged by the
same rule, as a second baseline, and so is AutoDecay on the validation error: the training loss keeps
falling while noisy labels are memorized, so it may never show the plateau that ends a stage (the choice of
signal was pre-registered in ``docs/regime/PREREGISTRATION.md``). The verdict reads the training-loss arm.
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
    epochs_to_target,
    fmt,
    line_plot,
    mean_curve,
    series,
    stat,
)
from lrdecay.experiments.runner import Experiment, config_from

OPTIONS = {**base.BASE_OPTIONS, "target_tol": "the target is the fixed run's best test accuracy minus this",
           "auto_val_fraction": "the validation split of the auto_val arm (a fraction of the training set)"}
_ARMS = {"auto_window": 5, "auto_fraction": 0.1, "plateau_patience": 3, "plateau_threshold": 0.01,
         "target_tol": 0.005, "auto_val_fraction": 0.1}
PRESETS: dict[str, dict[str, Any]] = {p: {**base.BASE_PRESETS[p], **_ARMS} for p in base.BASE_PRESETS}
PRESETS["tiny"].update(auto_window=3, plateau_patience=1)
IMAGE_PRESETS = base.image_presets(
    lambda data, preset: {**_ARMS, **({"auto_window": 3, "plateau_patience": 1} if preset == "tiny" else {})})

RULE = (
    "Target per seed: the fixed-milestone run's best test accuracy − `target_tol`. Supported if, on every "
    "seed, AutoDecay reaches the target no later than the fixed milestones, and its mean epochs-to-target "
    "over seeds is strictly smaller. Not supported if, on every seed, AutoDecay never reaches the target or "
    "reaches it later. Otherwise inconclusive. ReduceLROnPlateau and AutoDecay on the validation error are "
    "judged by the same rule (reported beside it; the verdict reads AutoDecay on the training loss)."
)
ARMS = {"fixed": "fixed milestones", "auto": "AutoDecay", "auto_val": "AutoDecay (validation error)",
        "plateau": "ReduceLROnPlateau"}
#: The arms reported by the same rule beside the verdict's, as judge's detail keys.
SECOND_ARMS = {"plateau": "plateau_by_the_same_rule", "auto_val": "auto_val_by_the_same_rule"}


def rule_status(epochs_arm: Sequence[int | None], epochs_fixed: Sequence[int | None]) -> tuple[str, dict]:
    """The rule for one arm against the fixed milestones (None: never reached)."""
    big = float("inf")
    ea = [big if v is None else v for v in epochs_arm]
    ef = [big if v is None else v for v in epochs_fixed]
    no_later = [a != big and a <= f for a, f in zip(ea, ef)]
    shorter = bool(ea) and all(a != big for a in ea) and sum(ea) / len(ea) < sum(ef) / len(ef)
    if all_seeds(no_later) and shorter:
        status = SUPPORTED
    elif all_seeds([a == big or a > f for a, f in zip(ea, ef)]):
        status = NOT_SUPPORTED
    else:
        status = INCONCLUSIVE
    return status, {"no_later_than_fixed": no_later, "mean_shorter": shorter}


def judge(numbers: Mapping[str, Sequence[Any]]) -> Verdict:
    """Apply :data:`RULE` to per-seed ``epochs_to_target_auto`` and ``epochs_to_target_fixed`` (None:
    never); ReduceLROnPlateau's and AutoDecay-on-validation-error's statuses by the same rule are in the
    details when their numbers are given."""
    status, details = rule_status(numbers["epochs_to_target_auto"], numbers["epochs_to_target_fixed"])
    for arm, key in SECOND_ARMS.items():
        if f"epochs_to_target_{arm}" in numbers:
            details[key] = rule_status(numbers[f"epochs_to_target_{arm}"], numbers["epochs_to_target_fixed"])[0]
    return Verdict(status, RULE, details)


def setup(settings: Mapping[str, Any]) -> str:
    """The setup paragraph of the report section."""
    s = settings
    n = len([m for m in s["milestones"] if m < s["epochs"]])
    return base.describe(s) + (
        f" AutoDecay: window {s['auto_window']} epochs, fraction {s['auto_fraction']}, at most {n} decays of "
        f"×{s['gamma']}; a second AutoDecay arm reads the error of a {s['auto_val_fraction']:.0%} validation split of the "
        f"training set (observed labels; that arm trains on the other {1 - s['auto_val_fraction']:.0%}). ReduceLROnPlateau: on the train loss, patience {s['plateau_patience']}, relative "
        f"threshold {s['plateau_threshold']}, factor {s['gamma']}, at most {n} decays. Same epoch budget "
        f"({s['epochs']}) for every arm. Target tolerance {s['target_tol']}."
    )


def runs(settings: Mapping[str, Any], seed: int, done: Mapping) -> dict:
    """The fixed-milestone base run, and the AutoDecay (training loss, validation error) and
    ReduceLROnPlateau runs."""
    n = len([m for m in settings["milestones"] if m < settings["epochs"]])
    req = {"fixed": base.base_runs(settings, seed, ("lrDecay",))["lrDecay"]}
    for arm in ("auto", "plateau"):
        req[arm] = config_from(settings, seed=seed, schedule=arm, max_decays=n, eval_every=1)
    req["auto_val"] = config_from(settings, seed=seed, schedule="auto_val", max_decays=n, eval_every=1,
                                  val_fraction=settings["auto_val_fraction"])
    return req


def measure(settings: Mapping[str, Any], seed: int, runs: Mapping) -> dict:
    """Epochs to target, final and best test accuracy and decay epochs per arm."""
    from lrdecay.trainer import decays_in

    tests = {arm: series(runs[arm].history, lambda r: r["test"]["test"]["acc"]) for arm in ARMS}
    target = max(v for v in tests["fixed"] if v is not None) - settings["target_tol"]
    out: dict[str, Any] = {"target": target}
    for arm, test in tests.items():
        out[f"epochs_to_target_{arm}"] = epochs_to_target(test, target)
        out[f"final_test_{arm}"] = test[-1]
        out[f"best_test_{arm}"] = max(v for v in test if v is not None)
        out[f"decays_{arm}"] = decays_in(runs[arm].history)
    return out


def present(settings, per_seed, runs_by_seed, out_dir):
    """Table per arm (with how many seeds reached the target); test accuracy and LR curves."""
    rows = []
    n = len(per_seed["target"])
    for arm, name in ARMS.items():
        reached = sum(1 for v in per_seed[f"epochs_to_target_{arm}"] if v is not None)
        rows.append([name, f"{fmt(stat(per_seed[f'epochs_to_target_{arm}']), 1)} ({reached}/{n} seeds reached)",
                     str(settings["epochs"]), " / ".join(str(d) for d in per_seed[f"decays_{arm}"]),
                     fmt(stat(per_seed[f"final_test_{arm}"])), fmt(stat(per_seed[f"best_test_{arm}"]))])
    table = {"headers": ["schedule", "epochs to target (mean over seeds that reached it)", "epochs trained",
                         "decay epochs (per seed)", "final test acc", "best test acc"], "rows": rows}
    curves = {
        "test_acc": {ARMS[a]: mean_curve([series(r[a].history, lambda x: x["test"]["test"]["acc"])
                                          for r in runs_by_seed.values()]) for a in ARMS},
        "lr": {ARMS[a]: mean_curve([series(r[a].history, lambda x: x["lr"]) for r in runs_by_seed.values()])
               for a in ARMS},
    }
    plots = []
    if out_dir is not None:
        plots.append(line_plot(f"{out_dir}/autodecay.png", curves["test_acc"], title="C7: test accuracy",
                               ylabel="test accuracy"))
    notes = [f"{ARMS[arm]} by the same rule: "
             f"{rule_status(per_seed[f'epochs_to_target_{arm}'], per_seed['epochs_to_target_fixed'])[0]}."
             for arm in SECOND_ARMS]
    notes += [
             f"Targets per seed: {', '.join(f'{t:.4f}' for t in per_seed['target'])}."]
    return table, curves, plots, notes


EXPERIMENT = Experiment(
    name="autodecay", claim="C7", title="AutoDecay: decay when a stage ends",
    claim_text=("Detecting the end of a stage from the training loss and decaying then (AutoDecay) reaches the "
                "accuracy of fixed milestones in fewer epochs, without hurting the final accuracy."),
    presets=PRESETS, options=OPTIONS, rule=RULE, judge=judge,
    verdict_keys=("epochs_to_target_fixed", "epochs_to_target_auto", "epochs_to_target_plateau",
                  "epochs_to_target_auto_val", "final_test_fixed", "final_test_auto", "final_test_auto_val"),
    runs=runs, measure=measure, present=present, setup=setup,
    applies_to=("patterns", "images"), image_presets=IMAGE_PRESETS,
    prepare=base.prepare_images,
)
