"""C6: patterns learned in later stages are more complex and less transferable.

Sources: the lrDecay base run and the constant-large-LR run (identical until the first decay), with model
snapshots mid stage 1 and at every stage end. Target task: it shares only the easy pattern with the
source. Half of its samples carry the source's easy pattern (same centres, same labels); the other half a
*new* easy-like pattern (new centres drawn with another seed, same dimension, radius and spread) in the
same input columns; the complex block is blank for every target sample. So nothing the source learned in
its complex-pattern columns can help the target, and what transfers is how well the frozen features still
describe the easy columns. For each snapshot (frozen): a linear probe (a fresh linear layer on
standardized penultimate features, full-batch Adam) and a fine-tune of the source's last layer, trained
on the target training set. Comparing lrDecay's final snapshot with the large LR's final snapshot (same
epochs) separates "after a decay" from "later in training".

On real images the target is *another label set* (option ``transfer_target``):

- ``cifar100`` / ``cifar10``: the other CIFAR, from the same ``data_dir`` (``auto`` picks it when the folder
  holds it). Both come from the same collection of 32×32 photographs (80 Million Tiny Images) and their
  classes were chosen to be mutually exclusive: the target shares the image domain with the source, not a
  class. The source runs are the shared base runs.
- ``classes``: a held-out class split of the same data (``auto`` otherwise). The source runs (lrDecay and
  the constant large LR) train on the first ``ceil(K / 2)`` classes only (their own runs, ``classes`` in
  the config; their test accuracy is on those classes' test images); the target task is the other
  classes, relabelled 0..k-1: images the source never saw, labels it never learned. Shared: the image
  domain (and the capture conditions of one data set), not a class or an image.

Target sets are class-balanced subsets of ``n_target_train`` training and ``n_target_test`` test images
(at most all of them). Frozen features are the snapshot's penultimate activations of the target images
normalized with the *source's* training statistics (what the network was trained on), computed on the
run's device; the probe and the fine-tune are as above (the fine-tune starts from the source's last layer
when the target has as many classes, else from a fresh seeded layer).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from lrdecay.experiments import base
from lrdecay.experiments.common import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    Verdict,
    all_seeds,
    fmt,
    line_plot,
    stat,
)
from lrdecay.experiments.runner import Experiment

OPTIONS = {
    **base.BASE_OPTIONS,
    "target_center_offset": "added to the source seed for the target's new centres and its samples",
    "n_target_train": "target training samples", "n_target_test": "target test samples",
    "probe_steps": "full-batch Adam steps of the linear probe", "probe_lr": "its LR",
    "finetune_steps": "full-batch Adam steps of the last-layer fine-tune", "finetune_lr": "its LR",
    "transfer_target": "real images: `auto` (the other CIFAR when data_dir holds it, else `classes`), `classes` "
                       "(a held-out class split of the same data), `cifar10` or `cifar100`",
}
TARGETS = ("auto", "classes", "cifar10", "cifar100")
_TARGET = {"target_center_offset": 1_000_003, "probe_steps": 300, "probe_lr": 0.05, "finetune_steps": 300,
           "finetune_lr": 0.01}
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {**base.BASE_PRESETS["tiny"], **_TARGET, "n_target_train": 400, "n_target_test": 200,
             "probe_steps": 60, "finetune_steps": 60},
    "quick": {**base.BASE_PRESETS["quick"], **_TARGET, "n_target_train": 10_000, "n_target_test": 5_000},
    "full": {**base.BASE_PRESETS["full"], **_TARGET, "n_target_train": 20_000, "n_target_test": 10_000},
}
PRESETS = base.with_map_picks(PRESETS)

# Real images: n_target_* are capped at what the target holds (a held-out half of digits' test split has
# ~180 images).
_TARGET_IMAGES = {
    "digits": {"tiny": {"n_target_train": 300, "n_target_test": 150, "probe_steps": 60, "finetune_steps": 60},
               "quick": {"n_target_train": 700, "n_target_test": 180}},
    "mnist": {"tiny": {"n_target_train": 256, "n_target_test": 256, "probe_steps": 60, "finetune_steps": 60},
              "quick": {"n_target_train": 10_000, "n_target_test": 5_000}},
    "other": {"tiny": {"n_target_train": 256, "n_target_test": 256, "probe_steps": 60, "finetune_steps": 60},
              "quick": {"n_target_train": 10_000, "n_target_test": 10_000},
              "full": {"n_target_train": 10_000, "n_target_test": 10_000}},
}
IMAGE_PRESETS = base.image_presets(lambda data, preset: {
    **{k: v for k, v in _TARGET.items() if k != "target_center_offset"}, "transfer_target": "auto",
    **_TARGET_IMAGES[base.image_family(data)][preset]})

# MARGIN fixed before any result was seen; the large-LR comparison added later with the same margin.
MARGIN = 0.01
RULE = (
    "Linear probe target test accuracy, on every seed: (1) lrDecay's final snapshot is at least "
    f"{MARGIN} below its end-of-stage-1 snapshot, while its source test accuracy is at least the "
    f"end-of-stage-1 one's; and (2) lrDecay's final snapshot is at least {MARGIN} below the constant large "
    "LR's final snapshot (same epochs, no decay) → supported. Not supported if, on every seed, lrDecay's final "
    "snapshot transfers at least as well as its end-of-stage-1 snapshot. Otherwise inconclusive."
)


def judge(numbers: Mapping[str, Sequence[float]]) -> Verdict:
    """Apply :data:`RULE` to per-seed ``probe_stage1``, ``probe_final``, ``probe_final_large``,
    ``source_test_stage1``, ``source_test_final``."""
    p1, pf, pl = numbers["probe_stage1"], numbers["probe_final"], numbers["probe_final_large"]
    s1, sf = numbers["source_test_stage1"], numbers["source_test_final"]
    later = [b <= a - MARGIN and d >= c for a, b, c, d in zip(p1, pf, s1, sf)]
    decay = [b <= c - MARGIN for b, c in zip(pf, pl)]
    support = [a and b for a, b in zip(later, decay)]
    against = [b >= a for a, b in zip(p1, pf)]
    status = SUPPORTED if all_seeds(support) else NOT_SUPPORTED if all_seeds(against) else INCONCLUSIVE
    return Verdict(status, RULE, {"later_transfers_worse": later, "decayed_transfers_worse_than_large": decay,
                                  "later_transfers_no_worse": against})


def setup(settings: Mapping[str, Any]) -> str:
    """The setup paragraph of the report section."""
    s = settings
    if s.get("data") is not None:
        return _setup_images(s)
    return base.describe(s) + (
        f" Target task: half the source's easy pattern (same centres and labels), half a new easy-like pattern "
        f"(new centres) in the same columns; the complex block blank; {s['n_target_train']:,} training / "
        f"{s['n_target_test']:,} test samples, no label noise. Linear probe: fresh linear layer on standardized "
        f"frozen features, {s['probe_steps']} full-batch Adam steps (lr {s['probe_lr']}). Fine-tune: the "
        f"source's last layer on the raw frozen features, {s['finetune_steps']} full-batch Adam steps "
        f"(lr {s['finetune_lr']}). Snapshots of lrDecay and of the constant large LR at the same epochs."
    )


def target_datasets(settings: Mapping[str, Any], seed: int):
    """The target task of source seed ``seed``: (train, test) dicts with ``x``, ``y``, ``group`` (0: the
    source's easy pattern, 1: the new pattern)."""
    from lrdecay.data import pattern_dataset

    off = settings["target_center_offset"]
    out = []
    for split, n in (("train", settings["n_target_train"]), ("test", settings["n_target_test"])):
        halves = []
        for part, centres in ((0, seed), (1, seed + off)):
            n_part = n // 2 + (n % 2 if part == 0 else 0)
            ds = pattern_dataset(n_part, preset=settings["preset"], split=split, seed=seed + off + part,
                                 groups=["easy"], easy={"center_seed": centres})
            halves.append((ds.x, ds.y, np.full(n_part, part, np.int32)))
        x, y, g = (np.concatenate(a) for a in zip(*halves))
        out.append({"x": x, "y": y, "group": g, "n_classes": ds.n_classes})
    return out[0], out[1]


def _model_from(settings: Mapping[str, Any], state, in_features: int, n_classes: int):
    from lrdecay.models import make_model

    m = make_model(settings["model"], in_features=in_features, n_classes=n_classes, width=settings["width"],
                   depth=settings["depth"])
    m.load_state_dict(state)
    return m.eval()


def _features(model, x: np.ndarray):
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x))
    with torch.no_grad():
        return torch.cat([model.features(xt[i : i + 4096]) for i in range(0, len(xt), 4096)])


