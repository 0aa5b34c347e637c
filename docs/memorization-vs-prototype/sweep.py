"""Run named variants one after another (one training process at a time, one thread), appending each run's
RESULT to a JSONL file; runs already in the file are skipped, so the sweep resumes.

    python docs/memorization-vs-prototype/sweep.py --out results/proxy20k.jsonl --n-train 20000 \
        --seeds 500 501 --variants package proto-pkgdata proto blank-zero
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

#: name -> (script, extra args). "proto" = the plain re-implementation with the package's construction.
VARIANTS = {
    "package": ("package_run.py", []),
    "package-depth2": ("package_run.py", ["--depth", "2"]),
    "package-torchsgd": ("package_run.py", ["--optimizer", "torch"]),
    "proto-pkgdata": ("proto.py", ["--data", "package"]),
    "proto": ("proto.py", []),
    "blank-zero": ("proto.py", ["--blank", "zero"]),
    "blank-unit": ("proto.py", ["--blank", "unit"]),
    "flips-uniform": ("proto.py", ["--flips", "uniform"]),
    "groups-random": ("proto.py", ["--groups", "random"]),
    "wd-no-bn": ("proto.py", ["--wd-no-bn"]),
    "bias": ("proto.py", ["--bias"]),
    "fused": ("proto.py", ["--opt", "fused"]),
    "mid": ("proto.py", ["--lr", "0.01", "--milestones"]),
    "small": ("proto.py", ["--lr", "0.001", "--milestones"]),
    "large": ("proto.py", ["--milestones"]),
    "bn-post": ("proto.py", ["--bn-pos", "post"]),
    "order-fixed": ("proto.py", ["--order", "fixed"]),
    "order-once": ("proto.py", ["--order", "once"]),
    "reset-momentum": ("proto.py", ["--reset-momentum"]),
    "l2-in-loss": ("proto.py", ["--l2-in-loss"]),
    "wd-1e-3": ("proto.py", ["--wd", "1e-3"]),
    "depth2": ("proto.py", ["--depth", "2"]),
    "depth2-mid": ("proto.py", ["--depth", "2", "--lr", "0.01", "--milestones"]),
    "depth2-large": ("proto.py", ["--depth", "2", "--milestones"]),
    "depth2-small": ("proto.py", ["--depth", "2", "--lr", "0.001", "--milestones"]),
    "bn-frozen-after10": ("proto.py", ["--bn-frozen-after", "10"]),
    "blank-zero+flips-uniform": ("proto.py", ["--blank", "zero", "--flips", "uniform"]),
    "blank-zero+flips-uniform+bias": ("proto.py", ["--blank", "zero", "--flips", "uniform", "--bias"]),
}


def done(path):
    seen = set()
    if os.path.exists(path):
        for line in open(path):
            r = json.loads(line)
            seen.add((r["variant"], r["seed"], r["n_train"]))
    return seen


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n-train", type=int, default=20_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[500])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    a = ap.parse_args(argv)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    for seed in a.seeds:
        for v in a.variants:
            if (v, seed, a.n_train) in done(a.out):
                continue
            script, extra = VARIANTS[v]
            cmd = [sys.executable, os.path.join(HERE, script), "--seed", str(seed), "--n-train", str(a.n_train), *extra]
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1",
                                                                              "RAYON_NUM_THREADS": "1"})
            if proc.returncode:
                sys.exit(f"{v} seed {seed} failed:\n{proc.stderr[-3000:]}")
            res = json.loads(next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))[7:])
            ep = res["epochs"]
            row = {"variant": v, "seed": seed, "n_train": a.n_train, "wall": round(res["wall"], 1), "epochs": ep}
            with open(a.out, "a") as f:
                f.write(json.dumps(row) + "\n")
            m = " ".join(f"{k}:{ep[k]['inep']:.3f}/{ep[k]['eval']:.3f}" for k in ("10", "20", "30") if k in ep)
            print(f"{v:32s} seed {seed} n {a.n_train}  inep/eval {m}  test {ep['30']['test']:.3f}  "
                  f"{res['wall']:.0f}s", flush=True)


if __name__ == "__main__":
    main()
