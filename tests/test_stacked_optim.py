"""StackedSGD (backend "torch", the CPU path): each member bit-equal to its own torch.optim.SGD."""

from __future__ import annotations

import io

import pytest
import torch

from support import stacked_parity as P
from lrdecay import schedules as S
from lrdecay.optim import StackedSGD

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_every_member_combination_and_schedule_bitwise_equal_to_torch_sgd():
    # 13 members: every hyperparameter combination, every schedule form, a host-set LR changed mid-run
    assert P.run_parity("torch", 13, steps=12, host_lr_at=5) == 0.0


@pytest.mark.parametrize("members", [1, 2])
def test_one_and_two_members(members):
    assert P.run_parity("torch", members, steps=5, seed=members) == 0.0


def test_float64_params_use_the_torch_path():
    g = torch.Generator().manual_seed(3)
    base = torch.randn(3, 9, generator=g, dtype=torch.float64)
    p = base.clone().requires_grad_()
    opt = StackedSGD([p], 3, lr=[0.1, 0.2, 0.3], momentum=0.9, weight_decay=[0, 1e-2, 0], nesterov=[False, False, True])
    refs = [base[m].clone().requires_grad_() for m in range(3)]
    ropts = [torch.optim.SGD([refs[m]], lr=[0.1, 0.2, 0.3][m], momentum=0.9, weight_decay=[0, 1e-2, 0][m],
                             nesterov=[False, False, True][m]) for m in range(3)]
    for _ in range(4):
        gr = torch.randn(3, 9, generator=g, dtype=torch.float64)
        p.grad.copy_(gr)
        opt.step()
        for m in range(3):
            refs[m].grad = gr[m].clone()
            ropts[m].step()
    for m in range(3):
        torch.testing.assert_close(p.detach()[m], refs[m].detach(), rtol=1e-15, atol=0)


def test_state_dict_round_trip_resumes_exactly():
    stacked, opt, refs = P.make("torch", 5)
    gen = torch.Generator().manual_seed(9)
    for t in range(3):
        P.feed(stacked, opt, refs, gen, t)
    opt.set_lr(1, 0.007)
    refs[1][3] = 0.007
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "p": [p.detach().clone() for p in stacked]}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    # a fresh optimizer over fresh tensors, restored, continues like the reference
    fresh = [p.clone().requires_grad_() for p in saved["p"]]
    opt2 = StackedSGD(fresh, 5, lr=[0.05 + 0.02 * m for m in range(5)],
                      momentum=[P.MEMBER_COMBOS[m]["momentum"] for m in range(5)],
                      dampening=[P.MEMBER_COMBOS[m]["dampening"] for m in range(5)],
                      nesterov=[P.MEMBER_COMBOS[m]["nesterov"] for m in range(5)],
                      weight_decay=[P.MEMBER_COMBOS[m]["weight_decay"] for m in range(5)],
                      schedules=[P.SCHEDULES[m] for m in range(5)])
    opt2.load_state_dict(saved["opt"])
    assert opt2.step_count == 3 and opt2.member_lrs() == opt.member_lrs()
    for t in range(3, 8):
        P.feed(fresh, opt2, refs, gen, t)
    assert P.max_rel_err(fresh, opt2, refs) == 0.0


