"""The claim map: every claim's verdict and effect size over a grid of settings, on pilot seeds, and two
pre-registered picks from it (``docs/regime/PREREGISTRATION.md``, the file ``preregistered/claims.toml``).

For each grid point, all seven experiments run with the ``quick`` preset's settings, the point's axes
replacing its data, regularization and stage lengths; every distinct run is trained once for the whole map
(:func:`lrdecay.experiments.runner.train_requests`, resumable through ``OUT/runs/``). Each experiment's
own ``measure`` and ``judge`` give, per point and seed, the claim's rule outcome; :data:`EFFECTS` turns its
numbers into one main effect size and the excess over its rule (the rule's statistic minus its threshold,
the minimum over the rule's conditions). Nothing here decides a verdict the report would not.

Phase 1 runs every point on the pilot seed; phase 2 runs the candidates of both picks on the confirm seeds:

- *paper-like*: the premise and the paper's picture of the training curves (:func:`paper_like`), judged
  on the base runs alone, no claim's verdict;
- *claims-best*: the most claims supported on every pilot seed (an existence test: "is there a regime
  where the paper's account holds?").

``lrdecay regime --claims`` runs it; :func:`run_map` is the function behind it.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Callable, Mapping, Sequence

from lrdecay.experiments import NAMES, get
from lrdecay.experiments import base
from lrdecay.experiments import prereg as _prereg
from lrdecay.experiments.common import SUPPORTED, log
from lrdecay.experiments.options import RunOptions
from lrdecay.experiments.regime import cost_s, grid_points
from lrdecay.experiments.regime_outputs import setting_id
from lrdecay.experiments.runner import plan_experiments, run_key, train_requests

__all__ = ["PREREGISTRATION", "CLAIMS", "EFFECTS", "effects", "paper_like", "base_numbers", "point_settings",
           "map_rows", "phase2_candidates", "select", "run_map", "RUNS_DIR"]

#: The claim map's pre-registration (grid, seeds, the picks' numbers), read from the packaged file.
PREREGISTRATION = _prereg.packaged("claims")
#: claim id -> experiment name, in report order.
CLAIMS = {claim: name for name, claim in NAMES.items()}
RUNS_DIR = "runs"
NEG = -math.inf


def _none(*values) -> bool:
    return any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values)


# ---------------------------------------------------------------------------------- effect sizes
def _c1(n):
    from lrdecay.experiments.stages import MIN_JUMP, MIN_RATIO

    j, r, c = n.get("jump_acc_decay1"), n.get("ratio_acc_decay1"), n.get("ratio_acc_control1")
    if _none(j, r, c):
        return None, NEG
    return r, min(j - MIN_JUMP, r - MIN_RATIO, r - c)


def _c2(n):
    from lrdecay.experiments.gd import GD_MAX, SGD_MIN

    s, g = n.get("ratio_sgd1"), n.get("ratio_gd1")
    if _none(s, g):
        return None, NEG
    return s - g, (min(s - SGD_MIN, GD_MAX - g) if n.get("valid") else NEG)


def _c3(n):
    from lrdecay.experiments.beliefs import FIT_TOL, GEN_MARGIN

    keys = ("early_loss_small", "early_loss_large", "final_train_acc_small", "final_train_acc_lrDecay",
            "final_test_acc_small", "final_test_acc_large", "final_test_acc_lrDecay")
    if _none(*(n.get(k) for k in keys)):
        return None, NEG
    ex = min(n["early_loss_large"] - n["early_loss_small"],
             n["final_train_acc_small"] - (n["final_train_acc_lrDecay"] - FIT_TOL),
             n["final_test_acc_lrDecay"] - n["final_test_acc_small"] - GEN_MARGIN,
             n["final_test_acc_lrDecay"] - n["final_test_acc_large"] - GEN_MARGIN)
    return ex, ex


def _c4(n):
    from lrdecay.experiments.memorization import MARGIN, RISE

    d, s, f = n.get("mem_eval_stage1_lrDecay"), n.get("mem_eval_stage1_small"), n.get("mem_eval_final_lrDecay")
    if _none(d, s, f):
        return None, NEG
    return s - d, min(s - d - MARGIN, f - d - RISE)


def _c5(n):
    from lrdecay.experiments.complexity import COMPLEX_GAIN, CONTROL_MARGIN, EASY_FRACTION

    keys = ("chance", "easy_e1", "easy_final", "complex_e1", "complex_e2", "complex_final", "complex_e2_large")
    if _none(*(n.get(k) for k in keys)):
        return None, NEG
    ch, e1, ef, c1, c2, cf, l2 = (n[k] for k in keys)

    def share(a, f):
        return (a - ch) / (f - ch) if f - ch > 1e-9 else 1.0

    return c2 - l2, min((e1 - ch) - EASY_FRACTION * (ef - ch), c2 - c1 - COMPLEX_GAIN, c2 - l2 - CONTROL_MARGIN,
                        share(e1, ef) - share(c1, cf))


def _c6(n):
    from lrdecay.experiments.transfer import MARGIN

    keys = ("probe_stage1", "probe_final", "probe_final_large", "source_test_stage1", "source_test_final")
    if _none(*(n.get(k) for k in keys)):
        return None, NEG
    p1, pf, pl, s1, sf = (n[k] for k in keys)
    return p1 - pf, min(p1 - pf - MARGIN, sf - s1, pl - pf - MARGIN)


def _epochs_saved(arm: str) -> Callable:
    def effect(n):
        fixed, got = n.get("epochs_to_target_fixed"), n.get(f"epochs_to_target_{arm}")
        if fixed is None:
            return None, NEG
        saved = fixed - (got if got is not None else n.get("epochs", fixed) + 1)
        return saved, (saved if got is not None else NEG)
    return effect


#: claim -> (main effect in words, ``numbers of one seed -> (main effect, excess over the rule)``). The
#: excess is the rule's statistic minus its threshold, the minimum over the rule's conditions, in the rule's
#: units (−inf when a number is missing or the seed is invalid); it is > 0 (≥ 0 for C3 (a)) where the rule's
#: support condition holds. ``C7 val`` is AutoDecay on the validation error, judged by C7's rule.
EFFECTS: dict[str, tuple[str, Callable]] = {
    "C1": ("sharpness ratio of train accuracy at the first decay", _c1),
    "C2": ("SGD's sharpness ratio − GD's", _c2),
    "C3": ("smallest margin of the four sub-claims", _c3),
    "C4": ("memorized fraction at the end of stage 1: small LR − lrDecay", _c4),
    "C5": ("complex-pattern probe accuracy after the second stage: lrDecay − large LR", _c5),
    "C6": ("linear-probe accuracy: end-of-stage-1 snapshot − final", _c6),
    "C7": ("epochs to target saved by AutoDecay (training loss)", _epochs_saved("auto")),
    "C7 val": ("epochs to target saved by AutoDecay (validation error)", _epochs_saved("auto_val")),
}


def effects(claim: str, numbers: Mapping[str, Any]) -> tuple[float | None, float]:
    """``(main effect, excess over the rule)`` of ``claim`` from one seed's numbers."""
    return EFFECTS[claim][1](numbers)


