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
