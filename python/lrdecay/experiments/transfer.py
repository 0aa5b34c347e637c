"""C6: patterns learned in later stages are more complex and less transferable.

Source: the lrDecay base run; model snapshots mid stage 1 and at every stage end. Target task: the source's
easy pattern (same centres, same labels) and a complex pattern with new centres; samples of both in equal
parts, no label noise. For each snapshot (frozen): a linear probe (a fresh linear layer on standardized
penultimate features) and a fine-tune of the source's last layer on the raw features, both trained on the
target training set; we report source test accuracy and target test accuracy (overall, on easy-pattern and
on new-complex samples).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lrdecay.experiments import base
from lrdecay.experiments.common import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    RunCache,
    Verdict,
    all_seeds,
    finish_result,
    fmt,
    line_plot,
    log,
    prepare,
    stat,
    torch_threads,
)

NAME = "transfer"
CLAIM = "C6"
TITLE = "Later-stage patterns transfer worse"
CLAIM_TEXT = (
    "Features learned in later stages (after the decays) are more complex and less transferable: "
    "a related target task is solved better from an earlier checkpoint."
)

_TARGET = {"target_center_offset": 1_000_003, "probe_steps": 300, "probe_lr": 0.05, "finetune_steps": 300,
           "finetune_lr": 0.01}
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {**base.BASE_PRESETS["tiny"], **_TARGET, "n_target_train": 400, "n_target_test": 200,
             "probe_steps": 60, "finetune_steps": 60},
    "quick": {**base.BASE_PRESETS["quick"], **_TARGET, "n_target_train": 5_000, "n_target_test": 2_000},
    "full": {**base.BASE_PRESETS["full"], **_TARGET, "n_target_train": 20_000, "n_target_test": 10_000},
}

# Fixed before any result was seen.
MARGIN = 0.01
RULE = (
    "Linear probe, on every seed: the target test accuracy from the final checkpoint is at least "
    f"{MARGIN} lower than from the end-of-stage-1 checkpoint, while the source test accuracy of the final "
    "checkpoint is at least that of the end-of-stage-1 one → supported. Not supported if, on every seed, the "
    "final checkpoint's target accuracy is ≥ the end-of-stage-1 one's. Otherwise inconclusive."
)


def judge(numbers: Mapping[str, Sequence[float]]) -> Verdict:
    """Apply :data:`RULE` to per-seed ``probe_target_stage1``, ``probe_target_final``,
    ``source_test_stage1``, ``source_test_final``."""
    p1, pf = numbers["probe_target_stage1"], numbers["probe_target_final"]
    s1, sf = numbers["source_test_stage1"], numbers["source_test_final"]
    support = [b <= a - MARGIN and d >= c for a, b, c, d in zip(p1, pf, s1, sf)]
    against = [b >= a for a, b in zip(p1, pf)]
    status = SUPPORTED if all_seeds(support) else NOT_SUPPORTED if all_seeds(against) else INCONCLUSIVE
    return Verdict(status, RULE, {"later_transfers_worse": support, "later_transfers_no_worse": against})


def setup_text(settings: Mapping[str, Any]) -> str:
    """The setup paragraph of the report section for these settings."""
    s = settings
    return base.describe(s) + (
        f" Target task: the source's easy pattern (same centres and labels) plus a complex pattern with new "
        f"centres, {s['n_target_train']:,} training / {s['n_target_test']:,} test samples, no label noise. Linear "
        f"probe: fresh linear layer on standardized frozen features, {s['probe_steps']} full-batch Adam steps "
        f"(lr {s['probe_lr']}). Fine-tune: the source's last layer on the raw frozen features, "
        f"{s['finetune_steps']} full-batch Adam steps (lr {s['finetune_lr']})."
    )


def target_datasets(settings: Mapping[str, Any], seed: int):
    """The target task of source seed ``seed``: (train, test) pattern datasets."""
    from lrdecay.data import PRESETS as DATA_PRESETS
    from lrdecay.data import pattern_dataset

    spec = DATA_PRESETS[settings["preset"]]
    names = [p["name"] for p in spec["patterns"]]
    easy, complex_ = names[0], names[1]
    groups = [{"name": easy, "patterns": [easy], "weight": 1.0},
              {"name": "new_" + complex_, "patterns": [complex_], "weight": 1.0}]
    kw = {easy: {"center_seed": seed},  # same centres as the source (its centres come from its seed)
          complex_: {"center_seed": seed + settings["target_center_offset"]}}
    tseed = seed + settings["target_center_offset"]  # other samples than the source's
    train = pattern_dataset(settings["n_target_train"], preset=settings["preset"], split="train", seed=tseed,
                            groups=groups, **kw)
    test = pattern_dataset(settings["n_target_test"], preset=settings["preset"], split="test", seed=tseed,
                           groups=groups, **kw)
    return train, test


def _model_from(settings: Mapping[str, Any], state: Mapping[str, torch.Tensor], in_features: int, n_classes: int):
    from lrdecay.models import make_model

    m = make_model(settings["model"], in_features=in_features, n_classes=n_classes, width=settings["width"],
                   depth=settings["depth"])
    m.load_state_dict(state)
    return m.eval()


def _last_linear(model: nn.Module) -> nn.Linear:
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


@torch.no_grad()
def _features(model: nn.Module, x: np.ndarray) -> torch.Tensor:
    xt = torch.from_numpy(np.ascontiguousarray(x))
    return torch.cat([model.features(xt[i : i + 4096]) for i in range(0, len(xt), 4096)])


def _fit_linear(head: nn.Linear, f: torch.Tensor, y: torch.Tensor, steps: int, lr: float, seed: int) -> nn.Linear:
    """Full-batch Adam on cross-entropy (deterministic given the initial head)."""
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(head(f), y).backward()
        opt.step()
    return head


@torch.no_grad()
def _acc(head: nn.Linear, f: torch.Tensor, y: torch.Tensor, mask: np.ndarray | None = None) -> float:
    pred = head(f).argmax(1)
    ok = (pred == y).numpy()
    return float(ok.mean() if mask is None else ok[mask].mean())


def transfer_scores(settings: Mapping[str, Any], model: nn.Module, train, test, seed: int) -> dict:
    """Linear-probe and last-layer fine-tune target accuracies of one frozen model."""
    ftr, fte = _features(model, train.x), _features(model, test.x)
    ytr, yte = torch.from_numpy(train.y), torch.from_numpy(test.y)
    easy_mask = test.group == 0
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = nn.Linear(ftr.shape[1], train.n_classes)
    _fit_linear(probe, (ftr - mu) / sd, ytr, settings["probe_steps"], settings["probe_lr"], seed)
    zte = (fte - mu) / sd
    ft = nn.Linear(ftr.shape[1], train.n_classes)
    src = _last_linear(model)
    with torch.no_grad():
        ft.weight.copy_(src.weight)
        ft.bias.copy_(src.bias)
    _fit_linear(ft, ftr, ytr, settings["finetune_steps"], settings["finetune_lr"], seed)
    return {
        "probe": _acc(probe, zte, yte), "probe_easy": _acc(probe, zte, yte, easy_mask),
        "probe_complex": _acc(probe, zte, yte, ~easy_mask),
        "finetune": _acc(ft, fte, yte), "finetune_easy": _acc(ft, fte, yte, easy_mask),
        "finetune_complex": _acc(ft, fte, yte, ~easy_mask),
    }


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
    snaps = base.snapshot_epochs(settings)
    e1, end = settings["milestones"][0], settings["epochs"]
    log(f"[{NAME}] preset {preset}, seeds {seeds}")
    per_seed: dict[str, list] = {}
    with torch_threads(settings.get("threads")):
        for seed in seeds:
            out = base.schedule_run(settings, "lrDecay", seed, cache=cache, device=device)
            train, test = target_datasets(settings, seed)
            for e in snaps:
                model = _model_from(settings, out.snapshots[e], train.x.shape[1], train.n_classes)
                sc = transfer_scores(settings, model, train, test, seed)
                for k, v in sc.items():
                    per_seed.setdefault(f"{k}_ep{e}", []).append(v)
                per_seed.setdefault(f"source_test_ep{e}", []).append(out.history[e - 1]["test"]["test"]["acc"])
            log(f"  transfer seed {seed}: probe target acc " + ", ".join(
                f"ep {e} {per_seed[f'probe_ep{e}'][-1]:.3f}" for e in snaps))
            per_seed.setdefault("probe_target_stage1", []).append(per_seed[f"probe_ep{e1}"][-1])
            per_seed.setdefault("probe_target_final", []).append(per_seed[f"probe_ep{end}"][-1])
            per_seed.setdefault("source_test_stage1", []).append(per_seed[f"source_test_ep{e1}"][-1])
            per_seed.setdefault("source_test_final", []).append(per_seed[f"source_test_ep{end}"][-1])
    verdict = judge(per_seed)
    rows = [[f"epoch {e}" + (" (end of stage 1)" if e == e1 else " (final)" if e == end else ""),
             *[fmt(stat(per_seed[f"{k}_ep{e}"])) for k in
               ("source_test", "probe", "probe_easy", "probe_complex", "finetune", "finetune_easy", "finetune_complex")]]
            for e in snaps]
    table = {"headers": ["checkpoint", "source test acc", "probe: target acc", "probe: easy", "probe: new complex",
                         "fine-tune: target acc", "fine-tune: easy", "fine-tune: new complex"], "rows": rows}
    curves = {k: {"x": snaps, **(lambda s: {"mean": [s[e]["mean"] for e in snaps], "std": [s[e]["std"] for e in snaps]})(
        {e: stat(per_seed[f"{k}_ep{e}"]) for e in snaps})} for k in ("source_test", "probe", "finetune")}
    plots = []
    if out_dir is not None:
        plots.append(line_plot(f"{out_dir}/transfer.png", {
            "source test acc": curves["source_test"], "target acc (linear probe)": curves["probe"],
            "target acc (fine-tune last layer)": curves["finetune"]}, x=snaps, xlabel="checkpoint epoch",
            ylabel="accuracy", title="C6: source vs target accuracy per checkpoint",
            vlines=[m + 0.5 for m in settings["milestones"]]))
    return finish_result(
        sys.modules[__name__], preset=preset, settings=settings, seeds=seeds, per_seed=per_seed, table=table,
        curves=curves, verdict=verdict, plots=plots, t0=t0,
    )