# ---------------------------------------------------------------------------------- the paper's picture
def base_numbers(settings: Mapping[str, Any], runs: Mapping[str, Any],
                 pre: _prereg.Preregistration = PREREGISTRATION) -> dict[str, Any]:
    """From one seed's base runs (``{"lrDecay", "large", "small": RunOutput}``): the test accuracies the
    premise and :func:`paper_like` read. ``D_T``, ``L_T``, ``S_T`` at the last epoch; ``D_m1`` and
    ``D_m1_minus`` at the first milestone and ``level_epochs`` before it; ``Dtr_m1`` lrDecay's eval-mode
    training accuracy on the clean labels at the first milestone."""
    from lrdecay.experiments.common import at_epoch, series

    def test(run):
        return series(run.history, lambda r: r["test"]["test"]["acc"])

    T = settings["epochs"]
    m1 = base.stage_ends(settings)[0]
    back, chance = int(pre.criterion["level_epochs"]), float(pre.criterion["chance"])
    d = test(runs["lrDecay"])
    clean = series(runs["lrDecay"].history, lambda r: r["train_eval"].get("acc_clean", r["train_eval"]["acc"]))
    out = {"D_T": at_epoch(d, T), "L_T": at_epoch(test(runs["large"]), T), "S_T": at_epoch(test(runs["small"]), T),
           "D_m1": at_epoch(d, m1), "D_m1_minus": at_epoch(d, m1 - back), "Dtr_m1": at_epoch(clean, m1),
           "chance": chance}
    if not _none(out["D_T"], out["L_T"], out["S_T"]):
        out["margin"] = min(out["D_T"] - out["L_T"], out["D_T"] - out["S_T"])
    return out