def test_params_are_views_of_one_flat_buffer():
    p1, p2 = torch.zeros(3, 4, 5, requires_grad=True), torch.zeros(3, 2, requires_grad=True)
    opt = StackedSGD([p1, p2], 3, lr=0.1)
    assert p1.is_contiguous() and p2.is_contiguous()
    assert p1.data_ptr() == opt.flat_p.data_ptr()
    assert p2.data_ptr() == opt.flat_p.data_ptr() + 3 * 20 * 4
    assert p1.grad.data_ptr() == opt.flat_g.data_ptr()


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(lr=[0.1, 0.2]), ValueError, "lr must be a scalar or a sequence of 3"),
        (dict(lr=0.1, momentum=[0.9, -1.0, 0.0]), ValueError, "member 1: Invalid momentum"),
        (dict(lr=0.1, nesterov=[True, False, False]), ValueError, "member 0: Nesterov"),
        (dict(lr=0.1, nesterov=[1, 0, 0]), TypeError, r"nesterov\[0\] must be a bool"),
        (dict(lr=0.1, schedules=[S.Constant()]), ValueError, "schedules must have 3 entries"),
        (dict(lr=0.1, schedules=["cosine", None, None]), TypeError, r"schedules\[0\] must be"),
        (dict(lr=float("nan")), ValueError, "member 0: lr must be a finite number, got nan"),
        (dict(lr=0.1, backend="cuda"), ValueError, "backend must be one of"),
    ],
)
def test_bad_arguments_raise_naming_them(kwargs, exc, match):
    p = torch.zeros(3, 4, requires_grad=True)
    before = p.detach().clone()
    with pytest.raises(exc, match=match):
        StackedSGD([p], 3, **kwargs)
    assert torch.equal(p.detach(), before) and p.data_ptr() == p.data_ptr()


def test_bad_params_raise():
    with pytest.raises(ValueError, match="members on dim 0"):
        StackedSGD([torch.zeros(2, 4)], 3, lr=0.1)
    with pytest.raises(TypeError, match="floating-point"):
        StackedSGD([torch.zeros(3, 4, dtype=torch.int64)], 3, lr=0.1)
    with pytest.raises(ValueError, match="one device with one dtype"):
        StackedSGD([torch.zeros(3, 4), torch.zeros(3, 4, dtype=torch.float64)], 3, lr=0.1)
    with pytest.raises(ValueError, match="members must be an int >= 1"):
        StackedSGD([torch.zeros(3, 4)], 0, lr=0.1)


def test_set_lr_refuses_members_with_a_device_schedule():
    opt = StackedSGD([torch.zeros(2, 3, requires_grad=True)], 2, lr=0.1, schedules=[S.Constant(), None])
    with pytest.raises(ValueError, match="member 0 has a device schedule"):
        opt.set_lr(0, 0.5)
    opt.set_lr(1, 0.5)
    assert opt.member_lrs() == [0.1, 0.5]


@pytest.mark.slow
def test_the_stacked_kernel_compiles_for_a_gpu_target():
    # No GPU here: compile the kernel to PTX for sm_90 in a fresh interpreter (not under TRITON_INTERPRET).
    import os
    import subprocess
    import sys

    pytest.importorskip("triton")
    code = r"""
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from lrdecay.kernels.stacked_sgd_step import _stacked_sgd_kernel
sig = {"p_ptr": "*fp32", "g_ptr": "*fp32", "m_ptr": "*fp32", "tiles_ptr": "*i64", "n_tiles": "i32",
       "hyper_ptr": "*fp32", "flags_ptr": "*i32", "meta_ptr": "*i64", "si_ptr": "*i64", "sf_ptr": "*fp64",
       "step_ptr": "*i64", "arrive_ptr": "*i32", "BLOCK": "constexpr", "FIRST_STEP": "constexpr",
       "ANY_MOMENTUM": "constexpr"}
for first in (True, False):
    for anym in (True, False):
        src = ASTSource(fn=_stacked_sgd_kernel, signature=sig,
                        constexprs={"BLOCK": 1024, "FIRST_STEP": first, "ANY_MOMENTUM": anym})
        k = triton.compile(src, target=GPUTarget("cuda", 90, 32))
        assert ".entry" in k.asm["ptx"]
print("compiled")
"""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_DEFAULT_FP_FUSION"] = "1"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    if r.returncode != 0 and ("ASTSource" in r.stderr or "GPUTarget" in r.stderr) and "ImportError" in r.stderr:
        pytest.skip("this triton version has no ASTSource/GPUTarget compile API")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "compiled" in r.stdout
