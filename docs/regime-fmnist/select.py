"""The pick of the pre-registered Fashion-MNIST search (PREREGISTRATION.md), from the sweeps' tables.

    python docs/regime-fmnist/select.py SWEEP_DIR [SWEEP_DIR ...] [--phase2-specs DIR]

Reads each sweep folder's ``sweep.json`` (every run's config) and ``table.csv`` (every run's epochs), checks
that every run is a run the pre-registration allows (its fixed settings, a grid point, a pilot seed, one of
the three schedules), applies the criterion with the numbers of
``python/lrdecay/experiments/preregistered/fashion-mnist.toml`` and writes, next to this file,
``selection.json`` (every setting's numbers per seed, what passed, the pick) and ``MAP.md`` (the same as
tables). With ``--phase2-specs DIR`` it also writes the phase-2 sweep specs (one per candidate) into DIR.
No claim's verdict is read: only test and training accuracies of the lrDecay, large and small runs.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from itertools import product

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEDULES = {"lrDecay": "multistep", "large": "constant", "small": "constant"}


def load_prereg():
    from lrdecay.experiments import prereg

    return prereg.packaged("fashion-mnist")


def read_sweep(folder: str):
    """[(run manifest entry, {epoch: row})] of one sweep folder."""
    with open(os.path.join(folder, "sweep.json")) as f:
        manifest = json.load(f)
    rows: dict[str, dict[int, dict]] = {}
    with open(os.path.join(folder, "table.csv"), newline="") as f:
        for row in csv.DictReader(f):
            rows.setdefault(row["run_id"], {})[int(row["epoch"])] = row
    return [(r, rows.get(r["id"], {})) for r in manifest["runs"]]


def check_run(run: dict, pre) -> tuple:
    """The run's grid point (in grid order), or SystemExit naming what breaks the pre-registration."""
    cfg = run["config"]
    stage = next(iter(pre.stages.values()))
    want = dict(pre.fixed)
    lr_small = want.pop("lr_small")
    want.update(epochs=stage["epochs"], milestones=list(stage["milestones"]))
    if run["setting"] == "small":
        want["lr"] = lr_small
    if run["setting"] not in SCHEDULES or cfg["schedule"] != SCHEDULES[run["setting"]]:
        sys.exit(f"run {run['id']}: setting {run['setting']!r} / schedule {cfg['schedule']!r} is not one of {SCHEDULES}")
    for k, v in want.items():
        if k == "milestones" and cfg["schedule"] == "constant":
            continue
        if cfg.get(k) != v:
            sys.exit(f"run {run['id']}: {k} = {cfg.get(k)!r}, the pre-registration fixes {v!r}")
    point = tuple(cfg[k] for k in pre.grid)
    if point not in set(product(*pre.grid.values())):
        sys.exit(f"run {run['id']}: {dict(zip(pre.grid, point))} is not a grid point")
    if run["seed"] not in pre.all_pilot_seeds:
        sys.exit(f"run {run['id']}: seed {run['seed']} is not a pilot seed {pre.all_pilot_seeds}")
    return point


def numbers(runs: dict, pre) -> dict | None:
    """The criterion's numbers for one setting and seed from its three runs (None if one is missing)."""
    c = pre.criterion
    stage = next(iter(pre.stages.values()))
    last, m1 = stage["epochs"], stage["milestones"][0]
    if any(s not in runs or last not in runs[s] for s in SCHEDULES):
        return None
    acc = {s: float(runs[s][last]["test.test.acc"]) for s in SCHEDULES}
    d = runs["lrDecay"]
    stage1 = float(d[m1]["test.test.acc"])
    window = [float(d[e]["train_acc"]) for e in range(m1 - c["plateau_epochs"] + 1, m1 + 1)]
    loss_ok = all(math.isfinite(float(r[last]["train_loss"])) for r in runs.values())
    out = {
        "final_test": acc,
        "margin": acc["lrDecay"] - max(acc["large"], acc["small"]),
        "stage1_test": stage1,
        "stage1_train_window": window,
        "plateau_range": max(window) - min(window),
        "finite_loss": loss_ok,
    }
    out["premise"] = out["margin"] >= c["premise_margin"]
    out["picture"] = bool(stage1 >= c["stage1_min_test_acc"] and out["plateau_range"] <= c["plateau_max_range"]
                          and acc["large"] >= c["large_min_test_acc"] and loss_ok)
    out["passes"] = out["premise"] and out["picture"]
    return out


