"""FusedSGD on the "torch" backend against torch.optim.SGD, plus argument validation (no Triton needed)."""

from __future__ import annotations

import pytest
import torch

from support import optim_parity as P
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


# --- the float32 CPU fast path (one Rust pass per parameter, lrdecay._native.sgd_step_f32) ----------


@pytest.mark.parametrize("combo", P.COMBOS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_cpu_fast_path_is_bitwise_torch_sgd(combo):
    # Not just within 1e-6: the one-pass update rounds exactly like torch's op-by-op update.
    ours = P.make_params(P.SHAPES, seed=51)
    ref = P.clone_params(ours)
    opt = FusedSGD(ours, lr=0.07, backend=BACKEND, **combo)
    ref_opt = torch.optim.SGD(ref, lr=0.07, **combo)
    gen = torch.Generator().manual_seed(52)
    for t in range(30):
        P.feed_grads(ours, ref, gen, 0.0, inplace=t % 2 == 0)
        opt.step()
        ref_opt.step()
    for p, q in zip(ours, ref):
        assert torch.equal(p.detach(), q.detach())
        mb, mb_ref = opt.state[p].get("momentum_buffer"), ref_opt.state[q].get("momentum_buffer")
        assert (mb is None) == (mb_ref is None)
        if mb is not None:
            assert torch.equal(mb, mb_ref)


def test_cpu_fast_path_skips_non_contiguous_and_mixed_buffers():
    # A transposed parameter falls back to the foreach ops; results still equal torch.
    p = torch.randn(5, 6).t().requires_grad_()  # a non-contiguous leaf
    assert not p.is_contiguous()
    q = p.detach().clone().requires_grad_()
    mixed = [torch.randn(4, requires_grad=True) for _ in range(2)]
    mixed_ref = [m.detach().clone().requires_grad_() for m in mixed]
    opt = FusedSGD([p, *mixed], lr=0.1, momentum=0.9, backend=BACKEND)
    ref = torch.optim.SGD([q, *mixed_ref], lr=0.1, momentum=0.9)
    for t in range(4):
        g = torch.randn(6, 5)
        p.grad, q.grad = g.clone(), g.clone()
        for i, (m, r) in enumerate(zip(mixed, mixed_ref)):
            # the second parameter gets no gradient at step 0: its buffer appears one step later
            gm = torch.randn(4) if (t > 0 or i == 0) else None
            m.grad, r.grad = (None, None) if gm is None else (gm.clone(), gm.clone())
        opt.step()
        ref.step()
    for a, b in zip([p, *mixed], [q, *mixed_ref]):
        assert torch.equal(a.detach(), b.detach())


def test_native_step_rejects_bad_lists_and_writes_nothing():
    from lrdecay import _native

    p = [torch.ones(4), torch.ones(3)]
    g = [torch.ones(4), torch.ones(3)]
    ptr = lambda ts: [t.data_ptr() for t in ts]  # noqa: E731
    kw = dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False, first_step=False)
    with pytest.raises(ValueError, match="equal lengths"):
        _native.sgd_step_f32_ptrs(ptr(p), ptr(g)[:1], None, [4, 3], **kw)
    with pytest.raises(ValueError, match="equal lengths"):
        _native.sgd_step_f32_ptrs(ptr(p), ptr(g), None, [4], **kw)
    with pytest.raises(ValueError, match="bufs are required"):
        _native.sgd_step_f32_ptrs(ptr(p), ptr(g), None, [4, 3], **{**kw, "momentum": 0.9})
    with pytest.raises(ValueError, match="bufs must have 2"):
        _native.sgd_step_f32_ptrs(ptr(p), ptr(g), ptr(g)[:1], [4, 3], **{**kw, "momentum": 0.9})
    with pytest.raises(ValueError, match="non-null"):
        _native.sgd_step_f32_ptrs([0, p[1].data_ptr()], ptr(g), None, [4, 3], **kw)
    with pytest.raises(TypeError):
        _native.sgd_step_f32_ptrs(["a"], ptr(g)[:1], None, [4], **kw)
    assert all(bool((t == 1).all()) for t in p)
    # a tensor with no elements has data_ptr() 0: accepted and skipped
    _native.sgd_step_f32_ptrs([0, *ptr(p)], [0, *ptr(g)], None, [0, 4, 3], **kw)
    assert all(bool((t == 0.9).all()) for t in p)
    _native.sgd_step_f32_ptrs(ptr(p), ptr(g), None, [4, 3], **kw)  # the well-formed call does step
    assert all(torch.allclose(t, torch.full_like(t, 0.8)) for t in p)