def paper_like(b: Mapping[str, Any], pre: _prereg.Preregistration = PREREGISTRATION) -> dict[str, bool]:
    """The paper-like rule's conditions on one seed's :func:`base_numbers`: ``premise`` (1), ``plateau``
    (2: trained above chance, half the final gain by the first milestone, levelled off), ``large_ok`` (3)
    and ``all``."""
    c = pre.criterion
    ch = float(c["chance"])
    if _none(*(b.get(k) for k in ("D_T", "L_T", "S_T", "D_m1", "D_m1_minus", "Dtr_m1"))):
        return {"premise": False, "plateau": False, "large_ok": False, "all": False}
    premise = b["margin"] >= float(c["premise_margin"])
    plateau = (b["Dtr_m1"] >= ch + float(c["plateau_train_share"]) * (1 - ch)
               and b["D_m1"] - ch >= float(c["stage1_gain_share"]) * (b["D_T"] - ch)
               and abs(b["D_m1"] - b["D_m1_minus"]) <= float(c["level_tolerance"]))
    large_ok = b["L_T"] - ch >= float(c["large_gain_share"]) * (b["D_T"] - ch)
    return {"premise": premise, "plateau": plateau, "large_ok": large_ok, "all": premise and plateau and large_ok}


# ---------------------------------------------------------------------------------- the grid's runs
def point_settings(point: Mapping[str, Any], pre: _prereg.Preregistration = PREREGISTRATION) -> dict[str, Any]:
    """The settings changes of one grid point: the fixed settings, the point's axes, its stage option."""
    return {**pre.fixed, **{k: v for k, v in point.items() if k != "stages"},
            **{k: (list(v) if isinstance(v, list) else v) for k, v in pre.stages[point["stages"]].items()}}


def _plan(point: Mapping[str, Any], seeds: Sequence[int], pre: _prereg.Preregistration):
    """The point's experiments, planned on the pre-registration's experiments preset (the point's settings
    as overrides; each experiment gets the keys it accepts)."""
    from lrdecay.experiments.runner import _config_fields

    exps = [get(name) for name in CLAIMS.values()]
    preset = str(pre.raw.get("experiments_preset", "quick"))
    changes = point_settings(point, pre)
    fields = _config_fields()
    overrides = {e.name: {k: v for k, v in changes.items() if k in fields or k in e.presets[preset] or k in e.options}
                 for e in exps}
    return plan_experiments(exps, RunOptions(preset=preset, seeds=list(seeds), overrides=overrides, progress=False))


def map_rows(out_dir: str, points: Sequence[Mapping[str, Any]], seeds: Sequence[int], *, workers: int = 2,
             progress: bool = True, pre: _prereg.Preregistration = PREREGISTRATION) -> list[dict]:
    """Train what ``points`` × ``seeds`` need (runs already in ``out_dir/runs/`` are read back) and return one
    row per (point, seed): the axes, ``setting``, ``seed``, the base numbers and paper-like conditions, and
    per claim its rule outcome (``<claim>``: supported / not supported / inconclusive / does not apply), main
    effect (``<claim> effect``) and excess (``<claim> excess``)."""
    plans = {setting_id(p): (p, _plan(p, seeds, pre)) for p in points}
    jobs = {(sid, e.name): (e, plan.settings[e.name]) for sid, (_p, plan) in plans.items() for e in plan.runnable}
    outputs, keys = train_requests(jobs, run_dir=os.path.join(out_dir, RUNS_DIR),
                                   executor="process" if workers > 1 else "stack", workers=workers, progress=progress)
    rows = []
    for sid, (point, plan) in plans.items():
        stages_settings = plan.settings["stages"]
        for seed in seeds:
            base_runs = {s: outputs[run_key(c)] for s, c in base.base_runs(stages_settings, seed).items()}
            b = base_numbers(stages_settings, base_runs, pre)
            row: dict[str, Any] = {**point, "setting": sid, "seed": seed, "cost_s": cost_s(point, pre), **b}
            row.update({f"paper_like_{k}": v for k, v in paper_like(b, pre).items()})
            for claim, name in CLAIMS.items():
                if name in plan.skipped:
                    row[claim], row[f"{claim} effect"], row[f"{claim} excess"] = "does not apply", None, NEG
                    continue
                e, s = get(name), plan.settings[name]
                runs = {label: outputs[k] for label, k in keys[((sid, name), seed)].items()}
                numbers = e.measure(s, seed, runs)
                row[claim] = e.judge({k: [v] for k, v in numbers.items()}).status
                row[f"{claim} effect"], row[f"{claim} excess"] = effects(claim, {**numbers, "epochs": s["epochs"]})
                if claim == "C7":
                    from lrdecay.experiments.autodecay import rule_status

                    row["C7 val"] = rule_status([numbers["epochs_to_target_auto_val"]],
                                                [numbers["epochs_to_target_fixed"]])[0]
                    row["C7 val effect"], row["C7 val excess"] = effects("C7 val", {**numbers, "epochs": s["epochs"]})
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------- the picks
COUNTED = tuple(CLAIMS)  # the seven claims (C7 by its verdict's arm); ``C7 val`` is reported beside them


