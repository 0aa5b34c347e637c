#!/usr/bin/env python
"""Run every GPU check of this folder on one machine and print one table.

    python gpu_checks/run_all.py                    # CUDA: every check, done within 8 minutes on an H200
    python gpu_checks/run_all.py --device cpu       # smoke test of every check on the CPU, tiny sizes
    python gpu_checks/run_all.py --only sgd,sweep   # some of them

Each check runs in a process of its own (a crash or a hang in one cannot take the others down) under a
time limit of its own. The limits share out ``--budget`` seconds (default 460 on CUDA, so a fresh machine
is done within 8 minutes whatever happens; a check that runs out of time is reported TIMEOUT, not waited
for). Each check's output is streamed with its name in front; at the end one table: name, status (ok, FAIL
when a check's own criterion failed, TIMEOUT, or ERROR with the exit status), seconds, key numbers. The
numbers come from the JSON each check writes to its ``$OUT`` folder; they and the table go to
``$OUT/run_all.json`` when ``$OUT`` is set. Exit status 0 when every check passed, else 1.

``lrdecay`` is imported from ``python/`` when its compiled extension is there (a checkout built with
``pip install -e .``, or a copied ``_native.abi3.so``), else from the installed package.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "python"

# name -> (script, share of the budget). The shares follow the expected H200 times (compiles and data
# generation included): sgd ~1.5 min, trainer ~1 min, sweep ~2 min, images ~2 min.
CHECKS = {
    "sgd": ("check_sgd.py", 110),
    "trainer": ("check_trainer.py", 80),
    "sweep": ("check_sweep.py", 130),
    "images": ("check_images.py", 140),
}
CUDA_BUDGET_S = 460  # under 8 minutes with the interpreter starts and the table
CPU_BUDGET_S = 1200  # the smoke test on a small shared CPU machine


def _fmt(x, spec=".3g", unit=""):
    return "-" if x is None else f"{x:{spec}}{unit}"


def key_numbers(name: str, res: dict | None) -> str:
    """The numbers of one check that the table shows (its JSON has the rest)."""
    if not res:
        return "no results"
    if name == "sgd":
        sets = res.get("us_per_step", {})
        graph = next((k for k in sets.get("resnet56", {}) if k.endswith("graph")), None)
        eager = next((k for k in sets.get("resnet56", {}) if k.endswith("eager")), None)
        r56 = sets.get("resnet56", {}).get(graph or eager)
        parts = [f"parity rel err {_fmt(res.get('parity_max_rel_err'), '.1e')}",
                 f"copy {_fmt(res.get('copy_TBps'), '.2f', ' TB/s')}",
                 f"ResNet-56 step {_fmt(r56, '.1f', ' us')} ({'graph' if graph else 'eager'})"]
        flat = sets.get("flat256M", {})
        fg = next((v for k, v in flat.items() if k.endswith("graph")), None)
        if fg and res.get("copy_TBps"):
            parts.append(f"256M at {20 * (256 << 20) / (fg * 1e-6) / 1e12 / res['copy_TBps']:.0%} of copy")
        return "; ".join(parts)
    if name == "trainer":
        p, t = res.get("parity", {}), res.get("timing", {})
        return (f"graph==eager {'bitwise' if p.get('params_bitwise_equal') else _fmt(p.get('params_max_abs_diff'), '.1e')}; "
                f"graph {_fmt(t.get('trainer_graph_s'), '.4f', ' s/epoch')} (target 0.06); "
                f"{_fmt(t.get('speedup_graph_vs_plain'), '.1f', 'x')} the plain loop")
    if name == "sweep":
        p, ph = res.get("parity", {}), res.get("parity_host", {})
        t, o = res.get("throughput", {}), res.get("optimizer", {})
        diff = max((v for v in p.get("max_abs_diff", {}).values()), default=None)
        return (f"stacked==solo {'bitwise' if p.get('bitwise') and ph.get('bitwise') else _fmt(diff, '.1e')}; "
                f"{_fmt(t.get('speedup_vs_sequential'), '.1f', 'x')} sequential (target 10x); "
                f"StackedSGD {_fmt(o.get('fraction_of_copy'), '.0%')} of copy")
    if name == "images":
        ps, t = res.get("parity", []), res.get("timing", {})
        best = "trainer_graph_cl_bf16_s" if "trainer_graph_cl_bf16_s" in t else "trainer_graph_s"
        speed = t.get(best.replace("_s", "_speedup_vs_dataloader"))
        return (f"graph==eager {sum(bool(p.get('ok')) for p in ps)}/{len(ps)}; "
                f"{best[:-2]} {_fmt(t.get(best), '.3f', ' s/epoch')}, {_fmt(speed, '.1f', 'x')} the DataLoader loop")
    return ""


def run_one(name: str, script: str, device: str, limit_s: float, out_dir: Path, env: dict) -> dict:
    """Runs one check under ``limit_s``, streaming its output line by line with ``[name]`` in front."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-u", str(HERE / script), "--device", device]
    t0 = time.perf_counter()
    # a session of its own, so a timeout ends the check's worker processes (DataLoader, compilers) too
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**env, "OUT": str(out_dir)}, start_new_session=True)
    timed_out = False

    def kill():
        nonlocal timed_out
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(limit_s, kill)
    timer.start()
    try:
        for line in proc.stdout:
            print(f"[{name}] {line}", end="", flush=True)
        rc = proc.wait()
    finally:
        timer.cancel()
    seconds = time.perf_counter() - t0
    res_path = out_dir / f"check_{name}.json"
    res = json.loads(res_path.read_text()) if res_path.exists() else None
    status = "TIMEOUT" if timed_out else "ok" if rc == 0 else "FAIL" if rc == 1 else f"ERROR {rc}"
    return {"name": name, "status": status, "seconds": seconds, "limit_s": limit_s, "rc": rc,
            "numbers": key_numbers(name, res), "results": res}


