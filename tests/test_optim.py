"""FusedSGD on the "torch" backend against torch.optim.SGD, plus argument validation (no Triton needed)."""

from __future__ import annotations

import pytest
import torch

import optim_parity as P
from lrdecay import schedules as S
from lrdecay.optim import FusedSGD, SparseGradientError

BACKEND = "torch"


@pytest.mark.parametrize("combo", P.COMBOS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_every_combination_100_steps(combo):
    P.check_groups_parity(BACKEND, [combo], P.SHAPES, steps=100, none_prob=0.0, seed=3)


def test_several_groups_and_none_grads_100_steps():
    P.check_groups_parity(BACKEND, P.COMBOS, P.SHAPES[:3], steps=100, none_prob=0.25, seed=5)


def test_multisteplr_drives_group_lr():
    P.check_torch_scheduler_drives_lr(BACKEND, steps=100, seed=7)


@pytest.mark.parametrize("case", P.schedule_cases(), ids=lambda c: c[0])
def test_schedule_vs_torch_scheduler(case):
    _, schedule, factory = case
    P.check_schedule_parity(BACKEND, schedule, factory, steps=100, seed=11)


def test_state_dict_interchange_both_ways():
    P.check_state_dict_interchange(BACKEND, steps=12, seed=13)


def test_schedule_position_survives_checkpoint():
    P.check_schedule_resume(BACKEND, seed=17)


def test_real_model_backward_and_zero_grad():
    P.check_real_model(BACKEND, steps=20, seed=19)


def test_auto_picks_torch_on_cpu():
    assert FusedSGD([torch.zeros(3, requires_grad=True)], lr=0.1).backend == "torch"


def test_hyperparameters_live_in_groups_and_defaults():
    p = torch.zeros(3, requires_grad=True)
    opt = FusedSGD([p], lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-4, maximize=True)
    for k, v in dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-4, nesterov=False, maximize=True).items():
        assert opt.defaults[k] == v and opt.param_groups[0][k] == v
    assert isinstance(opt, torch.optim.Optimizer)


# ----------------------------------------------------------------------------- bad input


def _torch_error(**kw):
    with pytest.raises(ValueError) as info:
        torch.optim.SGD([torch.zeros(2, requires_grad=True)], **kw)
    return str(info.value)


@pytest.mark.parametrize(
    "kw",
    [
        dict(lr=-0.1),
        dict(lr=0.1, momentum=-0.5),
        dict(lr=0.1, weight_decay=-1e-4),
        dict(lr=0.1, nesterov=True),
        dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
    ],
)
def test_bad_hyperparameters_match_torch_messages(kw):
    with pytest.raises(ValueError) as info:
        FusedSGD([torch.zeros(2, requires_grad=True)], **kw)
    assert str(info.value) == _torch_error(**kw)


def test_bad_group_hyperparameter_changes_nothing():
    p, q = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    opt = FusedSGD([p], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        opt.add_param_group(dict(params=[q], lr=-1.0))
    assert len(opt.param_groups) == 1


def test_non_leaf_parameter_matches_torch():
    x = torch.zeros(2, requires_grad=True) * 2
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        torch.optim.SGD([x], lr=0.1)
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        FusedSGD([x], lr=0.1)


@pytest.mark.parametrize("bad", [torch.optim.lr_scheduler.StepLR, "cosine", 0.1])
def test_schedule_of_wrong_type(bad):
    p = torch.zeros(2, requires_grad=True)
    if bad is torch.optim.lr_scheduler.StepLR:
        bad = bad(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), 3)
    with pytest.raises(TypeError, match="schedule must be a lrdecay.schedules.Schedule"):
        FusedSGD([p], lr=0.1, schedule=bad)


def test_bad_backend_and_tensor_lr(monkeypatch):
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="backend must be one of"):
        FusedSGD([p], lr=0.1, backend="cuda")
    with pytest.raises(TypeError, match="lr must be a Python float"):
        FusedSGD([p], lr=torch.tensor(0.1))
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="needs CUDA parameters"):
        FusedSGD([p], lr=0.1, backend="triton")


def test_sparse_gradient_raises_and_changes_nothing():
    emb = torch.nn.Embedding(10, 3, sparse=True)
    dense = torch.nn.Linear(3, 2)
    opt = FusedSGD([*dense.parameters(), *emb.parameters()], lr=0.1, momentum=0.9)
    before = [p.detach().clone() for p in (*dense.parameters(), *emb.parameters())]
    dense(emb(torch.tensor([1, 4]))).sum().backward()
    assert emb.weight.grad.is_sparse
    with pytest.raises(SparseGradientError, match="sparse gradients") as info:
        opt.step()
    assert isinstance(info.value, TypeError) and isinstance(info.value, RuntimeError)
    for b, p in zip(before, (*dense.parameters(), *emb.parameters())):
        assert torch.equal(b, p.detach())
    assert len(opt.state) == 0 and opt.step_count == 0


def test_group_lr_reflects_schedule_without_stepping_torch_scheduler():
    p = torch.zeros(2, requires_grad=True)
    opt = FusedSGD([p], lr=0.5, schedule=S.MultiStep([2], 0.1))
    seen = []
    for _ in range(4):
        seen.append(opt.param_groups[0]["lr"])
        p.grad = torch.ones(2)
        opt.step()
    assert seen == [0.5, 0.5, 0.5 * 0.1, 0.5 * 0.1] and opt.param_groups[0]["initial_lr"] == 0.5
    # and the parameter moved by exactly those LRs (fp32 casts as torch applies them)
    expected = torch.zeros(2)
    for lr in seen:
        expected.add_(torch.ones(2), alpha=-lr)
    assert torch.equal(p.detach(), expected)