def cost_key(point: tuple, pre) -> tuple:
    """Cheaper first: smaller training subset, then grid order."""
    names = list(pre.grid)
    order = tuple(list(pre.grid[k]).index(v) for k, v in zip(names, point))
    return (point[names.index("train_subset")], order)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sweeps", nargs="+")
    ap.add_argument("--phase2-specs", default=None)
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args(argv)
    pre = load_prereg()
    c = pre.criterion
    by: dict[tuple, dict[int, dict[str, dict]]] = {}
    for folder in args.sweeps:
        for run, epochs in read_sweep(folder):
            point = check_run(run, pre)
            by.setdefault(point, {}).setdefault(run["seed"], {})[run["setting"]] = epochs
    names = list(pre.grid)
    table = []
    for point in product(*pre.grid.values()):
        seeds = {s: numbers(r, pre) for s, r in sorted(by.get(point, {}).items())}
        seeds = {s: v for s, v in seeds.items() if v is not None}
        table.append({"setting": dict(zip(names, point)), "point": point, "seeds": seeds})
    pilot = pre.pilot_seeds[0]
    phase1 = [t for t in table if pilot in t["seeds"]]
    if len(phase1) != len(table):
        missing = [t["setting"] for t in table if pilot not in t["seeds"]]
        print(f"phase 1 is incomplete: no complete runs for {missing}", file=sys.stderr)
    passing1 = sorted((t for t in phase1 if t["seeds"][pilot]["passes"]),
                      key=lambda t: (-t["seeds"][pilot]["margin"], cost_key(t["point"], pre)))
    candidates = passing1[: c["confirm_top"]]
    confirm_seeds = list(pre.confirm_seeds)
    phase2_ran = bool(confirm_seeds) and all(all(s in t["seeds"] for s in confirm_seeds) for t in candidates) \
        and bool(candidates)

    def min_margin(t, seeds):
        return min(t["seeds"][s]["margin"] for s in seeds)

    pick, rule = None, None
    if candidates:
        seeds = [pilot, *confirm_seeds] if phase2_ran else [pilot]
        pool = [t for t in (candidates if phase2_ran else passing1) if all(t["seeds"][s]["passes"] for s in seeds)]
        if pool:
            best = max(min_margin(t, seeds) for t in pool)
            tied = [t for t in pool if min_margin(t, seeds) >= best - c["tie"]]
            pick = min(tied, key=lambda t: cost_key(t["point"], pre))
            rule = (f"passes premise and picture on seeds {seeds}; the largest minimum margin "
                    f"({min_margin(pick, seeds):+.4f}; ties within {c['tie']}: the cheaper)")
    if pick is None:  # the pre-registered fallbacks: the picture alone, then the largest margin
        pool = [t for t in phase1 if t["seeds"][pilot]["picture"]]
        why = "no setting passes the premise and the picture on every seed it ran"
        if pool:
            rule = f"{why}: FALLBACK 1, the largest margin on seed {pilot} among settings that show the picture"
        else:
            pool, rule = phase1, f"{why} and none shows the picture: FALLBACK 2, the largest margin on seed {pilot}"
        pick = max(pool, key=lambda t: (t["seeds"][pilot]["margin"], [-x for x in cost_key(t["point"], pre)[1]]))
    result = {
        "preregistration": pre.to_meta(),
        "grid": {k: list(v) for k, v in pre.grid.items()},
        "phase1_seed": pilot,
        "phase2_seeds": confirm_seeds if phase2_ran else [],
        "phase2_ran": phase2_ran,
        "candidates": [t["setting"] for t in candidates],
        "pick": pick["setting"] if pick else None,
        "rule": rule,
        "settings": [{"setting": t["setting"], "seeds": {str(s): v for s, v in t["seeds"].items()}} for t in table],
    }
    with open(os.path.join(args.out, "selection.json"), "w") as f:
        json.dump(result, f, indent=1)
    write_map(result, pre, os.path.join(args.out, "MAP.md"))
    if args.phase2_specs and candidates and not phase2_ran:
        os.makedirs(args.phase2_specs, exist_ok=True)
        for i, t in enumerate(candidates):
            write_phase2_spec(os.path.join(args.phase2_specs, f"phase2-{i + 1}.toml"), t["setting"], confirm_seeds)
    print(json.dumps({"candidates": result["candidates"], "pick": result["pick"], "rule": rule}, indent=1))
    return 0


def write_phase2_spec(path: str, setting: dict, seeds: list[int]) -> None:
    """The phase-1 spec with the grid narrowed to one setting and the confirmation seeds."""
    with open(os.path.join(HERE, "search.toml")) as f:
        text = f.read()
    head, _, tail = text.partition("[grid]")
    tail = tail[tail.index("[[settings]]"):]
    grid = "[grid]\n" + "".join(f"{k} = [{v}]\n" for k, v in setting.items()) + "\n"
    head = head.replace('name = "fmnist-search-phase1"', 'name = "fmnist-search-phase2"')
    head = head.replace("seeds = [1000]", f"seeds = {seeds}")
    with open(path, "w") as f:
        f.write(head + grid + tail)


def write_map(result: dict, pre, path: str) -> None:
    c = pre.criterion
    lines = ["# The Fashion-MNIST search: the map and the pick", "",
             "Written by `docs/regime-fmnist/select.py` from the sweeps' tables, under the pre-registration "
             f"`{result['preregistration']['file']}` (sha256 `{result['preregistration']['sha256']}`). "
             "Final = epoch 20; stage 1 = epochs 1-10 (LR 0.1). Test set: the 10,000 Fashion-MNIST test images.",
             "", f"Criterion: premise margin = lrDecay − max(large, small) ≥ {c['premise_margin']}; picture = "
             f"lrDecay's stage-1 test accuracy ≥ {c['stage1_min_test_acc']}, its training-mode accuracy over "
             f"epochs {10 - c['plateau_epochs'] + 1}-10 spanning ≤ {c['plateau_max_range']}, the constant large "
             f"LR's final test accuracy ≥ {c['large_min_test_acc']}, finite losses.", "",
             "| label_noise | train_subset | weight_decay | seed | lrDecay | large | small | margin | stage-1 test "
             "| stage-1 train span | premise | picture |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in result["settings"]:
        s = t["setting"]
        for seed, v in t["seeds"].items():
            a = v["final_test"]
            lines.append(f"| {s['label_noise']} | {s['train_subset']} | {s['weight_decay']} | {seed} | "
                         f"{a['lrDecay']:.4f} | {a['large']:.4f} | {a['small']:.4f} | {v['margin']:+.4f} | "
                         f"{v['stage1_test']:.4f} | {v['plateau_range']:.4f} | {'yes' if v['premise'] else 'no'} | "
                         f"{'yes' if v['picture'] else 'no'} |")
    lines += ["", f"Phase-2 candidates: {result['candidates'] or 'none'}; phase 2 ran: {result['phase2_ran']} "
              f"(seeds {result['phase2_seeds']}).", "", f"**Pick**: {result['pick']}", "", f"Rule applied: {result['rule']}.", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