def table(rows: list[dict]) -> str:
    """The summary table, one line per check."""
    lines = [f"{'check':<9}{'status':<10}{'time':>8}  key numbers", "-" * 100]
    for r in rows:
        lines.append(f"{r['name']:<9}{r['status']:<10}{r['seconds']:>7.1f}s  {r['numbers']}")
    lines.append(f"{'total':<19}{sum(r['seconds'] for r in rows):>7.1f}s")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                    help="cuda (default) or cpu (the smoke test of every check, tiny sizes)")
    ap.add_argument("--only", default=None, help=f"comma-separated checks among {', '.join(CHECKS)} (default: all)")
    ap.add_argument("--budget", type=float, default=None,
                    help=f"seconds for all checks together (default {CUDA_BUDGET_S} on cuda, {CPU_BUDGET_S} on cpu)")
    args = ap.parse_args(argv)
    names = list(CHECKS) if args.only is None else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in CHECKS]
    if unknown or not names:
        ap.error(f"--only: unknown check(s) {', '.join(unknown) or '(none given)'}; choose among {', '.join(CHECKS)}")
    budget = args.budget if args.budget is not None else CUDA_BUDGET_S if args.device == "cuda" else CPU_BUDGET_S
    if budget <= 0:
        ap.error(f"--budget must be a positive number of seconds, got {args.budget}")

    env = dict(os.environ)
    if any(SOURCE.joinpath("lrdecay").glob("_native*.so")):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE), env.get("PYTHONPATH")]))
        where = f"{SOURCE} (source tree)"
    else:
        where = "the installed package"
    print(f"gpu_checks: {', '.join(names)} on {args.device}, {budget:.0f} s in all; lrdecay from {where}", flush=True)

    out = os.environ.get("OUT")
    shares = {n: CHECKS[n][1] for n in names}
    rows = []
    deadline = time.perf_counter() + budget
    with tempfile.TemporaryDirectory(prefix="gpu_checks-") as tmp:
        for i, n in enumerate(names):
            left = deadline - time.perf_counter()
            # its share of what is left, so time a check did not use goes to the ones after it
            limit = max(1.0, left * shares[n] / sum(shares[m] for m in names[i:]))
            rows.append(run_one(n, CHECKS[n][0], args.device, limit, Path(tmp) / n, env))
    print("\n" + table(rows), flush=True)
    if out:
        with open(os.path.join(out, "run_all.json"), "w") as f:
            json.dump({"device": args.device, "budget_s": budget, "checks": rows}, f, indent=2)
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
