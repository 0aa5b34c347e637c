"""Argument checks shared by :class:`~lrdecay.optim.FusedSGD` and :class:`~lrdecay.optim.StackedSGD`.

Every check raises before anything is changed, with torch.optim.SGD's own messages where torch has one.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Iterable

import torch

from lrdecay._validate import check_real
from lrdecay.schedules import Schedule

__all__ = [
    "BACKENDS",
    "DTYPES",
    "SparseGradientError",
    "check_schedule",
    "check_triton_devices",
    "per_member",
    "resolve_backend",
    "triton_available",
    "validate_hyper",
]

BACKENDS = ("auto", "torch", "triton")
# The dtypes both backends step (the kernel's lrdecay.kernels.sgd_step.DTYPES; kept here so that
# importing the optimizer does not import triton).
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_HYPER = ("lr", "momentum", "dampening", "weight_decay")


class SparseGradientError(TypeError, RuntimeError):
    """A sparse gradient reached FusedSGD (a TypeError, and a RuntimeError like torch's fused SGD raises)."""


def triton_available() -> bool:
    """Whether the triton package can be imported (without importing it)."""
    return importlib.util.find_spec("triton") is not None


def validate_hyper(values: dict[str, Any]) -> None:
    """torch.optim.SGD's checks and messages, plus type and finiteness checks, on the hyperparameters
    present in ``values``; raises before anything is changed."""
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


def check_schedule(name: str, schedule: Any) -> None:
    """``schedule`` must be a :class:`lrdecay.schedules.Schedule` or None (a torch LR scheduler gets a hint)."""
    if schedule is None or isinstance(schedule, Schedule):
        return
    hint = ""
    if isinstance(schedule, torch.optim.lr_scheduler.LRScheduler):
        hint = " (torch LR schedulers drive group['lr'] themselves: pass schedule=None and use them as usual)"
    raise TypeError(f"{name} must be a lrdecay.schedules.Schedule or None, got {type(schedule).__name__}{hint}")


def per_member(name: str, value: Any, members: int) -> list:
    """``value`` as a list of one entry per member: a sequence of ``members`` values, or one value for all."""
    if isinstance(value, (list, tuple)):
        if len(value) != members:
            raise ValueError(
                f"{name} must be a scalar or a sequence of {members} values (one per member), got {len(value)}"
            )
        return list(value)
    if isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a Python number or a sequence of them, not a tensor")
    return [value] * members


def resolve_backend(backend: str, tensors: Iterable[Any]) -> str:
    """The backend ``"auto"``/``"torch"``/``"triton"`` stands for with these parameters: ``"auto"`` is
    ``"triton"`` when every parameter is on CUDA and triton is installed, else ``"torch"``; an explicit
    ``"triton"`` needs triton and CUDA parameters (or Triton's CPU interpreter)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    tensors = [t for t in tensors if isinstance(t, torch.Tensor)]
    all_cuda = bool(tensors) and all(t.is_cuda for t in tensors)
    if backend == "auto":
        return "triton" if all_cuda and triton_available() else "torch"
    if backend == "triton":
        if not triton_available():
            raise ValueError("backend='triton' needs the triton package; use backend='torch' or 'auto'")
        check_triton_devices(tensors, all_cuda=all_cuda)
    return backend


def check_triton_devices(tensors: Iterable[Any], *, all_cuda: bool | None = None) -> None:
    """The triton backend steps CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``."""
    from lrdecay.kernels import interpreting

    if all_cuda is None:
        all_cuda = all(t.is_cuda for t in tensors if isinstance(t, torch.Tensor))
    if not all_cuda and not interpreting():
        raise ValueError(
            "backend='triton' needs CUDA parameters (or TRITON_INTERPRET=1 for Triton's CPU interpreter); "
            "use backend='torch' or 'auto'"
        )
