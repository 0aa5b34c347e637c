"""C2: with full-batch gradient descent the sharp transitions disappear (the cause is SGD noise).

Per seed, on one training set (the C1 data construction and model, ``gd_n_train`` samples so that full
batches are affordable): (a) SGD with step decay at the C1 milestones; (b) full-batch gradient descent
(one step per "epoch") with the same LRs, whose decays are placed at *matched training accuracy*: GD
decays when its training accuracy first reaches the accuracy SGD had when SGD decayed
(:class:`lrdecay.schedules.AccuracyMilestones`). Both are judged by the same sharpness measure at their
first decay: the change in training accuracy over a window right after the decay divided by the change
over the same window before it. The window is a tenth of the run's own first stage: one epoch for SGD
(first stage: 10 epochs), and for GD a tenth of the steps before its first decay (at least one step).

A seed is *valid* only if both runs decayed below 0.95 training accuracy (a run that has fitted its
training set has nothing left to gain at the decay) and each run's curve moves by at least the floor
(0.005) in one of its two windows: 0/0 is never "smooth".

On real images both runs train on a class-balanced subset of ``gd_n_train`` training images (at most all
of them) and *without augmentation*: a random crop or flip drawn anew at every step would make full-batch
GD stochastic again, and SGD must see the same images to be compared with it.
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
    fmt,
    line_plot,
    mean_curve,
    series,
    sharpness,
    stat,
)
from lrdecay.experiments.runner import Experiment, config_from

OPTIONS = {
    **base.BASE_OPTIONS,
    "gd_n_train": "training samples of both C2 runs (the C1 construction; full batches must be affordable; "
                  "real images: a class-balanced subset, at most all of them)",
    "gd_steps": "full-batch GD steps (its whole budget)",
}
_GD = {
    "tiny": {"gd_n_train": 256, "gd_steps": 60},
    # gd_steps by the pre-registered feasibility rule on pilot seed 1000 (docs/regime/PREREGISTRATION.md):
    # GD reached SGD's first-decay accuracy (0.704) after 19 steps, within half of the smallest budget
    "quick": {"gd_n_train": 5_000, "gd_steps": 500},
    "full": {"gd_n_train": 10_000, "gd_steps": 1_000},
}
# the claim map's picks keep the quick preset's GD subset and budget, as the map ran them
PRESETS = {p: {**base.BASE_PRESETS[p], **_GD.get(p, _GD["quick"])} for p in base.BASE_PRESETS}

# Real images: no augmentation (see the module docstring). A full batch of 5,000 CIFAR images holds ~10 GB
# of ResNet-20 activations and ~30 GB of ResNet-56's (float32), so both GPU presets fit one 40 GB GPU.
_GD_IMAGES = {
    "digits": {"tiny": {"gd_n_train": 256, "gd_steps": 40}, "quick": {"gd_n_train": 500, "gd_steps": 500}},
    "mnist": {"tiny": {"gd_n_train": 256, "gd_steps": 40}, "quick": {"gd_n_train": 2_000, "gd_steps": 1_000}},
    "other": {"tiny": {"gd_n_train": 128, "gd_steps": 30}, "quick": {"gd_n_train": 5_000, "gd_steps": 2_000},
              "full": {"gd_n_train": 5_000, "gd_steps": 3_000}},
}
IMAGE_PRESETS = base.image_presets(
    lambda data, preset: {**_GD_IMAGES[base.image_family(data)][preset], "augment": "none"})

# Fixed before any result was seen (SGD_MIN, GD_MAX); FLOOR and FIT_MAX added with the matched-accuracy
# design, before any run of it.
SGD_MIN = 3.0
GD_MAX = 1.5
FLOOR = 0.005
FIT_MAX = 0.95
RULE = (
    f"At the first decay, per seed: the seed is valid if SGD and GD both decayed at a training accuracy below "
    f"{FIT_MAX} and each run's accuracy moved by at least {FLOOR} in the window before or after its decay. "
    f"Supported if every seed is valid with SGD's sharpness ratio ≥ {SGD_MIN} and GD's ≤ {GD_MAX}. Not "
    f"supported if every seed is valid with GD's ratio ≥ {SGD_MIN} (GD shows sharp transitions too). "
    f"Otherwise inconclusive (including invalid seeds, and SGD itself showing no sharp transition)."
)


def judge(numbers: Mapping[str, Sequence[Any]]) -> Verdict:
    """Apply :data:`RULE` to per-seed ``ratio_sgd1``, ``ratio_gd1``, ``valid``."""
    sgd, gd, valid = numbers["ratio_sgd1"], numbers["ratio_gd1"], numbers["valid"]
    support = [bool(v) and s >= SGD_MIN and g <= GD_MAX for s, g, v in zip(sgd, gd, valid)]
    against = [bool(v) and g >= SGD_MIN for g, v in zip(gd, valid)]
    status = SUPPORTED if all_seeds(support) else NOT_SUPPORTED if all_seeds(against) else INCONCLUSIVE
    return Verdict(status, RULE, {"valid": list(map(bool, valid)), "sgd_sharp_gd_smooth": support,
                                  "gd_sharp": against})


def window_steps(first_decay: int) -> int:
    """GD's window: a tenth of its first stage (``first_decay`` steps), at least one step — as SGD's one
    epoch is a tenth of its first stage."""
    return max(1, round(first_decay / 10))


def setup(settings: Mapping[str, Any]) -> str:
    """The setup paragraph of the report section."""
    s = settings
    if s.get("data") is not None:
        return (
            base.describe(s) + f" C2 runs: both on a class-balanced subset of {s['gd_n_train']:,} training images "
            f"with augmentation {base.augment_text(s)}. SGD: batch {s['batch_size']}, {s['epochs']} epochs, LR "
            f"{s['lr']} × {s['gamma']} at epochs {s['milestones']}. GD: full batch, at most {s['gd_steps']} steps, "
            f"the same LRs, each decay when GD's training accuracy first reaches SGD's at the matching decay. "
            f"Sharpness window: 1 epoch (SGD); a tenth of its steps before the decay (GD)."
        )
    return (
        f"Data: preset `{s['preset']}` (the C1 construction), {s['gd_n_train']:,} training samples, "
        + (f"{s['label_noise']:.0%} symmetric label noise" if s.get("label_noise") else "no label noise")
        + f". Model: MLP {s['depth']}×{s['width']} with BatchNorm; momentum {s['momentum']}, weight decay "
        f"{s['weight_decay']}. SGD: batch {s['batch_size']}, {s['epochs']} epochs, LR {s['lr']} × {s['gamma']} "
        f"at epochs {s['milestones']}. GD: full batch, at most {s['gd_steps']} steps, the same LRs, each decay "
        f"when GD's training accuracy first reaches SGD's at the matching decay. Sharpness window: a tenth of "
        f"the first stage (SGD: 1 epoch; GD: a tenth of its steps before the decay). Seeds {s['seeds']}."
    )


def _size(settings) -> dict:
    """The C2 training set's size: ``n_train`` of the pattern data, a ``train_subset`` of real images."""
    if settings.get("data") is not None:
        return {"train_subset": settings["gd_n_train"]}
    return {"n_train": settings["gd_n_train"], "probe_groups": False}