def test_cpu_fast_path_is_taken_for_float32(monkeypatch):
    # The bitwise test above would also pass on the foreach fallback: check the Rust step really runs.
    from lrdecay import _native

    calls = []
    real = _native.sgd_step_f32_ptrs
    monkeypatch.setattr(_native, "sgd_step_f32_ptrs", lambda *a, **k: calls.append(len(a[0])) or real(*a, **k))
    ps = P.make_params(P.SHAPES, seed=3)
    opt = FusedSGD(ps, lr=0.1, momentum=0.9, backend=BACKEND)
    for p in ps:
        p.grad = torch.randn_like(p)
    opt.step()
    opt.step()
    assert calls == [len(ps), len(ps)]
    ps64 = P.make_params([(3,)], seed=3, dtype=torch.float64)
    ps64[0].grad = torch.ones(3, dtype=torch.float64)
    FusedSGD(ps64, lr=0.1, backend=BACKEND).step()  # float64: foreach path
    assert calls == [len(ps), len(ps)]


def test_float64_params_step_exactly_like_torch():
    P.check_float64_exact(BACKEND, steps=20, seed=23)
    LR = torch.optim.lr_scheduler
    P.check_float64_exact(
        BACKEND, steps=7, seed=29, schedule=S.MultiStep([2, 5], 0.3123456789),
        torch_factory=lambda o: LR.MultiStepLR(o, [2, 5], 0.3123456789),
    )


@pytest.mark.parametrize("compile_backend", ["eager", "aot_eager"])
@pytest.mark.slow
def test_compiled_training_step_gives_the_eager_numbers(compile_backend):
    # Regression: under torch.compile the step count stayed 0, so the schedule never advanced.
    import warnings

    torch._dynamo.reset()

    def run(compiled: bool):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
        opt = FusedSGD(model.parameters(), lr=1.0, momentum=0.9, schedule=S.MultiStep([2, 3], 0.1),
                       backend=BACKEND)
        x = torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
        y = torch.arange(8) % 3

        def step_fn():
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

        fn = torch.compile(step_fn, backend=compile_backend) if compiled else step_fn
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(5):
                fn()
        return opt, [p.detach().clone() for p in model.parameters()]

    eager_opt, eager_params = run(False)
    opt, params = run(True)
    assert eager_opt.step_count == 5 and opt.step_count == 5
    assert opt.param_groups[0]["lr"] == eager_opt.param_groups[0]["lr"] == pytest.approx(0.01)
    for a, b in zip(params, eager_params):
        assert torch.equal(a, b)


def test_parameters_with_no_elements():
    # Regression: "every address must be a non-null, 4-byte aligned float32 buffer" for nn.Linear(0, 3).
    P.check_empty_params(BACKEND)


def test_a_tensor_or_a_set_as_params_is_treated_like_torch():
    # Regression: FusedSGD(torch.zeros(3, 2)) took the rows as three parameters; a set gave no warning.
    import warnings

    for make in (lambda p: torch.optim.SGD(p, lr=0.1), lambda p: FusedSGD(p, lr=0.1)):
        for tensor in (torch.zeros(3, 2), torch.zeros(3, 2, requires_grad=True)):
            with pytest.raises(TypeError) as info:
                make(tensor)
            assert "should be an iterable of Tensors or dicts, but got torch.FloatTensor" in str(info.value)
    caught = []
    for make in (lambda p: torch.optim.SGD(p, lr=0.1), lambda p: FusedSGD(p, lr=0.1)):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            opt = make({torch.zeros(2, requires_grad=True)})
        caught.append([(x.category, str(x.message)) for x in w if "ordered collections" in str(x.message)])
        assert len(opt.param_groups[0]["params"]) == 1
    assert caught[0] == caught[1] and len(caught[1]) == 1
    # in a param group, a set is an error for both
    for cls in (torch.optim.SGD, FusedSGD):
        with pytest.raises(TypeError, match="ordered collections"):
            cls([{"params": {torch.zeros(2, requires_grad=True)}}], lr=0.1)
