"""``StackedSGD``: K independent SGD optimizers (one per member of a stacked model) in one, one launch a step.

It shares FusedSGD's checks (:mod:`lrdecay.optim._checks`), backend choice and host-side update
(:mod:`lrdecay.optim.functional`); the layout is :class:`~lrdecay.optim.layout.StackedLayout` and the
per-member schedules a :class:`~lrdecay.optim.lr_table.MemberTable`. See lrdecay.trainer.stacked_model for the
stacked models it serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import torch
from torch.optim import Optimizer

from lrdecay.optim import functional as F
from lrdecay.optim._checks import check_schedule, per_member, resolve_backend, validate_hyper
from lrdecay.optim.layout import StackedLayout, restore_grad_views
from lrdecay.optim.lr_table import MemberTable, constant_code, step_counter
from lrdecay.schedules import Schedule

__all__ = ["StackedSGD"]


@dataclass
class _DeviceTables:
    """What the stacked kernel reads besides the flat buffers: per-member LR codes, hyperparameters
    (float32 momentum / 1 - dampening / weight decay) and flags (int32 nesterov / has momentum), the step
    and arrival counters, and the tiles (made at the first triton step)."""

    lrs: MemberTable
    hyper: torch.Tensor
    flags: torch.Tensor
    step: torch.Tensor
    arrive: torch.Tensor
    tiles: torch.Tensor | None = None


class StackedSGD(Optimizer):
    """SGD-momentum for the K members of a stacked model, each with its own hyperparameters and LR schedule.

    Every parameter has the members on dim 0 (shape ``(K, ...)``); member ``m`` of every parameter is
    updated exactly as ``torch.optim.SGD`` (or :class:`FusedSGD`) would update that member alone with
    ``lr[m]``, ``momentum[m]``, ``dampening[m]``, ``weight_decay[m]``, ``nesterov[m]`` and
    ``schedules[m]``. The parameters are re-homed into one flat buffer (each ``(K, ...)`` parameter a
    contiguous segment in which member ``m`` owns a run of elements per parameter; ``p.data`` and
    ``p.grad`` become views of it), so that:

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
            "lr": per_member("lr", lr, K),
            "momentum": per_member("momentum", momentum, K),
            "dampening": per_member("dampening", dampening, K),
            "weight_decay": per_member("weight_decay", weight_decay, K),
        }
        nest = per_member("nesterov", nesterov, K)
        for m in range(K):
            one = {k: v[m] for k, v in hyper.items()}
            if not isinstance(nest[m], bool):
                raise TypeError(f"nesterov[{m}] must be a bool, got {nest[m]!r}")
            one["nesterov"] = nest[m]
            try:
                validate_hyper(one)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"member {m}: {exc}") from None
        sched = list(schedules) if schedules is not None else [None] * K
        if len(sched) != K:
            raise ValueError(f"schedules must have {K} entries (one per member, None allowed), got {len(sched)}")
        for m, s in enumerate(sched):
            check_schedule(f"schedules[{m}]", s)
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
        self.backend = resolve_backend(backend, params[:1])
        self.members = K
        self.nesterov = nest
        self.schedules = sched
        self._hyper = hyper
        # Per member, the hyperparameters of its update besides the LR (fixed for the optimizer's life).
        self._member_hyper = [
            dict(momentum=float(hyper["momentum"][m]), dampening=float(hyper["dampening"][m]),
                 weight_decay=float(hyper["weight_decay"][m]), nesterov=bool(nest[m]), maximize=False)
            for m in range(K)
        ]
        self._step_host = 0
        self._has_buf = False
        defaults = dict(lr=list(hyper["lr"]), momentum=list(hyper["momentum"]), dampening=list(hyper["dampening"]),
                        weight_decay=list(hyper["weight_decay"]), nesterov=list(nest), maximize=False)
        super().__init__(params, defaults)
        self.layout = StackedLayout(params, K, momentum=any(v != 0 for v in hyper["momentum"]))
        self._step_t, self._arrive_t = step_counter(0, self.flat_p.device)
        self._tables = self._build_tables()
        self._refresh_group()

    # ----------------------------------------------------------------- layout
    @property
    def params(self) -> list[torch.Tensor]:
        """The stacked parameters, in buffer order."""
        return self.layout.params

    @property
    def flat_p(self) -> torch.Tensor:
        """The flat parameter buffer (every parameter is a view of it)."""
        return self.layout.flat_p

    @property
    def flat_g(self) -> torch.Tensor:
        """The flat gradient buffer (every ``p.grad`` is a view of it)."""
        return self.layout.flat_g

    @property
    def flat_m(self) -> torch.Tensor | None:
        """The flat momentum buffer (None when no member has momentum)."""
        return self.layout.flat_m

    # ----------------------------------------------------------------- schedules
    def _build_tables(self) -> _DeviceTables:
        dev = self.flat_p.device
        K, h = self.members, self._hyper
        codes = [constant_code(h["lr"][m]) if s is None else s.encode(h["lr"][m])
                 for m, s in enumerate(self.schedules)]
        return _DeviceTables(
            lrs=MemberTable(codes, dev),
            hyper=torch.tensor(
                [(float(h["momentum"][m]), 1.0 - float(h["dampening"][m]), float(h["weight_decay"][m]))
                 for m in range(K)], dtype=torch.float32, device=dev),
            flags=torch.tensor([(int(self.nesterov[m]), int(h["momentum"][m] != 0)) for m in range(K)],
                               dtype=torch.int32, device=dev),
            step=self._step_t, arrive=self._arrive_t,
        )

    def lr_of(self, m: int, step: int | None = None) -> float:
        """Member ``m``'s LR at ``step`` (default: the next step), as the step computes it (float64)."""
        return self._tables.lrs.codes[m].lr_at(self._step_host if step is None else int(step))

    def member_lrs(self) -> list[float]:
        """Every member's LR for the next step."""
        return [self.lr_of(m) for m in range(self.members)]

    def set_lr(self, m: int, value: float) -> None:
        """Set the LR of member ``m``, which must have no device schedule (``schedules[m] is None``): what a
        host-side schedule (AutoDecay, ReduceLROnPlateau) does to ``group['lr']`` of a solo optimizer."""
        if self.schedules[m] is not None:
            raise ValueError(f"member {m} has a device schedule; set_lr is for members with schedules[m] = None")
        validate_hyper({"lr": value})
        self._hyper["lr"][m] = float(value)
        self._tables.lrs.set_constant(m, float(value))
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
            restore_grad_views(self.layout.params, self.layout.g_views)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None):
        """One SGD step of every member."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.layout.check_and_pull_grads()
        first = not self._has_buf
        if self.backend == "triton":
            if self._tables.tiles is None:
                from lrdecay.kernels.stacked_sgd_step import make_tiles

                self._tables.tiles = torch.tensor(make_tiles(self.members, self.layout.sizes), dtype=torch.int64,
                                                  device=self.flat_p.device)
            F.triton_stacked_step(self.layout, self._tables, first_step=first)
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

    def _step_host_side(self, first: bool) -> None:
        lay, codes, step = self.layout, self._tables.lrs.codes, self._step_host
        if self.flat_p.device.type == "cpu" and self.flat_p.dtype == torch.float32:
            # One Rust pass per member over its runs (addresses computed once: this path is per step).
            for m, (ps, gs, ms, ns) in enumerate(lay.native_addresses()):
                F.native_sgd_ptrs(ps, gs, ms, ns, lr=codes[m].lr_at(step), first_step=first, **self._member_hyper[m])
            return
        # Other dtypes / devices: torch's ops on the member's runs of the flat buffers.
        for m in range(self.members):
            hyper = self._member_hyper[m]
            bufs = lay.member_views(lay.flat_m, m) if hyper["momentum"] != 0 else None
            F.foreach_sgd(lay.member_views(lay.flat_p, m), lay.member_views(lay.flat_g, m), bufs,
                          lr=codes[m].lr_at(step), first_step=first, **hyper)

    # ----------------------------------------------------------------- per-member state
    def member_momentum(self, m: int) -> list[torch.Tensor] | None:
        """Member ``m``'s momentum buffer per parameter (views; None without momentum or before the first step)."""
        if self.flat_m is None or self._hyper["momentum"][m] == 0 or not self._has_buf:
            return None
        return [v.view(p.shape[1:]) for p, v in zip(self.params, self.layout.member_views(self.flat_m, m))]

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