def _supported(row) -> list[str]:
    return [c for c in COUNTED if row.get(c) == SUPPORTED]


def _claims_key(row) -> tuple:
    """Claims-best order of one seed's row (phase-2 candidates): more supported claims, then the larger
    minimum excess over them."""
    sup = _supported(row)
    return (len(sup), min((row[f"{c} excess"] for c in sup), default=NEG))


def phase2_candidates(rows: Sequence[Mapping[str, Any]], pre: _prereg.Preregistration = PREREGISTRATION
                      ) -> dict[str, list[str]]:
    """The settings phase 2 trains on the confirm seeds, from the pilot seed's rows, within the cost limit:
    ``paper_like`` (meeting the paper-like rule, the ``n_confirm`` largest margins) and ``claims_best``
    (at least one claim supported; the ``n_confirm`` best by number of claims supported, then minimum
    excess, then cost)."""
    n, limit = int(pre.criterion["n_confirm"]), float(pre.criterion["cost_limit_s"])
    first = [r for r in rows if r["seed"] in pre.pilot_seeds and r["cost_s"] <= limit]
    pl = sorted((r for r in first if r["paper_like_all"]), key=lambda r: (-r["margin"], r["cost_s"], r["setting"]))
    cb = sorted((r for r in first if _supported(r)),
                key=lambda r: (-_claims_key(r)[0], -_claims_key(r)[1], r["cost_s"], r["setting"]))
    return {"paper_like": [r["setting"] for r in pl[:n]], "claims_best": [r["setting"] for r in cb[:n]]}


def _by_setting(rows, seeds) -> dict[str, list[Mapping]]:
    by: dict[str, list] = {}
    for r in rows:
        if r["seed"] in seeds:
            by.setdefault(r["setting"], []).append(r)
    return {s: rs for s, rs in by.items() if sorted(r["seed"] for r in rs) == sorted(seeds)}


def select(rows: Sequence[Mapping[str, Any]], pre: _prereg.Preregistration = PREREGISTRATION) -> dict[str, Any]:
    """Both picks from the rows of the three pilot seeds (None when no setting qualifies), with the ranked
    settings that were trained on all of them."""
    seeds = list(pre.all_pilot_seeds)
    tol, limit = float(pre.criterion["tie_tolerance"]), float(pre.criterion["cost_limit_s"])
    full = {s: rs for s, rs in _by_setting(rows, seeds).items() if rs[0]["cost_s"] <= limit}

    def best(scored):  # [(score, cost, setting)] -> the largest score, ties within tol: the cheaper
        if not scored:
            return None
        top = max(sc for sc, _c, _s in scored)
        return min((c, s) for sc, c, s in scored if sc >= top - tol)[1]

    pl = [(min(r["margin"] for r in rs), rs[0]["cost_s"], s) for s, rs in full.items()
          if all(r["paper_like_all"] for r in rs)]
    counted = {s: [c for c in COUNTED if all(r.get(c) == SUPPORTED for r in rs)] for s, rs in full.items()}
    most = max((len(c) for c in counted.values()), default=0)
    cb = [(min(r[f"{c} excess"] for r in full[s] for c in cs), full[s][0]["cost_s"], s)
          for s, cs in counted.items() if cs and len(cs) == most]
    ranking = sorted(({"setting": s, "claims_supported_on_all_seeds": counted[s],
                       "min_margin": min(r["margin"] for r in rs),
                       "paper_like_on_all_seeds": all(r["paper_like_all"] for r in rs)} for s, rs in full.items()),
                     key=lambda d: (-len(d["claims_supported_on_all_seeds"]), -d["min_margin"]))
    return {"paperlike": best(pl), "claimsbest": best(cb), "claims_counted": most, "seeds": seeds,
            "ranking": ranking}


