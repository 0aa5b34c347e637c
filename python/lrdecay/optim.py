"""``FusedSGD``: torch.optim.SGD's exact semantics, one Triton launch per step, device-side LR schedules.

Backends:

- ``"triton"``: the parameters of each (param group, device, dtype) are re-homed into one contiguous
  buffer (``p.data`` becomes a view of it), their gradients into another (``p.grad`` is a view, so autograd
  accumulates in place) and the momentum buffers into a third, so a step is one kernel launch reading
  p, g, m and writing p, m (20 bytes per fp32 parameter). Runs on CUDA, and on CPU tensors under
  ``TRITON_INTERPRET=1`` (how CI tests it).
- ``"torch"``: torch's multi-tensor (``torch._foreach_*``) path, the same semantics; CPU, or no Triton.
  For float32 CPU parameters the same arithmetic runs in one Rust pass per parameter
  (``lrdecay._native.sgd_step_f32_ptrs``), bit-equal to the foreach ops and several times less memory traffic.
- ``"auto"``: ``"triton"`` when every parameter is on CUDA and Triton is installed, else ``"torch"``.

With ``schedule=None`` the LR is ``group['lr']``, so every ``torch.optim.lr_scheduler`` drives it. With a
:class:`lrdecay.schedules.Schedule` the LR of step ``t`` is ``schedule.lr_at(t, group['initial_lr'])``:
on the triton backend computed inside the kernel from an int64 step counter on the device (no host sync;
``step()`` can be captured in a CUDA graph and replayed, the LR advancing on every replay), and
``group['lr']`` is kept at the LR the next step will use, from a host-side mirror of the counter.

Differences from torch.optim.SGD, by design:

- triton backend: ``zero_grad()`` zeroes the flat gradient buffer in place whatever ``set_to_none`` says
  (``None`` would break the views). A parameter that then gets no gradient in a backward pass has a zero
  gradient, not ``None``, and is stepped (weight decay, momentum); set ``p.grad = None`` yourself to skip
  it. Gradients assigned from outside (``p.grad = tensor``) are copied into the flat buffer at the next
  step, which is correct but slower.
- triton backend: create the optimizer after moving the model (``model.to(...)`` replaces ``p.data``);
  a replaced parameter storage is detected and raises.
- Sparse gradients and tensor learning rates are not supported.
- Precision: float32 and float64 parameters get torch.optim.SGD's bits on every backend (float64 is
  computed in float64). On the triton backend float16 and bfloat16 parameters are computed in float32 and
  rounded once on store, where torch rounds after every operation, so they differ from torch in the last
  bits. bfloat16 on the triton backend has not been checked on a GPU yet: Triton's CPU interpreter, which
  CI runs, truncates float32 to bfloat16 instead of rounding, so it cannot judge it.
- After replaying a captured step ``n`` times, call :meth:`FusedSGD.sync_step_count` (one host sync) to
  refresh ``step_count`` and ``group['lr']``; ``state_dict()`` does this itself.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any, Callable, Iterable

import torch
from torch.optim import Optimizer

from lrdecay._validate import check_real
from lrdecay.schedules import Schedule

__all__ = ["FusedSGD", "SparseGradientError"]

_BACKENDS = ("auto", "torch", "triton")
# The dtypes both backends step (the kernel's lrdecay.kernels.sgd_step.DTYPES; kept here so that
# importing the optimizer does not import triton).
_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_HYPER = ("lr", "momentum", "dampening", "weight_decay")


class SparseGradientError(TypeError, RuntimeError):
    """A sparse gradient reached FusedSGD (a TypeError, and a RuntimeError like torch's fused SGD raises)."""


def _eager_under_compile(fn):
    """Run ``fn`` eagerly when called from a ``torch.compile``-d function (``torch.compiler.disable``)."""
    disable = getattr(getattr(torch, "compiler", None), "disable", None)
    return fn if disable is None else disable(fn)


def _triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def _validate_hyper(values: dict[str, Any]) -> None:
    """torch.optim.SGD's checks and messages, plus type and finiteness checks; raises before anything
    is changed."""
    for name in _HYPER:
        if name not in values:
            continue
        v = values[name]
        if isinstance(v, torch.Tensor):
            raise TypeError(f"{name} must be a Python float, not a tensor (for a device-side LR use schedule=)")
        check_real(name, v)
    if values.get("lr", 0.0) < 0.0:
        raise ValueError(f"Invalid learning rate: {values['lr']}")
    if values.get("momentum", 0.0) < 0.0:
        raise ValueError(f"Invalid momentum value: {values['momentum']}")
    if values.get("weight_decay", 0.0) < 0.0:
        raise ValueError(f"Invalid weight_decay value: {values['weight_decay']}")
    if values.get("nesterov", False) and (values.get("momentum", 0.0) <= 0 or values.get("dampening", 0.0) != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")


class _Bucket:
    """The parameters of one (group, device, dtype), re-homed into flat buffers (triton backend)."""

    def __init__(self, params: list[torch.Tensor]) -> None:
        self.params = params
        self.sizes = [p.numel() for p in params]
        self.offsets = [0]
        for n in self.sizes:
            self.offsets.append(self.offsets[-1] + n)
        ref = params[0]
        total = self.offsets[-1]
        with torch.no_grad():
            self.flat_p = torch.empty(total, dtype=ref.dtype, device=ref.device)
            self.flat_g = torch.zeros(total, dtype=ref.dtype, device=ref.device)
            self.p_views: list[torch.Tensor] = []
            self.g_views: list[torch.Tensor] = []
            for p, a, b in zip(params, self.offsets, self.offsets[1:]):
                pv = self.flat_p[a:b].view(p.shape)
                pv.copy_(p.detach())
                gv = self.flat_g[a:b].view(p.shape)
                if p.grad is not None:
                    gv.copy_(p.grad.detach())
                p.data = pv
                p.grad = gv
                self.p_views.append(pv)
                self.g_views.append(gv)
        self.flat_m: torch.Tensor | None = None
        self.m_views: list[torch.Tensor] = []
        self.has_buf = [False] * len(params)
        self.all_have_buf = False

    def ensure_momentum(self) -> None:
        if self.flat_m is None:
            self.flat_m = torch.zeros_like(self.flat_p)
            self.m_views = [self.flat_m[a:b].view(p.shape) for p, a, b in zip(self.params, self.offsets, self.offsets[1:])]

    def check_storage(self) -> None:
        for i in (0, len(self.params) - 1):
            if self.params[i].data_ptr() != self.p_views[i].data_ptr():
                raise RuntimeError(
                    "FusedSGD: a parameter's storage was replaced after the optimizer re-homed it "
                    "(e.g. model.to() after creating the optimizer); create the optimizer after moving the model"
                )


class FusedSGD(Optimizer):
    """SGD with momentum, exactly torch.optim.SGD's update, in one Triton launch, with device-side schedules.

    Args:
        params: parameters or param-group dicts, as for any torch optimizer.
        lr: learning rate (>= 0); the schedule's base LR when ``schedule`` has no ``base_lr``.
        momentum, dampening, weight_decay, nesterov, maximize: as in ``torch.optim.SGD``.
        schedule: a :class:`lrdecay.schedules.Schedule` evaluated from the optimizer's step count
            (on the device for the triton backend), or None to use ``group['lr']`` as is.
        backend: ``"auto"``, ``"triton"`` or ``"torch"`` (see the module docstring).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        schedule: Schedule | None = None,
        backend: str = "auto",
    ) -> None:
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov, maximize=maximize,
        )
        _validate_hyper(defaults)
        if schedule is not None and not isinstance(schedule, Schedule):
            hint = ""
            if isinstance(schedule, torch.optim.lr_scheduler.LRScheduler):
                hint = " (torch LR schedulers drive group['lr'] themselves: pass schedule=None and use them as usual)"
            raise TypeError(
                f"schedule must be a lrdecay.schedules.Schedule or None, got {type(schedule).__name__}{hint}"
            )
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        # torch.optim.Optimizer's own checks, before the list() below would hide them.
        if isinstance(params, torch.Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, but got "
                + torch.typename(params)
            )
        if isinstance(params, set):
            warnings.warn(
                "optimizer parameters need to be organized in ordered collections, but the ordering of tensors "
                "in sets will change between runs. Please use a list instead. This will be an error in a future "
                "release.",
                FutureWarning,
                stacklevel=2,
            )
        params = list(params)
        self._requested_backend = backend
        self.schedule = schedule
        self._step_count_host = 0
        self._buckets: list[list[_Bucket]] = []
        self._sched_codes: dict[tuple[int, torch.device], tuple] = {}
        self._counters: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self.backend = self._resolve_backend(backend, params)
        super().__init__(params, defaults)

    # ----------------------------------------------------------------- setup

    @staticmethod
    def _all_tensors(params: list) -> list[torch.Tensor]:
        out = []
        for item in params:
            if isinstance(item, dict):
                ps = item.get("params", [])
                out.extend([ps] if isinstance(ps, torch.Tensor) else list(ps))
            else:
                out.append(item)
        return [t for t in out if isinstance(t, torch.Tensor)]

    def _resolve_backend(self, backend: str, params: list) -> str:
        tensors = self._all_tensors(params)
        all_cuda = bool(tensors) and all(t.is_cuda for t in tensors)
        if backend == "auto":
            return "triton" if all_cuda and _triton_available() else "torch"
        if backend == "triton":
            if not _triton_available():
                raise ValueError("backend='triton' needs the triton package; use backend='torch' or 'auto'")
            from lrdecay.kernels import interpreting

            if not all_cuda and not interpreting():
                raise ValueError(
                    "backend='triton' needs CUDA parameters (or TRITON_INTERPRET=1 for Triton's CPU interpreter); "
                    "use backend='torch' or 'auto'"
                )
        return backend

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group (validated like the constructor's arguments; re-homed on the triton backend)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        _validate_hyper({**self.defaults, **param_group} if hasattr(self, "defaults") else param_group)
        params = param_group.get("params")
        tensors = [params] if isinstance(params, torch.Tensor) else list(params or [])
        for t in tensors:
            if isinstance(t, torch.Tensor) and t.is_sparse:
                raise SparseGradientError("FusedSGD does not support sparse parameters")
            if isinstance(t, torch.Tensor) and t.dtype not in _DTYPES:
                raise TypeError(
                    f"FusedSGD optimizes float32, float64, float16 and bfloat16 parameters, got dtype {t.dtype}"
                )
        if self.backend == "triton":
            devs = {t.device for t in tensors if isinstance(t, torch.Tensor)}
            from lrdecay.kernels import interpreting

            if any(d.type != "cuda" for d in devs) and not interpreting():
                raise ValueError("backend='triton' needs CUDA parameters (or TRITON_INTERPRET=1)")
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        gi = len(self.param_groups) - 1
        if self.schedule is not None:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = self.schedule.lr_at(self._step_count_host, self._base(group))
        if self.backend == "triton":
            buckets: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
            for p in group["params"]:
                buckets.setdefault((p.device, p.dtype), []).append(p)
            self._buckets.append([_Bucket(ps) for ps in buckets.values()])
            for dev in {p.device for p in group["params"]}:
                self._encode(gi, group, dev)

    def _base(self, group: dict[str, Any]) -> float:
        return group.get("initial_lr", group["lr"])

    def _encode(self, gi: int, group: dict[str, Any], device: torch.device) -> None:
        if self.schedule is None:
            return
        code = self.schedule.encode(self._base(group))
        si = torch.tensor(code.ints, dtype=torch.int64, device=device)
        sf = torch.tensor(code.floats, dtype=torch.float64, device=device)
        self._sched_codes[(gi, device)] = (code.kind, code.warmup, si, sf)
        if device not in self._counters:
            self._counters[device] = (
                torch.full((1,), self._step_count_host, dtype=torch.int64, device=device),
                torch.zeros(1, dtype=torch.int32, device=device),
            )

    # ----------------------------------------------------------------- step count / lr

    @property
    def step_count(self) -> int:
        """Optimizer steps taken, as known on the host (see :meth:`sync_step_count` after graph replays)."""
        return self._step_count_host

    def sync_step_count(self) -> int:
        """Read the device step counter (one host sync), update ``step_count`` and ``group['lr']``."""
        if self._counters:
            counter = next(iter(self._counters.values()))[0]
            self._step_count_host = int(counter.item())
        self._refresh_lr()
        return self._step_count_host

    def _refresh_lr(self) -> None:
        if self.schedule is None:
            return
        for group in self.param_groups:
            group["lr"] = self.schedule.lr_at(self._step_count_host, self._base(group))

    def current_lrs(self) -> list[float]:
        """The LR each group's next step uses (``group['lr']``)."""
        return [g["lr"] for g in self.param_groups]

    # ----------------------------------------------------------------- public API

    @_eager_under_compile
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the gradients. On the triton backend, always in place (``set_to_none`` is ignored: the
        gradients are views of one flat buffer that autograd accumulates into), so parameters keep a
        zero gradient rather than ``None``."""
        if self.backend != "triton":
            super().zero_grad(set_to_none=set_to_none)
            return
        with torch.no_grad():
            for buckets in self._buckets:
                for b in buckets:
                    b.flat_g.zero_()
                    for p, gv in zip(b.params, b.g_views):
                        if p.grad is not gv:
                            p.grad = gv

    # torch.compile: the step runs eagerly (a graph break around it). Traced, the host-side step count
    # (the schedule position) was not advanced, so the LR never changed; the Triton launch and the
    # Rust CPU step are opaque to tracing anyway. The rest of a compiled training step stays compiled.
    @_eager_under_compile
    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None):
        """One SGD step for every parameter that has a gradient (``.grad is None``: skipped, untouched).

        Inside a ``torch.compile``-d function the step itself runs eagerly (a graph break), so a compiled
        training step gives the eager numbers."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.backend == "triton":
            self._step_triton()
        else:
            self._step_torch()
        if not self._capturing():
            self._step_count_host += 1
            self._refresh_lr()
        return loss

    def _capturing(self) -> bool:
        # Under CUDA-graph capture nothing executes, so the host mirror of the step counter must not move.
        devs = list(self._counters) + [
            b.flat_p.device for buckets in self._buckets for b in buckets
        ][:1]
        return any(d.type == "cuda" for d in devs) and torch.cuda.is_current_stream_capturing()

    def _group_lr(self, group: dict[str, Any]) -> float:
        if self.schedule is None:
            return group["lr"]
        return self.schedule.lr_at(self._step_count_host, self._base(group))

    # ----------------------------------------------------------------- torch backend

    def _step_torch(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and p.grad.is_sparse:
                    raise SparseGradientError("FusedSGD does not support sparse gradients (torch: `_fused_sgd` does not support sparse gradients)")
        if self.schedule is not None and any(
            p.is_cuda for g in self.param_groups for p in g["params"]
        ) and torch.cuda.is_current_stream_capturing():
            raise RuntimeError("capturing FusedSGD.step() with a schedule needs backend='triton'")
        for group in self.param_groups:
            lr = self._group_lr(group)
            momentum = group["momentum"]
            dampening = group["dampening"]
            wd = group["weight_decay"]
            nesterov = group["nesterov"]
            maximize = group["maximize"]
            per_dev: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
            for p in group["params"]:
                if p.grad is not None:
                    per_dev.setdefault((p.device, p.dtype), []).append(p)
            for params in per_dev.values():
                grads = [p.grad for p in params]
                if self._native_cpu_step(params, grads, lr, momentum, dampening, wd, nesterov, maximize):
                    continue
                # Like torch: `grads` holds fresh tensors only after maximize/weight decay made them.
                owned = False
                if maximize:
                    grads = torch._foreach_neg(grads)
                    owned = True
                if wd != 0:
                    if owned:
                        torch._foreach_add_(grads, params, alpha=wd)
                    else:
                        grads = torch._foreach_add(grads, params, alpha=wd)
                        owned = True
                if momentum != 0:
                    old = [self.state[p].get("momentum_buffer") for p in params]
                    if all(b is not None for b in old):
                        bufs = old
                        torch._foreach_mul_(bufs, momentum)
                        torch._foreach_add_(bufs, grads, alpha=1 - dampening)
                    else:
                        bufs = []
                        for p, b, g in zip(params, old, grads):
                            if b is None:
                                b = g.detach().clone()
                                self.state[p]["momentum_buffer"] = b
                            else:
                                b.mul_(momentum).add_(g, alpha=1 - dampening)
                            bufs.append(b)
                    if nesterov:
                        # Out of place when `grads` are the user's .grad tensors (torch's single-tensor
                        # path leaves .grad untouched too).
                        if owned:
                            torch._foreach_add_(grads, bufs, alpha=momentum)
                        else:
                            grads = torch._foreach_add(grads, bufs, alpha=momentum)
                    else:
                        grads = bufs
                torch._foreach_add_(params, grads, alpha=-lr)

    def _native_cpu_step(self, params, grads, lr, momentum, dampening, wd, nesterov, maximize) -> bool:
        """The torch backend's fast path for float32 CPU parameters: the same update as the foreach ops
        below (bit for bit: one fused multiply-add per ``a + alpha*b``, coefficients rounded to float32 as
        torch rounds them) in one Rust pass per parameter instead of ~5 sweeps over memory. Returns False,
        having changed nothing, where it does not apply (other device or dtype, non-contiguous tensors,
        some momentum buffers missing), and the foreach path runs instead."""
        p0 = params[0]
        if p0.device.type != "cpu" or p0.dtype != torch.float32:
            return False
        if not all(t.is_contiguous() and t.layout == torch.strided for t in (*params, *grads)):
            return False
        if not all(g.dtype == torch.float32 and g.device.type == "cpu" and g.shape == p.shape for p, g in zip(params, grads)):
            return False
        first = False
        bufs = None
        if momentum != 0:
            old = [self.state[p].get("momentum_buffer") for p in params]
            if all(b is None for b in old):
                first = True
                bufs = [torch.empty_like(g, memory_format=torch.contiguous_format) for g in grads]
            elif all(
                b is not None and b.is_contiguous() and b.dtype == torch.float32 and b.device.type == "cpu"
                and b.shape == p.shape for b, p in zip(old, params)
            ):
                bufs = old
            else:
                return False
        from lrdecay import _native

        # Addresses, not numpy views: a torch -> numpy conversion costs more than a small tensor's update.
        # Every tensor was checked above to be a contiguous float32 CPU tensor (grads and buffers have
        # their parameter's shape), which is the contract of sgd_step_f32_ptrs.
        _native.sgd_step_f32_ptrs(
            [p.data_ptr() for p in params],
            [g.data_ptr() for g in grads],
            [b.data_ptr() for b in bufs] if bufs is not None else None,
            [p.numel() for p in params],
            lr=float(lr),
            momentum=float(momentum),
            dampening=float(dampening),
            weight_decay=float(wd),
            nesterov=bool(nesterov),
            maximize=bool(maximize),
            first_step=first,
        )
        if first:
            for p, b in zip(params, bufs):
                self.state[p]["momentum_buffer"] = b
        return True

    # ----------------------------------------------------------------- triton backend

    def _step_triton(self) -> None:
        from lrdecay.kernels.sgd_step import sgd_step

        # Pass 1: inspect everything and validate, so a bad input raises before anything changes.
        plans = []
        for gi, group in enumerate(self.param_groups):
            for b in self._buckets[gi]:
                b.check_storage()
                grads = [p.grad for p in b.params]
                if all(g is v for g, v in zip(grads, b.g_views)):
                    plans.append((gi, group, b, None))
                    continue
                for g in grads:
                    if g is not None and g.is_sparse:
                        raise SparseGradientError(
                            "FusedSGD does not support sparse gradients "
                            "(torch: `_fused_sgd` does not support sparse gradients)"
                        )
                plans.append((gi, group, b, grads))

        # Pass 2: pull foreign gradients into the flat buffer, build contiguous runs of parameters that
        # share (has a gradient, first momentum step), one launch per run: one in the common case.
        launches = []
        for gi, group, b, grads in plans:
            momentum = group["momentum"]
            if momentum != 0:
                b.ensure_momentum()
            if grads is None and (momentum == 0 or b.all_have_buf or not any(b.has_buf)):
                first = momentum != 0 and not b.all_have_buf
                launches.append((gi, group, b, 0, len(b.params), first))
                continue
            if grads is None:
                grads = b.g_views
            flags = []
            for i, (p, g, gv) in enumerate(zip(b.params, grads, b.g_views)):
                if g is not None and g is not gv:
                    gv.copy_(g)
                    p.grad = gv
                flags.append((g is not None, momentum != 0 and not b.has_buf[i]))
            i = 0
            while i < len(flags):
                j = i
                while j < len(flags) and flags[j] == flags[i]:
                    j += 1
                if flags[i][0]:
                    launches.append((gi, group, b, i, j, flags[i][1]))
                i = j

        # The step counter advances once per step, in the last launch on each device.
        last_on_dev: dict[torch.device, int] = {}
        for k, (_gi, _group, b, *_rest) in enumerate(launches):
            last_on_dev[b.flat_p.device] = k
        for k, (gi, group, b, i, j, first) in enumerate(launches):
            a, e = b.offsets[i], b.offsets[j]
            dev = b.flat_p.device
            sched = None
            if self.schedule is not None:
                kind, warmup, si, sf = self._sched_codes[(gi, dev)]
                step_t, arrive_t = self._counters[dev]
                sched = (kind, warmup, si, sf, step_t, arrive_t)
            momentum = group["momentum"]
            sgd_step(
                b.flat_p[a:e],
                b.flat_g[a:e],
                b.flat_m[a:e] if momentum != 0 else None,
                lr=group["lr"],
                momentum=momentum,
                dampening=group["dampening"],
                weight_decay=group["weight_decay"],
                nesterov=group["nesterov"],
                maximize=group["maximize"],
                first_step=first,
                schedule=sched,
                increment=last_on_dev.get(dev) == k,
            )
            if first:
                for idx in range(i, j):
                    b.has_buf[idx] = True
                    self.state[b.params[idx]]["momentum_buffer"] = b.m_views[idx]
                b.all_have_buf = all(b.has_buf)
        if self.schedule is not None:
            for dev, (step_t, _) in self._counters.items():
                if dev not in last_on_dev:
                    step_t.add_(1)

    # ----------------------------------------------------------------- state dict

    def state_dict(self) -> dict[str, Any]:
        """torch.optim.SGD-compatible state dict; each group also records ``step_count`` (the schedule
        position), which torch.optim.SGD carries along unused."""
        if self._counters and not self._capturing():
            self.sync_step_count()
        sd = super().state_dict()
        for g in sd["param_groups"]:
            g["step_count"] = self._step_count_host
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a FusedSGD or torch.optim.SGD state dict; momentum buffers are copied into the flat buffer."""
        groups = state_dict.get("param_groups", [])
        for g in groups:
            _validate_hyper(g)
        super().load_state_dict(state_dict)
        steps = [g.get("step_count", 0) for g in groups]
        self._step_count_host = int(max(steps)) if steps else 0
        for g in self.param_groups:
            g.pop("step_count", None)
            if self.schedule is not None:
                g.setdefault("initial_lr", g["lr"])
        with torch.no_grad():
            for step_t, arrive_t in self._counters.values():
                step_t.fill_(self._step_count_host)
                arrive_t.zero_()
            if self.backend == "triton":
                self._sched_codes.clear()
                for gi, group in enumerate(self.param_groups):
                    for dev in {p.device for p in group["params"]}:
                        self._encode(gi, group, dev)
                    for b in self._buckets[gi]:
                        for idx, p in enumerate(b.params):
                            buf = self.state[p].get("momentum_buffer") if p in self.state else None
                            if buf is None:
                                b.has_buf[idx] = False
                                if p in self.state:
                                    self.state[p].pop("momentum_buffer", None)
                                continue
                            b.ensure_momentum()
                            mv = b.m_views[idx]
                            if buf is not mv:
                                mv.copy_(buf)
                                self.state[p]["momentum_buffer"] = mv
                            b.has_buf[idx] = True
                        b.all_have_buf = all(b.has_buf)
        self._refresh_lr()


# ============================================================================ stacked members
# Appended as its own section: K independent SGD optimizers (one per member of a stacked model) in one
# optimizer, one launch per step. See lrdecay.sweep.stack_model for the stacked models it serves.

from typing import Sequence  # noqa: E402

__all__ += ["StackedSGD"]


def _per_member(name: str, value: Any, members: int) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != members:
            raise ValueError(f"{name} must be a scalar or a sequence of {members} values (one per member), got {len(value)}")
        return list(value)
    if isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a Python number or a sequence of them, not a tensor")
    return [value] * members


class StackedSGD(Optimizer):
    """SGD-momentum for the K members of a stacked model, each with its own hyperparameters and LR schedule.

    Every parameter has the members on dim 0 (shape ``(K, ...)``); member ``m`` of every parameter is
    updated exactly as ``torch.optim.SGD`` (or :class:`FusedSGD`) would update that member alone with
    ``lr[m]``, ``momentum[m]``, ``dampening[m]``, ``weight_decay[m]``, ``nesterov[m]`` and
    ``schedules[m]``. The parameters are re-homed into one flat buffer (each ``(K, ...)`` parameter a
    contiguous segment in which member ``m`` owns a
    run of elements per parameter; ``p.data`` and ``p.grad`` become views of it), so that:

    - ``backend="triton"`` (CUDA, or ``TRITON_INTERPRET=1``): a step is **one launch** over the whole
      buffer; each member's LR is computed inside the kernel from its schedule and the device step
      counter (no host sync; the step can be captured in a CUDA graph and replayed).
    - ``backend="torch"`` (CPU): each member's runs are one call of the Rust one-pass step
      (float32; bit-equal to torch.optim.SGD), or torch ops for other dtypes; LRs are evaluated on the
      host from the same schedule codes.

    Args:
        params: tensors with the members on dim 0 (one device, one floating dtype).
        members: K.
        lr, momentum, dampening, weight_decay, nesterov: a value for every member, or a sequence of K.
        schedules: None, or K entries each a :class:`lrdecay.schedules.Schedule` (base LR ``lr[m]`` unless
            the schedule has its own) or None (that member's LR is ``lr[m]`` until :meth:`set_lr` changes
            it: host-side schedules such as AutoDecay or ReduceLROnPlateau).
        backend: ``"auto"``, ``"triton"`` or ``"torch"``.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        members: int,
        *,
        lr: float | Sequence[float],
        momentum: float | Sequence[float] = 0.0,
        dampening: float | Sequence[float] = 0.0,
        weight_decay: float | Sequence[float] = 0.0,
        nesterov: bool | Sequence[bool] = False,
        schedules: Sequence[Schedule | None] | None = None,
        backend: str = "auto",
    ) -> None:
        if isinstance(members, bool) or not isinstance(members, int) or members < 1:
            raise ValueError(f"members must be an int >= 1, got {members!r}")
        K = members
        hyper = {
            "lr": _per_member("lr", lr, K),
            "momentum": _per_member("momentum", momentum, K),
            "dampening": _per_member("dampening", dampening, K),
            "weight_decay": _per_member("weight_decay", weight_decay, K),
        }
        nest = _per_member("nesterov", nesterov, K)
        for m in range(K):
            one = {k: v[m] for k, v in hyper.items()}
            if not isinstance(nest[m], bool):
                raise TypeError(f"nesterov[{m}] must be a bool, got {nest[m]!r}")
            one["nesterov"] = nest[m]
            try:
                _validate_hyper(one)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"member {m}: {exc}") from None
        sched = list(schedules) if schedules is not None else [None] * K
        if len(sched) != K:
            raise ValueError(f"schedules must have {K} entries (one per member, None allowed), got {len(sched)}")
        for m, s in enumerate(sched):
            if s is not None and not isinstance(s, Schedule):
                raise TypeError(f"schedules[{m}] must be a lrdecay.schedules.Schedule or None, got {type(s).__name__}")
        params = list(params)
        if not params:
            raise ValueError("StackedSGD got an empty parameter list")
        for i, p in enumerate(params):
            if not isinstance(p, torch.Tensor):
                raise TypeError(f"params[{i}] must be a tensor, got {type(p).__name__}")
            if p.is_sparse or not p.is_floating_point():
                raise TypeError(f"params[{i}] must be a dense floating-point tensor, got {p.dtype}")
            if p.dim() < 1 or p.shape[0] != K:
                raise ValueError(f"params[{i}] must have the {K} members on dim 0, got shape {tuple(p.shape)}")
            if p.device != params[0].device or p.dtype != params[0].dtype:
                raise ValueError("StackedSGD needs every parameter on one device with one dtype")
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        dev = params[0].device
        if backend == "auto":
            backend = "triton" if dev.type == "cuda" and _triton_available() else "torch"
        elif backend == "triton":
            from lrdecay.kernels import interpreting

            if not _triton_available():
                raise ValueError("backend='triton' needs the triton package; use backend='torch' or 'auto'")
            if dev.type != "cuda" and not interpreting():
                raise ValueError("backend='triton' needs CUDA parameters (or TRITON_INTERPRET=1); use 'torch' or 'auto'")
        self.backend = backend
        self.members = K
        self.nesterov = nest
        self.schedules = sched
        self._hyper = hyper
        self._step_host = 0
        self._has_buf = False
        defaults = dict(lr=list(hyper["lr"]), momentum=list(hyper["momentum"]), dampening=list(hyper["dampening"]),
                        weight_decay=list(hyper["weight_decay"]), nesterov=list(nest), maximize=False)
        super().__init__(params, defaults)
        self._rehome(params)
        self._codes = [self._code(m) for m in range(K)]
        self._build_tables()
        self._refresh_group()

    # ----------------------------------------------------------------- layout
    def _rehome(self, params: list[torch.Tensor]) -> None:
        # One segment per parameter, each (K, ...) contiguous: the parameters stay ordinary contiguous
        # tensors (views of the flat buffer), and member m's elements of segment j are one contiguous run.
        K = self.members
        self.sizes = [p[0].numel() for p in params]
        self.offsets = [0]
        for n in self.sizes:
            self.offsets.append(self.offsets[-1] + K * n)
        total = self.offsets[-1]
        ref = params[0]
        with torch.no_grad():
            self.flat_p = torch.empty(total, dtype=ref.dtype, device=ref.device)
            self.flat_g = torch.zeros(total, dtype=ref.dtype, device=ref.device)
            any_momentum = any(v != 0 for v in self._hyper["momentum"])
            self.flat_m = torch.zeros(total, dtype=ref.dtype, device=ref.device) if any_momentum else None
            self.p_views, self.g_views = [], []
            for p, a, b in zip(params, self.offsets, self.offsets[1:]):
                pv = self.flat_p[a:b].view(p.shape)
                pv.copy_(p.detach())
                gv = self.flat_g[a:b].view(p.shape)
                if p.grad is not None:
                    gv.copy_(p.grad.detach())
                p.data = pv
                p.grad = gv
                self.p_views.append(pv)
                self.g_views.append(gv)
            self.params = params
        self._tiles = None

    def _member_runs(self, m: int) -> list[tuple[int, int]]:
        """(start, length) of member ``m``'s element runs in the flat buffers, one per parameter."""
        return [(a + m * n, n) for a, n in zip(self.offsets, self.sizes)]

    # ----------------------------------------------------------------- schedules
    def _code(self, m: int):
        from lrdecay.schedules import Constant

        s = self.schedules[m]
        return (s if s is not None else Constant()).encode(self._hyper["lr"][m])

    def _build_tables(self) -> None:
        dev = self.flat_p.device
        K = self.members
        meta, ints, floats = [], [], []
        self._float_offsets = []
        for code in self._codes:
            self._float_offsets.append(len(floats))
            meta.append((code.kind, int(code.warmup), len(ints), len(floats)))
            ints.extend(code.ints)
            floats.extend(code.floats)
        self._meta = torch.tensor(meta, dtype=torch.int64, device=dev)
        self._ints = torch.tensor(ints, dtype=torch.int64, device=dev)
        self._floats = torch.tensor(floats, dtype=torch.float64, device=dev)
        h = self._hyper
        self._hyper_t = torch.tensor(
            [(float(h["momentum"][m]), 1.0 - float(h["dampening"][m]), float(h["weight_decay"][m])) for m in range(K)],
            dtype=torch.float32, device=dev)
        self._flags_t = torch.tensor(
            [(int(self.nesterov[m]), int(h["momentum"][m] != 0)) for m in range(K)], dtype=torch.int32, device=dev)
        if not hasattr(self, "_step_t"):
            self._step_t = torch.full((1,), self._step_host, dtype=torch.int64, device=dev)
            self._arrive_t = torch.zeros(1, dtype=torch.int32, device=dev)

    def lr_of(self, m: int, step: int | None = None) -> float:
        """Member ``m``'s LR at ``step`` (default: the next step), as the step computes it (float64)."""
        return self._codes[m].lr_at(self._step_host if step is None else int(step))

    def member_lrs(self) -> list[float]:
        """Every member's LR for the next step."""
        return [self.lr_of(m) for m in range(self.members)]

    def set_lr(self, m: int, value: float) -> None:
        """Set the LR of member ``m``, which must have no device schedule (``schedules[m] is None``): what a
        host-side schedule (AutoDecay, ReduceLROnPlateau) does to ``group['lr']`` of a solo optimizer."""
        if self.schedules[m] is not None:
            raise ValueError(f"member {m} has a device schedule; set_lr is for members with schedules[m] = None")
        _validate_hyper({"lr": value})
        from lrdecay.schedules import Constant

        self._hyper["lr"][m] = float(value)
        self._codes[m] = Constant().encode(float(value))
        with torch.no_grad():
            self._floats[self._float_offsets[m] + 1] = float(value)
        self._refresh_group()

    def _refresh_group(self) -> None:
        self.param_groups[0]["lr"] = self.member_lrs()

    @property
    def step_count(self) -> int:
        """Steps taken, as known on the host (call :meth:`sync_step_count` after CUDA-graph replays)."""
        return self._step_host

    def sync_step_count(self) -> int:
        """Read the device step counter (one host sync)."""
        if self.backend == "triton":
            self._step_host = int(self._step_t.item())
            self._has_buf = self._has_buf or self._step_host > 0
        self._refresh_group()
        return self._step_host

    def set_step_count(self, step: int, *, momentum_initialized: bool | None = None) -> None:
        """Move every member's schedule to ``step`` (a resume); ``momentum_initialized`` says whether the
        momentum buffers hold state (default: ``step > 0``)."""
        step = int(step)
        self._step_host = step
        self._has_buf = step > 0 if momentum_initialized is None else bool(momentum_initialized)
        with torch.no_grad():
            self._step_t.fill_(step)
            self._arrive_t.zero_()
        self._refresh_group()

    # ----------------------------------------------------------------- step
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the flat gradient buffer in place (parameters keep their gradient views)."""
        with torch.no_grad():
            self.flat_g.zero_()
            for p, gv in zip(self.params, self.g_views):
                if p.grad is not gv:
                    p.grad = gv

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None):
        """One SGD step of every member."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for p, pv, gv in zip(self.params, self.p_views, self.g_views):
            if p.data_ptr() != pv.data_ptr():
                raise RuntimeError("StackedSGD: a parameter's storage was replaced after the optimizer re-homed it")
            if p.grad is not gv:
                if p.grad is None:
                    raise RuntimeError("StackedSGD: a parameter's gradient was set to None; use zero_grad()")
                gv.copy_(p.grad)
                p.grad = gv
        first = not self._has_buf
        if self.backend == "triton":
            from lrdecay.kernels.stacked_sgd_step import make_tiles, stacked_sgd_step

            if self._tiles is None:
                self._tiles = torch.tensor(make_tiles(self.members, self.sizes), dtype=torch.int64,
                                           device=self.flat_p.device)
            stacked_sgd_step(
                self.flat_p, self.flat_g, self.flat_m, tiles=self._tiles, hyper=self._hyper_t,
                flags=self._flags_t, meta=self._meta, ints=self._ints, floats=self._floats,
                step=self._step_t, arrive=self._arrive_t, first_step=first,
            )
        else:
            self._step_host_side(first)
        self._has_buf = True
        capturing = self.flat_p.is_cuda and torch.cuda.is_current_stream_capturing()
        if not capturing:
            self._step_host += 1
            if self.backend != "triton":
                self._step_t.fill_(self._step_host)
            self._refresh_group()
        return loss

    def _native_addresses(self) -> list[tuple]:
        """Per member: the addresses of its runs in the flat buffers and their lengths (the buffers are
        never reallocated, so computed once)."""
        if getattr(self, "_addresses", None) is None:
            esz = self.flat_p.element_size()
            bp, bg = self.flat_p.data_ptr(), self.flat_g.data_ptr()
            bm = self.flat_m.data_ptr() if self.flat_m is not None else None
            out = []
            for m in range(self.members):
                runs = self._member_runs(m)
                out.append(([bp + a * esz for a, _ in runs], [bg + a * esz for a, _ in runs],
                            None if bm is None else [bm + a * esz for a, _ in runs], [n for _, n in runs]))
            self._addresses = out
        return self._addresses

    def _step_host_side(self, first: bool) -> None:
        h = self._hyper
        native = self.flat_p.device.type == "cpu" and self.flat_p.dtype == torch.float32
        if native:
            from lrdecay import _native

            addresses = self._native_addresses()
        for m in range(self.members):
            lr = self.lr_of(m)
            mu, damp, wd, nest = h["momentum"][m], h["dampening"][m], h["weight_decay"][m], self.nesterov[m]
            if native:
                ps, gs, ms, ns = addresses[m]
                _native.sgd_step_f32_ptrs(
                    ps, gs, ms if mu != 0 else None, ns,
                    lr=float(lr), momentum=float(mu), dampening=float(damp), weight_decay=float(wd),
                    nesterov=bool(nest), maximize=False, first_step=first,
                )
                continue
            runs = self._member_runs(m)
            # Other dtypes / devices: torch.optim.SGD's single-tensor arithmetic on each run of the member.
            for a, n in runs:
                p, g = self.flat_p[a : a + n], self.flat_g[a : a + n]
                if wd != 0:
                    g = g.add(p, alpha=wd)
                if mu != 0:
                    buf = self.flat_m[a : a + n]
                    if first:
                        buf.copy_(g)
                    else:
                        buf.mul_(mu).add_(g, alpha=1 - damp)
                    g = g.add(buf, alpha=mu) if nest else buf
                p.add_(g, alpha=-lr)

    # ----------------------------------------------------------------- per-member state
    def member_momentum(self, m: int) -> list[torch.Tensor] | None:
        """Member ``m``'s momentum buffer per parameter (views; None without momentum or before the first step)."""
        if self.flat_m is None or self._hyper["momentum"][m] == 0 or not self._has_buf:
            return None
        return [self.flat_m[a : a + n].view(p.shape[1:]) for p, (a, n) in zip(self.params, self._member_runs(m))]

    def state_dict(self) -> dict[str, Any]:
        """The whole stacked state: step count, whether momentum is initialized, the flat momentum buffer,
        the host-set LRs."""
        if self.backend == "triton" and not (self.flat_p.is_cuda and torch.cuda.is_current_stream_capturing()):
            self.sync_step_count()
        return {"step_count": self._step_host, "has_buf": self._has_buf, "lr": list(self._hyper["lr"]),
                "momentum_buffer": None if self.flat_m is None else self.flat_m.detach().clone()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""
        for m, v in enumerate(state_dict["lr"]):
            if self.schedules[m] is None and v != self._hyper["lr"][m]:
                self.set_lr(m, v)
        with torch.no_grad():
            if self.flat_m is not None and state_dict.get("momentum_buffer") is not None:
                self.flat_m.copy_(state_dict["momentum_buffer"])
        self.set_step_count(int(state_dict["step_count"]), momentum_initialized=bool(state_dict["has_buf"]))