def prepare(settings: dict) -> dict:
    """Real images: :func:`~lrdecay.experiments.base.prepare_images`, and ``gd_n_train`` is at most the
    number of training images (a small folder)."""
    settings = base.prepare_images(settings)
    if settings.get("data") is not None:
        from lrdecay.experiments import realdata

        meta = realdata.info(settings["data"], settings.get("data_dir"), settings.get("image_size", 32))
        settings = {**settings, "gd_n_train": min(settings["gd_n_train"], meta.n_train_of(settings.get("classes")))}
    return settings


def _sgd_config(settings, seed):
    return config_from(settings, seed=seed, schedule="multistep", **_size(settings))


def _thresholds(settings, sgd_history) -> list[float]:
    """SGD's training accuracy at each of its decays, kept strictly increasing."""
    out: list[float] = []
    for m in settings["milestones"]:
        if m < settings["epochs"]:
            a = sgd_history[m - 1]["train_acc"]
            if not out or a > out[-1]:
                out.append(a)
    return out


def runs(settings: Mapping[str, Any], seed: int, done: Mapping) -> dict:
    """The SGD run; once it is trained, the GD run with decays at SGD's decay-time accuracies."""
    req = {"sgd": _sgd_config(settings, seed)}
    if "sgd" in done:
        req["gd"] = config_from(
            settings, seed=seed, **_size(settings), batch_size=None,
            epochs=settings["gd_steps"], schedule="train_acc", decay_train_acc=_thresholds(settings, done["sgd"].history),
            eval_every=settings["gd_steps"],
        )
    return req


