"""C2: with full-batch gradient descent the sharp transitions disappear (the cause is SGD noise).

On one training set per seed we train (a) SGD with step decay, ``epochs`` epochs, decays at
``milestones``, and (b) full-batch gradient descent (one step per epoch) with the same LR schedule
stretched over ``gd_steps`` steps (decays at ``gd_milestones``): GD needs many more steps to fit.
The sharpness measure is the same for both: the change in train accuracy over a window right after the
decay divided by the change over the same window before it, with the window a tenth of the first stage
(1 epoch for SGD, ``gd_window`` steps for GD).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping, Sequence

from lrdecay.experiments.common import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    RunCache,
    Verdict,
    all_seeds,
    base_config,
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
    train_run,
)

NAME = "gd"
CLAIM = "C2"
TITLE = "Full-batch GD: no sharp transitions"
CLAIM_TEXT = (
    "With full-batch gradient descent the transitions at the decays disappear: the stages come from SGD "
    "noise, not from converging into a minimum."
)

_COMMON = {"momentum": 0.9, "weight_decay": 5e-4, "gamma": 0.1, "lr": 0.1, "model": "mlp", "probe_groups": False,
           "label_noise": 0.2}
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {**_COMMON, "preset": "toy", "n_train": 256, "n_test": 128, "width": 64, "depth": 2, "batch_size": 32,
             "epochs": 6, "milestones": [2, 4], "sgd_window": 1, "gd_steps": 30, "gd_milestones": [10, 20],
             "gd_window": 2, "seeds": [0, 1, 2], "device": "cpu", "threads": 1},
    "quick": {**_COMMON, "preset": "ps10", "n_train": 4_000, "n_test": 1_000, "width": 128, "depth": 3,
              "batch_size": 128, "epochs": 30, "milestones": [10, 20], "sgd_window": 1, "gd_steps": 300,
              "gd_milestones": [100, 200], "gd_window": 10, "seeds": [0, 1, 2], "device": "cpu", "threads": 1},
    "full": {**_COMMON, "preset": "ps10", "n_train": 10_000, "n_test": 5_000, "width": 512, "depth": 3,
             "batch_size": 128, "epochs": 30, "milestones": [10, 20], "sgd_window": 1, "gd_steps": 1500,
             "gd_milestones": [500, 1000], "gd_window": 50, "seeds": [0, 1, 2, 3, 4], "device": "auto",
             "threads": None},
}

# Fixed before any result was seen.
SGD_MIN = 3.0
GD_MAX = 1.5
RULE = (
    f"At the first decay, on every seed: SGD's sharpness ratio (train accuracy) ≥ {SGD_MIN} and GD's ≤ "
    f"{GD_MAX} → supported. Not supported if, on every seed, GD's ratio ≥ {SGD_MIN} (GD shows sharp "
    f"transitions too). Otherwise inconclusive (including when SGD itself shows no sharp transition)."
)


def judge(numbers: Mapping[str, Sequence[float]]) -> Verdict:
    """Apply :data:`RULE` to per-seed ``ratio_sgd1`` and ``ratio_gd1``."""
    sgd, gd = numbers["ratio_sgd1"], numbers["ratio_gd1"]
    support = [s is not None and g is not None and s >= SGD_MIN and g <= GD_MAX for s, g in zip(sgd, gd)]
    against = [g is not None and g >= SGD_MIN for g in gd]
    status = SUPPORTED if all_seeds(support) else NOT_SUPPORTED if all_seeds(against) else INCONCLUSIVE
    return Verdict(status, RULE, {"sgd_sharp_gd_smooth": support, "gd_sharp": against})


def setup_text(settings: Mapping[str, Any]) -> str:
    """The setup paragraph of the report section for these settings."""
    s = settings
    return (
        f"Data: preset `{s['preset']}`, {s['n_train']:,} training samples, "
        + (f"{s['label_noise']:.0%} symmetric label noise" if s.get("label_noise") else "no label noise")
        + f". Model: MLP "
        f"{s['depth']}×{s['width']} with BatchNorm; momentum {s['momentum']}, weight decay {s['weight_decay']}. "
        f"SGD: batch {s['batch_size']}, {s['epochs']} epochs, LR {s['lr']} × {s['gamma']} at epochs "
        f"{s['milestones']}. GD: full batch, {s['gd_steps']} steps, the same LRs, decays at steps "
        f"{s['gd_milestones']}. Sharpness window: {s['sgd_window']} epoch (SGD), {s['gd_window']} steps (GD). "
        f"Seeds {s['seeds']}."
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
    acc_c: dict[str, list] = {"SGD": [], "GD": []}
    loss_c: dict[str, list] = {"SGD": [], "GD": []}
    sgd_decays = [m for m in settings["milestones"] if m < settings["epochs"]]
    gd_decays = [m for m in settings["gd_milestones"] if m < settings["gd_steps"]]
    with torch_threads(settings.get("threads")):
        for seed in seeds:
            sgd_cfg = base_config(settings, seed=seed, device=device, schedule="multistep")
            gd_cfg = base_config(settings, seed=seed, device=device, schedule="multistep", batch_size=None,
                                 epochs=settings["gd_steps"], milestones=list(settings["gd_milestones"]),
                                 eval_every=settings["gd_steps"])
            for kind, cfg, decays, w in (("sgd", sgd_cfg, sgd_decays, settings["sgd_window"]),
                                         ("gd", gd_cfg, gd_decays, settings["gd_window"])):
                out = train_run(cfg, cache=cache, label=f"{kind.upper()} seed {seed}")
                acc = series(out.history, lambda r: r["train_acc"])
                loss = series(out.history, lambda r: r["train_loss"])
                acc_c[kind.upper()].append(acc)
                loss_c[kind.upper()].append(loss)
                for i, d in enumerate(decays, 1):
                    sh = sharpness(acc, d, window=w)
                    per_seed.setdefault(f"before_{kind}{i}", []).append(sh["before"])
                    per_seed.setdefault(f"after_{kind}{i}", []).append(sh["after"])
                    per_seed.setdefault(f"ratio_{kind}{i}", []).append(sh["ratio"])
                per_seed.setdefault(f"train_acc_at_decay1_{kind}", []).append(acc[decays[0] - 1] if decays else None)
                per_seed.setdefault(f"final_train_acc_{kind}", []).append(out.history[-1]["train_acc"])
                per_seed.setdefault(f"final_test_acc_{kind}", []).append(out.history[-1]["test"]["test"]["acc"])
    verdict = judge(per_seed)
    rows = []
    for kind, decays in (("sgd", sgd_decays), ("gd", gd_decays)):
        for i, d in enumerate(decays, 1):
            rows.append([kind.upper(), f"after {'epoch' if kind == 'sgd' else 'step'} {d}",
                         fmt(stat(per_seed[f"before_{kind}{i}"])), fmt(stat(per_seed[f"after_{kind}{i}"])),
                         fmt(stat(per_seed[f"ratio_{kind}{i}"]), 2),
                         fmt(stat(per_seed[f"final_train_acc_{kind}"])), fmt(stat(per_seed[f"final_test_acc_{kind}"]))])
    table = {"headers": ["method", "decay", "Δ train acc, window before", "Δ train acc, window after",
                         "sharpness", "final train acc", "final test acc"], "rows": rows}
    curves = {"train_acc": {k: mean_curve(v) for k, v in acc_c.items()},
              "train_loss": {k: mean_curve(v) for k, v in loss_c.items()}}
    plots = []
    if out_dir is not None:
        for kind, n, decays in (("SGD", settings["epochs"], sgd_decays), ("GD", settings["gd_steps"], gd_decays)):
            unit = "epoch" if kind == "SGD" else "step (= epoch)"
            plots.append(line_plot(
                f"{out_dir}/gd_{kind.lower()}_acc.png", {kind: curves["train_acc"][kind]},
                title=f"C2: {kind} train accuracy", xlabel=unit, ylabel="train accuracy",
                vlines=[d + 0.5 for d in decays]))
    notes = [
        f"Train accuracy when the LR first decays: SGD {fmt(stat(per_seed['train_acc_at_decay1_sgd']))}, "
        f"GD {fmt(stat(per_seed['train_acc_at_decay1_gd']))} (a run that has already fitted its training set "
        f"has nothing left to gain at the decay, so its ratio is ~0)."
    ]
    return finish_result(
        sys.modules[__name__], preset=preset, settings=settings, seeds=seeds, per_seed=per_seed, table=table,
        curves=curves, verdict=verdict, plots=plots, t0=t0, notes=notes,
    )
