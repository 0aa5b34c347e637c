"""Every Triton kernel variant the code can launch compiles for sm_80 and sm_90, without a GPU,
so a kernel that would not build on a GPU fails here.

The compiling runs in a subprocess (tests/kernels/aot_compile.py): this folder's conftest runs Triton in
its interpreter, which cannot compile. By default it compiles a covering subset (each schedule and each
optimizer configuration, each dtype, the launcher's argument specializations); with LRDECAY_AOT_ALL=1 (and
in CI, which runs the script with --all) every variant."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")

pytestmark = pytest.mark.slow  # compiles every kernel variant: tens of seconds

import lrdecay.kernels.sgd_step as K  # noqa: E402
from lrdecay import schedules as S  # noqa: E402
from lrdecay.optim import FusedSGD  # noqa: E402

SCRIPT = Path(__file__).with_name("aot_compile.py")


def _env(cache: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = cache  # a fresh cache: really compile
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # silences a Triton 3.9 notice; the kernel sets its own
    return env


@pytest.fixture
def cache_dir():
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    with tempfile.TemporaryDirectory(dir=base, prefix="lrdecay-triton-") as d:
        yield d


def test_launch_variants_are_what_the_optimizer_launches(monkeypatch):
    """launch_variants() is the set the AOT check compiles: every real launch must be in it."""
    launched = []
    real = K._sgd_step_kernel

    class Spy:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                consts = {k: v for k, v in kwargs.items() if k.isupper()}
                launched.append((str(args[0].dtype), consts))
                return real[grid](*args, **kwargs)
            return launch

    monkeypatch.setattr(K, "_sgd_step_kernel", Spy())
    variants = {(str(d), json.dumps(c, sort_keys=True)) for d, c in K.launch_variants()}
    assert len(variants) == 4 * 5 * 2 * 2 * 13  # dtypes x momentum configs x wd x maximize x schedule configs
    schedules = [None, S.Constant(), S.Warmup(2, S.Step(3, 0.5)), S.Cosine(4)]
    for dtype in (torch.float32, torch.float64, torch.float16):
        for i, sched in enumerate(schedules):
            p = torch.ones(5, dtype=dtype, requires_grad=True)
            kw = [dict(momentum=0.9, nesterov=True), dict(momentum=0.0, maximize=True), dict(momentum=0.5, weight_decay=0.1), {}][i]
            opt = FusedSGD([p], lr=0.1, schedule=sched, backend="triton", **kw)
            for _ in range(2):
                p.grad.fill_(1.0)
                opt.step()
    assert len(launched) == 24
    for dtype, consts in launched:
        assert (dtype, json.dumps(consts, sort_keys=True)) in variants, (dtype, consts)


def test_every_kernel_variant_compiles_for_sm80_and_sm90(cache_dir):
    sys.path.insert(0, str(SCRIPT.parent))
    import aot_compile

    everything = os.environ.get("LRDECAY_AOT_ALL") == "1"
    args = [sys.executable, str(SCRIPT), "--targets", "80,90"] + (["--all"] if everything else [])
    r = subprocess.run(args, env=_env(cache_dir), capture_output=True, text=True, timeout=3000)
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["failed"] == 0
    assert summary["compiled"] == len(aot_compile.jobs([80, 90], everything)) >= 80


def test_the_compile_check_fails_for_a_kernel_that_cannot_build(cache_dir):
    # float8 parameters: no fp8 conversions on sm_80. FusedSGD refuses them; the compiler must too.
    code = (
        "import sys; sys.path.insert(0, %r)\n"
        "import aot_compile as a, lrdecay.kernels.sgd_step as K, torch\n"
        "a._TYPE['torch.float8_e4m3fn'] = 'fp8e4nv'\n"
        "c = K.constexprs(torch.float32, momentum=0.9, weight_decay=0.0, nesterov=False, maximize=False,"
        " first_step=False, kind=0, warmup=False, increment=False)\n"
        "print(a._compile((80, 'torch.float8_e4m3fn', c, ''))[0], a._compile((90, 'torch.float32', c, ''))[0])\n"
    ) % str(SCRIPT.parent)
    r = subprocess.run([sys.executable, "-c", code], env=_env(cache_dir), capture_output=True, text=True, timeout=600)
    assert r.stdout.split() == ["False", "True"], r.stdout + r.stderr[-3000:]
    with pytest.raises(TypeError, match="float8"):
        FusedSGD([torch.zeros(2, dtype=torch.float8_e4m3fn, requires_grad=True)], lr=0.1, backend="triton")