# ---------------------------------------------------------------------------------- the command
def run_map(out_dir: str, *, workers: int = 2, phases: Sequence[int] = (1, 2), progress: bool = True,
            pre: _prereg.Preregistration = PREREGISTRATION) -> dict[str, Any]:
    """Run the claim map under ``pre`` (resumable: finished runs in ``out_dir/runs/`` are read back) and
    write ``claims.csv``, ``selection.json``, one heatmap per claim, ``holds.png`` and ``CLAIMS_TABLES.md``
    into ``out_dir``. Returns the selection (with the phase-2 candidates)."""
    from lrdecay._atomic import atomic_write
    from lrdecay.experiments import claim_map_outputs as outputs

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    if pre.name != "claims" and "width" not in pre.grid:
        raise _prereg.PreregistrationError(f"{pre.path}: not a claim map's pre-registration (no grid.width)")
    pre.check_search_seeds((*pre.pilot_seeds, *pre.confirm_seeds))
    points = grid_points(pre.grid)
    by_id = {setting_id(p): p for p in points}
    log(f"claim map: {len(points)} settings on pilot seed(s) {list(pre.pilot_seeds)}, under the {pre.describe()}")
    rows = map_rows(out_dir, points, pre.pilot_seeds, workers=workers, progress=progress, pre=pre)
    cands = phase2_candidates(rows, pre)
    confirm = [by_id[s] for s in dict.fromkeys(cands["paper_like"] + cands["claims_best"])]
    if 2 in phases and confirm and pre.confirm_seeds:
        log(f"claim map phase 2: {len(confirm)} candidate settings on pilot seeds {list(pre.confirm_seeds)}")
        rows += map_rows(out_dir, confirm, pre.confirm_seeds, workers=workers, progress=progress, pre=pre)
    sel = {**select(rows, pre), "phase2_candidates": cands, "preregistration": pre.to_meta()}
    os.makedirs(out_dir, exist_ok=True)
    words = {claim: w for claim, (w, _fn) in EFFECTS.items()}
    outputs.write_csv(rows, os.path.join(out_dir, "claims.csv"), pre, words)
    outputs.claim_maps(rows, out_dir, pre, words, COUNTED)
    outputs.paper_like_map(rows, os.path.join(out_dir, "paper_like.png"), pre)
    with atomic_write(os.path.join(out_dir, "selection.json"), "w", encoding="utf-8") as f:
        json.dump(sel, f, indent=1, default=str)
    outputs.write_tables(rows, sel, os.path.join(out_dir, "CLAIMS_TABLES.md"), pre, words, COUNTED)
    return sel


# ---------------------------------------------------------------------------------- reports side by side
def verdict_effects(results: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per claim of a reproduction's ``results.json`` (its ``experiments``): the verdict and the main effect
    of :data:`EFFECTS` per seed and its mean over the seeds that have it (``C7 val``: AutoDecay on the
    validation error by C7's rule, when the report has that arm). For the README's table of regimes."""
    exps = results.get("experiments", results)
    out: dict[str, dict[str, Any]] = {}
    for claim, name in CLAIMS.items():
        r = exps.get(name)
        if r is None:
            continue
        status = r["verdict"]["status"]
        per_seed, seeds = r.get("per_seed") or {}, r.get("seeds") or []
        rows = [{k: v[i] for k, v in per_seed.items() if i < len(v)} for i in range(len(seeds))]
        epochs = (r.get("settings") or {}).get("epochs")
        targets = [claim] + (["C7 val"] if claim == "C7" and "epochs_to_target_auto_val" in per_seed else [])
        for c in targets:
            effects_ = [effects(c, {**row, "epochs": epochs})[0] for row in rows] if status != "does not apply" else []
            have = [e for e in effects_ if e is not None]
            out[c] = {"status": status if c == claim else r["verdict"]["details"].get("auto_val_by_the_same_rule"),
                      "effects": effects_, "effect": sum(have) / len(have) if have else None}
    return out