def _fit_linear(head, f, y, steps: int, lr: float):
    """Full-batch Adam on cross-entropy (deterministic given the initial head)."""
    import torch
    import torch.nn.functional as F

    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(head(f), y).backward()
        opt.step()
    return head


def _acc(head, f, y, mask=None) -> float:
    import torch

    with torch.no_grad():
        ok = (head(f).argmax(1) == y).numpy()
    return float(ok.mean() if mask is None else ok[mask].mean())


def transfer_scores(settings: Mapping[str, Any], model, train: Mapping, test: Mapping, seed: int, *,
                    features=None) -> dict:
    """Linear-probe and last-layer fine-tune target accuracies of one frozen model (overall, and per half
    when the target has ``group``: 0 the shared pattern, 1 the new one).

    ``features(model, x)`` gives the frozen model's penultimate activations of ``x`` as a CPU float tensor
    (default: of the float inputs as they are; real images pass one that normalizes them like the source's
    training data). The fine-tune starts from the source's last layer when the target has as many
    classes, else from a fresh layer seeded by ``seed``."""
    import torch
    from torch import nn

    feat = _features if features is None else features
    ftr, fte = feat(model, train["x"]), feat(model, test["x"])
    ytr, yte = torch.from_numpy(train["y"]), torch.from_numpy(test["y"])
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    k = train["n_classes"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = nn.Linear(ftr.shape[1], k)
    _fit_linear(probe, (ftr - mu) / sd, ytr, settings["probe_steps"], settings["probe_lr"])
    zte = (fte - mu) / sd
    ft = nn.Linear(ftr.shape[1], k)
    src = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    if tuple(src.weight.shape) == tuple(ft.weight.shape):
        with torch.no_grad():
            ft.weight.copy_(src.weight)
            ft.bias.copy_(src.bias)
    else:  # another number of classes: the source's head cannot be reused
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            ft = nn.Linear(ftr.shape[1], k)
    _fit_linear(ft, ftr, ytr, settings["finetune_steps"], settings["finetune_lr"])
    out = {"probe": _acc(probe, zte, yte), "finetune": _acc(ft, fte, yte)}
    if test.get("group") is not None:
        shared = test["group"] == 0
        out.update(probe_shared=_acc(probe, zte, yte, shared), probe_new=_acc(probe, zte, yte, ~shared),
                   finetune_shared=_acc(ft, fte, yte, shared), finetune_new=_acc(ft, fte, yte, ~shared))
    return out


def runs(settings: Mapping[str, Any], seed: int, done: Mapping) -> dict:
    """lrDecay and the constant large LR (base runs, with their snapshots); for a held-out class split of
    real images, the same runs on the source classes only."""
    return base.base_runs(source_settings(settings), seed, ("lrDecay", "large"))


def measure(settings: Mapping[str, Any], seed: int, runs: Mapping) -> dict:
    """Target scores of every snapshot of both runs, and the numbers the rule reads."""
    import torch

    snaps = base.snapshot_epochs(settings)
    e1, end = base.stage_ends(settings)[0], settings["epochs"]
    out: dict[str, Any] = {}
    prev = torch.get_num_threads()
    torch.set_num_threads(int(settings.get("threads") or prev))
    try:
        if settings.get("data") is not None:
            _measure_images(settings, seed, runs, snaps, out)
        else:
            train, test = target_datasets(settings, seed)
            for sched in ("lrDecay", "large"):
                run = runs[sched]
                for e in snaps:
                    model = _model_from(settings, run.snapshots[e], train["x"].shape[1], train["n_classes"])
                    for k, v in transfer_scores(settings, model, train, test, seed).items():
                        out[f"{k}_ep{e}_{sched}"] = v
                    out[f"source_test_ep{e}_{sched}"] = run.history[e - 1]["test"]["test"]["acc"]
    finally:
        torch.set_num_threads(prev)
    out.update(probe_stage1=out[f"probe_ep{e1}_lrDecay"], probe_final=out[f"probe_ep{end}_lrDecay"],
               probe_final_large=out[f"probe_ep{end}_large"], source_test_stage1=out[f"source_test_ep{e1}_lrDecay"],
               source_test_final=out[f"source_test_ep{end}_lrDecay"])
    return out


def present(settings, per_seed, runs_by_seed, out_dir):
    """Table per snapshot and run; target accuracy against the snapshot epoch."""
    snaps = base.snapshot_epochs(settings)
    e1, end = base.stage_ends(settings)[0], settings["epochs"]
    if settings.get("data") is None:
        cols = ("source_test", "probe", "probe_shared", "probe_new", "finetune", "finetune_shared", "finetune_new")
        headers = ["source test acc", "probe: target acc", "probe: shared easy", "probe: new pattern",
                   "fine-tune: target acc", "fine-tune: shared easy", "fine-tune: new pattern"]
    else:
        cols = ("source_test", "probe", "finetune")
        headers = ["source test acc", "probe: target acc", "fine-tune: target acc"]
    rows = [[sched, f"epoch {e}" + (" (end of stage 1)" if e == e1 else " (final)" if e == end else ""),
             *[fmt(stat(per_seed[f"{k}_ep{e}_{sched}"])) for k in cols]]
            for sched in ("lrDecay", "large") for e in snaps]
    table = {"headers": ["source run", "snapshot", *headers], "rows": rows}

    def curve(k, sched):
        st = [stat(per_seed[f"{k}_ep{e}_{sched}"]) for e in snaps]
        return {"mean": [s["mean"] for s in st], "std": [s["std"] for s in st]}

    curves = {f"{k} ({sched})": curve(k, sched) for k in ("source_test", "probe", "finetune")
              for sched in ("lrDecay", "large")}
    plots = []
    if out_dir is not None:
        sel = {k: v for k, v in curves.items() if not k.startswith("finetune")}
        plots.append(line_plot(f"{out_dir}/transfer.png", sel, x=snaps, xlabel="snapshot epoch", ylabel="accuracy",
                               title="C6: source test and target (linear probe) accuracy per snapshot",
                               vlines=[m + 0.5 for m in settings["milestones"]]))
    return table, curves, plots, []


# ============================================================================ real images
def prepare(settings: dict) -> dict:
    """Real images: settle ``transfer_target`` (``auto`` → the other CIFAR when ``data_dir`` holds it, else a
    held-out class split) and cap the target set sizes at what the target holds. A class split of fewer
    than 4 classes does not apply (2 on each side at least)."""
    from lrdecay.experiments import realdata
    from lrdecay.experiments.runner import NotApplicable

    if settings.get("data") is None:
        return settings
    data, root = settings["data"], settings.get("data_dir")
    target = settings.get("transfer_target", "auto")
    if target == "classes" and settings.get("classes") is not None:
        raise ValueError("transfer with transfer_target='classes' chooses the source classes itself; "
                         "do not set classes")
    if target not in TARGETS:
        raise ValueError(f"transfer_target must be one of {list(TARGETS)}, got {target!r}")
    if target == data:
        raise ValueError(f"transfer_target must be another label set than the source data {data!r}: "
                         f"{[t for t in TARGETS if t != data]}")
    if target == "auto":
        target = realdata.other_cifar(data, root) or "classes"
    if target == "classes":
        meta = realdata.info(data, root, settings.get("image_size", 32))
        if meta.n_classes < 4:
            raise NotApplicable(f"needs at least 4 classes for a held-out class split (2 for the source, 2 for "
                                f"the target); {meta.describe()}")
        _, held_out = realdata.class_split(meta.n_classes)
        n_train = sum(meta.train_per_class[c] for c in held_out)
        n_test = sum(meta.test_per_class[c] for c in held_out) if meta.test_per_class else 0
    else:
        if data not in ("cifar10", "cifar100"):
            raise ValueError(f"transfer_target={target!r} goes with data cifar10 or cifar100 (the other CIFAR from "
                             f"the same data_dir); for {data!r} use 'classes' or 'auto'")
        meta = realdata.info(target, root)  # not there: DatasetNotFoundError naming the layout
        n_train, n_test = meta.n_train, meta.n_test
    settings = {**settings, "transfer_target": target, "n_target_train": min(settings["n_target_train"], n_train),
                "n_target_test": min(settings["n_target_test"], n_test)}
    if target != "classes":  # the shared runs: their subset as every experiment has it
        return base.prepare_images(settings)
    # the class split's own runs: at most the source classes' images
    if settings.get("train_subset") is None:
        return settings
    own = base.prepare_images({**settings, "classes": source_settings(settings)["classes"]})
    return {**settings, "train_subset": own["train_subset"]}


def source_settings(settings: Mapping[str, Any]) -> Mapping[str, Any]:
    """The settings of the source runs: the base settings, restricted to the source classes for a held-out
    class split of real images."""
    if settings.get("data") is None or settings.get("transfer_target") != "classes":
        return settings
    from lrdecay.experiments import realdata

    meta = realdata.info(settings["data"], settings.get("data_dir"), settings.get("image_size", 32))
    return {**settings, "classes": realdata.class_split(meta.n_classes)[0]}


def target_images(settings: Mapping[str, Any], seed: int):
    """The target task of real images for source seed ``seed``: (train, test) dicts with uint8 ``x``,
    ``y``, ``n_classes`` and ``class_names`` (class-balanced subsets seeded by ``seed``)."""
    from lrdecay.experiments import realdata
    from lrdecay.data.load import load_images

    target, data, root = settings["transfer_target"], settings["data"], settings.get("data_dir")
    out = []
    for split, n in (("train", settings["n_target_train"]), ("test", settings["n_target_test"])):
        if target == "classes":
            kwargs = {"size": settings.get("image_size", 32)} if data == "folder" else {}
            ds = load_images(data, root, split, **kwargs)
            ds = ds.select_classes(realdata.class_split(ds.n_classes)[1])
        else:
            ds = load_images(target, root, split)
        if n < len(ds):
            ds = ds.balanced_subset(n, seed=seed)
        out.append({"x": ds.x, "y": ds.y, "n_classes": ds.n_classes, "class_names": ds.class_names})
    return out[0], out[1]


def _device(settings: Mapping[str, Any]):
    import torch

    name = settings.get("device") or "cpu"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def image_features(config, state, device, source=None):
    """``(model, features)`` for a snapshot ``state`` of the image run ``config``: the frozen model on
    ``device`` and ``features(model, x_uint8)``, its penultimate activations (CPU float32) of images
    normalized with the run's own training statistics, as the trainer fed them. ``source``: the run's
    training set when already loaded (``build_image_datasets(config)[0]``)."""
    import math

    import torch

    from lrdecay.data.augment import ImagePipeline
    from lrdecay.models import make_model
    from lrdecay.trainer.image_inputs import build_image_datasets

    if source is None:
        source = build_image_datasets(config.replace(progress=False))[0]
    shape = source.image_shape
    model = make_model(config.model, in_features=math.prod(shape), n_classes=source.n_classes, width=config.width,
                       depth=config.depth, activation=config.activation, batchnorm=config.batchnorm,
                       input_shape=shape)
    model.load_state_dict(state)
    model = model.to(device).eval()
    pipeline = ImagePipeline(source.mean, source.std, augment="none", device=device)

    def features(m, x):
        xt = torch.from_numpy(np.ascontiguousarray(x))
        with torch.no_grad():
            return torch.cat([m.features(pipeline.normalize(xt[i : i + 1024].to(device))).float().cpu()
                              for i in range(0, len(xt), 1024)])

    return model, features


def _measure_images(settings, seed, runs, snaps, out) -> None:
    from lrdecay.trainer.image_inputs import build_image_datasets

    train, test = target_images(settings, seed)
    device = _device(settings)
    for sched in ("lrDecay", "large"):
        run = runs[sched]
        source = build_image_datasets(run.config.replace(progress=False))[0]
        for e in snaps:
            model, features = image_features(run.config, run.snapshots[e], device, source)
            for k, v in transfer_scores(settings, model, train, test, seed, features=features).items():
                out[f"{k}_ep{e}_{sched}"] = v
            out[f"source_test_ep{e}_{sched}"] = run.history[e - 1]["test"]["test"]["acc"]


def _setup_images(s: Mapping[str, Any]) -> str:
    from lrdecay.experiments import realdata

    src = source_settings(s)
    if s["transfer_target"] == "classes":
        meta = realdata.info(s["data"], s.get("data_dir"), s.get("image_size", 32))
        a, b = realdata.class_split(meta.n_classes)
        names = lambda ids: ", ".join(meta.class_names[i] for i in ids)  # noqa: E731
        target = (
            f" Source runs (lrDecay and the constant large LR; their own runs) on the first {len(a)} classes only "
            f"({names(a)}), tested on those classes' test images. Target: the held-out classes ({names(b)}), "
            f"relabelled 0..{len(b) - 1}: images the source never saw, labels it never learned; shared with the "
            f"source is only the image domain."
        )
    else:
        target = (
            f" Source runs: the shared lrDecay and constant large LR runs. Target: {realdata.TITLES[s['transfer_target']]} "
            f"from the same folder, another label set on images of the same collection (80 Million Tiny Images, "
            f"mutually exclusive classes): shared is the image domain, not a class."
        )
    return base.describe(src) + target + (
        f" Target sets: class-balanced subsets of {s['n_target_train']:,} training / {s['n_target_test']:,} test "
        f"images. Frozen features: penultimate activations of the target images normalized with the source's "
        f"training statistics. Linear probe: fresh linear layer on standardized features, {s['probe_steps']} "
        f"full-batch Adam steps (lr {s['probe_lr']}). Fine-tune: the last layer on the raw features "
        f"(from the source's head when the target has as many classes, else a fresh one), "
        f"{s['finetune_steps']} full-batch Adam steps (lr {s['finetune_lr']}). Snapshots of lrDecay and of the "
        f"constant large LR at the same epochs."
    )


EXPERIMENT = Experiment(
    name="transfer", claim="C6", title="Later-stage patterns transfer worse",
    claim_text=("Features learned in later stages (after the decays) are more complex and less transferable: "
                "a related target task is solved better from an earlier snapshot, and worse after a decay than "
                "after the same epochs without one."),
    presets=PRESETS, options=OPTIONS, rule=RULE, judge=judge,
    verdict_keys=("probe_stage1", "probe_final", "probe_final_large", "source_test_stage1", "source_test_final"),
    runs=runs, measure=measure, present=present, setup=setup,
    applies_to=("patterns", "images"), image_presets=IMAGE_PRESETS, prepare=prepare,
)