def measure(settings: Mapping[str, Any], seed: int, runs: Mapping) -> dict:
    """Sharpness at each run's first decay, the accuracy there, and the validity of the seed."""
    from lrdecay.trainer import decays_in

    out: dict[str, Any] = {}
    sgd_h, gd_h = runs["sgd"].history, runs["gd"].history
    sgd_acc = series(sgd_h, lambda r: r["train_acc"])
    gd_acc = series(gd_h, lambda r: r["train_acc"])
    d_sgd = [m for m in settings["milestones"] if m < settings["epochs"]]
    d_gd = decays_in(gd_h)
    ok = True
    w_gd = window_steps(d_gd[0]) if d_gd else 1
    out["window_gd"] = w_gd
    for kind, acc, decays, w in (("sgd", sgd_acc, d_sgd, 1), ("gd", gd_acc, d_gd, w_gd)):
        if decays:
            sh = sharpness(acc, decays[0], window=w, floor=FLOOR)
            at = acc[decays[0] - 1]
        else:
            sh, at = {"after": None, "before": None, "ratio": None}, None
        out[f"before_{kind}1"], out[f"after_{kind}1"], out[f"ratio_{kind}1"] = sh["before"], sh["after"], sh["ratio"]
        out[f"train_acc_at_decay1_{kind}"] = at
        out[f"decay1_{kind}"] = decays[0] if decays else None
        ok = ok and sh["ratio"] is not None and at < FIT_MAX and max(abs(sh["before"]), abs(sh["after"])) >= FLOOR
    out["valid"] = ok
    out["decays_gd"] = d_gd
    for kind, h in (("sgd", sgd_h), ("gd", gd_h)):
        out[f"final_train_acc_{kind}"] = h[-1]["train_acc"]
        out[f"final_test_acc_{kind}"] = h[-1]["test"]["test"]["acc"]
    return out


def present(settings, per_seed, runs_by_seed, out_dir):
    """Table per method; train accuracy curves of SGD (per epoch) and GD (per step)."""
    rows = []
    for kind, unit in (("sgd", "epoch"), ("gd", "step")):
        rows.append([kind.upper(), fmt(stat(per_seed[f"decay1_{kind}"]), 1) + f" ({unit})",
                     fmt(stat(per_seed[f"train_acc_at_decay1_{kind}"])),
                     fmt(stat(per_seed[f"before_{kind}1"])), fmt(stat(per_seed[f"after_{kind}1"])),
                     fmt(stat(per_seed[f"ratio_{kind}1"]), 2),
                     fmt(stat(per_seed[f"final_train_acc_{kind}"])), fmt(stat(per_seed[f"final_test_acc_{kind}"]))])
    table = {"headers": ["method", "first decay after", "train acc at the decay", "Δ train acc, window before",
                         "Δ train acc, window after", "sharpness", "final train acc", "final test acc"],
             "rows": rows}
    curves = {"train_acc": {
        "SGD": mean_curve([series(r["sgd"].history, lambda x: x["train_acc"]) for r in runs_by_seed.values()]),
        "GD": mean_curve([series(r["gd"].history, lambda x: x["train_acc"]) for r in runs_by_seed.values()]),
    }}
    plots = []
    if out_dir is not None:
        d_sgd = [m for m in settings["milestones"] if m < settings["epochs"]]
        plots.append(line_plot(f"{out_dir}/gd_sgd_acc.png", {"SGD": curves["train_acc"]["SGD"]},
                               title="C2: SGD train accuracy", ylabel="train accuracy", vlines=[d + 0.5 for d in d_sgd]))
        gd_decays = sorted({d for v in per_seed["decays_gd"] if v for d in v})
        plots.append(line_plot(f"{out_dir}/gd_gd_acc.png", {"GD (mean over seeds)": curves["train_acc"]["GD"]},
                               title="C2: full-batch GD train accuracy (decays at matched accuracy, per seed)",
                               xlabel="step", ylabel="train accuracy", vlines=[d + 0.5 for d in gd_decays]))
    notes = [f"GD decay steps per seed (after step): {per_seed['decays_gd']}; valid seeds: {per_seed['valid']}."]
    return table, curves, plots, notes


EXPERIMENT = Experiment(
    name="gd", claim="C2", title="Full-batch GD: no sharp transitions",
    claim_text=("With full-batch gradient descent the transitions at the decays disappear: the stages come from "
                "SGD noise, not from converging into a minimum."),
    presets=PRESETS, options=OPTIONS, rule=RULE, judge=judge,
    verdict_keys=("ratio_sgd1", "ratio_gd1", "train_acc_at_decay1_sgd", "train_acc_at_decay1_gd"),
    runs=runs, measure=measure, present=present, setup=setup,
    applies_to=("patterns", "images"), image_presets=IMAGE_PRESETS, prepare=prepare,
)
