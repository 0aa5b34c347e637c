"""Compile lrdecay's Triton kernels ahead of time for GPU targets, without a GPU (``triton.compile`` with a
``GPUTarget``: Triton's front end, its MLIR passes, LLVM and ``ptxas``, down to a cubin).

    python tests/kernels/aot_compile.py [--all] [--targets 80,90] [--workers N]

Every (dtype, constexprs) variant :func:`lrdecay.kernels.sgd_step.launch_variants` says the code can
launch is compiled with ``--all`` (what CI runs); without it, a covering subset: per target, every schedule
configuration and every momentum / weight-decay / Nesterov / maximize configuration at least once, and
every dtype with and without a schedule.
Then, per target (and dtype, with ``--all``; float32 without), the argument specializations the
launcher makes on its own: 16-byte aligned pointers and sizes, a size of exactly 1 (a constant), zero
hyperparameters (32-bit ints), a size of 2**31 or more (64-bit). Prints one line per failure and a summary as JSON; exit status 1 on any failure.
Run in its own process: ``TRITON_INTERPRET`` must be unset.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor

_TYPE = {"torch.float32": "fp32", "torch.float64": "fp64", "torch.float16": "fp16", "torch.bfloat16": "bf16"}
_PTRS = ("p_ptr", "g_ptr", "m_ptr", "step_ptr", "arrive_ptr", "si_ptr", "sf_ptr")
_BITS = ("lr_bits", "momentum_bits", "omd_bits", "wd_bits")


def _signature(dtype: str, consts: dict, special: str) -> tuple[dict, dict, dict]:
    """(signature, constexprs, attrs) of one launch, as the launcher would specialize it."""
    t = _TYPE[dtype]
    scheduled = consts["KIND"] != 0
    sig = {
        "p_ptr": f"*{t}", "g_ptr": f"*{t}", "m_ptr": f"*{t}",
        "n_elements": "i64" if special == "n>=2**31" else "i32",
        **{b: ("i32" if special == "zero hyperparameters" else "i64") for b in _BITS},
        # without a schedule the launcher passes the parameter buffer for the unused counter pointers
        "step_ptr": "*i64" if scheduled else f"*{t}",
        "arrive_ptr": "*i32" if scheduled else f"*{t}",
        "si_ptr": "*i64" if scheduled else f"*{t}",
        "sf_ptr": "*fp64" if scheduled else f"*{t}",
    }
    constexprs = dict(consts)
    if special == "n=1":
        sig["n_elements"] = "constexpr"
        constexprs["n_elements"] = 1
    for k in consts:
        sig[k] = "constexpr"
    attrs = {}
    if special == "aligned":
        from lrdecay.kernels.sgd_step import _sgd_step_kernel

        names = _sgd_step_kernel.arg_names
        attrs = {(names.index(a),): [["tt.divisibility", 16]] for a in (*_PTRS, "n_elements")}
    return sig, constexprs, attrs


def _compile(job: tuple[int, str, dict, str]) -> tuple[bool, str]:
    arch, dtype, consts, special = job
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from lrdecay.kernels.sgd_step import _COMPILE_OPTIONS, _sgd_step_kernel

    sig, constexprs, attrs = _signature(dtype, consts, special)
    what = f"sm_{arch} {dtype} {special or ''} {consts}"
    try:
        src = ASTSource(fn=_sgd_step_kernel, signature=sig, constexprs=constexprs, attrs=attrs)
        k = triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": 4, **_COMPILE_OPTIONS})
        if not k.asm.get("cubin"):
            return False, f"{what}: no cubin"
    except Exception:
        return False, f"{what}: {traceback.format_exc(limit=3)}"
    return True, what


def jobs(targets: list[int], everything: bool) -> list[tuple[int, str, dict, str]]:
    """The compilations to run (see the module docstring)."""
    from lrdecay.kernels.sgd_step import launch_variants

    variants = [(str(d), c) for d, c in launch_variants()]
    by_dtype = {d: [c for dd, c in variants if dd == d] for d in _TYPE}
    if everything:
        chosen = variants
    else:
        # Greedy cover, the dtypes taken in turn: a variant is kept when it brings a schedule
        # configuration, an optimizer configuration or a (dtype, scheduled) pair not seen yet.
        def keys(d, c):
            return {("schedule", c["KIND"], c["WARMUP"], c["INCREMENT"]),
                    ("optimizer", *(c[k] for k in ("HAS_WD", "HAS_MOMENTUM", "FIRST_STEP", "NESTEROV", "MAXIMIZE"))),
                    ("dtype", d, c["KIND"] != 0)}

        interleaved = [(d, cs[i]) for i in range(max(map(len, by_dtype.values())))
                       for d, cs in by_dtype.items() if i < len(cs)]
        seen: set = set()
        chosen = []
        for d, c in interleaved:
            k = keys(d, c)
            if not k <= seen:
                chosen.append((d, c))
                seen |= k
    out = []
    for arch in targets:
        out += [(arch, d, c, "") for d, c in chosen]
        for d, cs in by_dtype.items():
            if not everything and d != "torch.float32":
                continue
            base = cs[-1]  # momentum, weight decay, a schedule: the most code
            out += [(arch, d, base, s) for s in ("aligned", "n=1", "zero hyperparameters", "n>=2**31")]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="every variant the code can launch")
    ap.add_argument("--targets", default="80,90", help="compute capabilities (default: 80,90)")
    ap.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    args = ap.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        print("TRITON_INTERPRET=1 is set: unset it to compile", file=sys.stderr)
        return 2
    todo = jobs([int(t) for t in args.targets.split(",")], args.all)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(_compile, todo, chunksize=8))
    failures = [msg for ok, msg in results if not ok]
    for msg in failures:
        print("FAILED", msg)
    print(json.dumps({"compiled": len(results) - len(failures), "failed": len(failures), "targets": args.targets,
                      "all": args.all, "seconds": round(time.perf_counter() - t0, 1)}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
