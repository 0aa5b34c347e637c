"""``FusedSGD``: torch.optim.SGD's exact semantics, one Triton launch per step, device-side LR schedules.

The state lives here (param groups, momentum buffers, the step count, the device tables); the arithmetic
is :mod:`lrdecay.optim.functional`'s, the flat buffers :mod:`lrdecay.optim.layout`'s and the schedule
codes on the device :mod:`lrdecay.optim.lr_table`'s. See :mod:`lrdecay.optim` for the backends and the
differences from torch.optim.SGD.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterable

import torch
from torch.optim import Optimizer

from lrdecay.optim import functional as F
from lrdecay.optim._checks import (
    DTYPES,
    SparseGradientError,
    check_schedule,
    check_triton_devices,
    resolve_backend,
    validate_hyper,
)
from lrdecay.optim.layout import Bucket, restore_grad_views
from lrdecay.optim.lr_table import DeviceCode, device_code, step_counter
from lrdecay.schedules import Schedule

__all__ = ["FusedSGD"]


def _eager_under_compile(fn):
    """Run ``fn`` eagerly when called from a ``torch.compile``-d function (``torch.compiler.disable``)."""
    disable = getattr(getattr(torch, "compiler", None), "disable", None)
    return fn if disable is None else disable(fn)


def _all_tensors(params: list) -> list[torch.Tensor]:
    out = []
    for item in params:
        if isinstance(item, dict):
            ps = item.get("params", [])
            out.extend([ps] if isinstance(ps, torch.Tensor) else list(ps))
        else:
            out.append(item)
    return [t for t in out if isinstance(t, torch.Tensor)]


class FusedSGD(Optimizer):
    """SGD with momentum, exactly torch.optim.SGD's update, in one Triton launch, with device-side schedules.

    Args:
        params: parameters or param-group dicts, as for any torch optimizer.
        lr: learning rate (>= 0); the schedule's base LR when ``schedule`` has no ``base_lr``.
        momentum, dampening, weight_decay, nesterov, maximize: as in ``torch.optim.SGD``.
        schedule: a :class:`lrdecay.schedules.Schedule` evaluated from the optimizer's step count
            (on the device for the triton backend), or None to use ``group['lr']`` as is.
        backend: ``"auto"``, ``"triton"`` or ``"torch"`` (see :mod:`lrdecay.optim`).
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
        validate_hyper(defaults)
        check_schedule("schedule", schedule)
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
        self._buckets: list[list[Bucket]] = []
        self._sched_codes: dict[tuple[int, torch.device], DeviceCode] = {}
        self._counters: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self.backend = resolve_backend(backend, _all_tensors(params))
        super().__init__(params, defaults)

    # ----------------------------------------------------------------- setup

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group (validated like the constructor's arguments; re-homed on the triton backend)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        validate_hyper({**self.defaults, **param_group} if hasattr(self, "defaults") else param_group)
        params = param_group.get("params")
        tensors = [params] if isinstance(params, torch.Tensor) else list(params or [])
        for t in tensors:
            if isinstance(t, torch.Tensor) and t.is_sparse:
                raise SparseGradientError("FusedSGD does not support sparse parameters")
            if isinstance(t, torch.Tensor) and t.dtype not in DTYPES:
                raise TypeError(
                    f"FusedSGD optimizes float32, float64, float16 and bfloat16 parameters, got dtype {t.dtype}"
                )
        if self.backend == "triton":
            check_triton_devices(tensors)
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
            self._buckets.append([Bucket(ps) for ps in buckets.values()])
            for dev in {p.device for p in group["params"]}:
                self._encode(gi, group, dev)

    def _base(self, group: dict[str, Any]) -> float:
        return group.get("initial_lr", group["lr"])

    def _encode(self, gi: int, group: dict[str, Any], device: torch.device) -> None:
        if self.schedule is None:
            return
        self._sched_codes[(gi, device)] = device_code(self.schedule.encode(self._base(group)), device)
        if device not in self._counters:
            self._counters[device] = step_counter(self._step_count_host, device)

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
                    restore_grad_views(b.params, b.g_views)

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
            code_of = None if self.schedule is None else (lambda gi, dev: self._sched_codes[(gi, dev)])
            F.triton_bucket_step(self.param_groups, self._buckets, self.state, code_of, self._counters)
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

    def _step_torch(self) -> None:
        for group in self.param_groups:
            F.check_dense([p.grad for p in group["params"]])
        if self.schedule is not None and any(
            p.is_cuda for g in self.param_groups for p in g["params"]
        ) and torch.cuda.is_current_stream_capturing():
            raise RuntimeError("capturing FusedSGD.step() with a schedule needs backend='triton'")
        for group in self.param_groups:
            hyper = dict(lr=self._group_lr(group), momentum=group["momentum"], dampening=group["dampening"],
                         weight_decay=group["weight_decay"], nesterov=group["nesterov"], maximize=group["maximize"])
            per_dev: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
            for p in group["params"]:
                if p.grad is not None:
                    per_dev.setdefault((p.device, p.dtype), []).append(p)
            for params in per_dev.values():
                grads = [p.grad for p in params]
                old = [self.state[p].get("momentum_buffer") for p in params] if hyper["momentum"] != 0 else None
                bufs = F.native_sgd(params, grads, old, **hyper)
                if bufs is False:
                    bufs = F.foreach_sgd(params, grads, old, **hyper)
                if bufs is not None:
                    for p, b, o in zip(params, bufs, old):
                        if o is None:
                            self.state[p]["momentum_buffer"] = b

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
            validate_hyper(g)
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
                self._load_into_buckets()
        self._refresh_lr()

    def _load_into_buckets(self) -> None:
        # Re-encode the schedules (the loaded groups may have other base LRs) and copy the loaded momentum
        # buffers into the flat buffer, so the parameters' state is again views of it.
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
