"""The device LR table: schedule codes and the step counter that the Triton kernels read.

A :class:`lrdecay.schedules.ScheduleCode` becomes an int64 and a float64 device tensor
(:func:`device_code`); the step counter is an int64 one-element tensor on the device with an int32 arrival
counter beside it (:func:`step_counter`), advanced by the kernel itself, so a scheduled step needs no host
sync and can be captured in a CUDA graph. :class:`MemberTable` packs one code per member of a stacked
model into one table (``meta[m] = (kind, warmup, ints offset, floats offset)``).
"""

from __future__ import annotations

from typing import Sequence

import torch

from lrdecay.schedules import Constant, ScheduleCode

__all__ = ["DeviceCode", "MemberTable", "device_code", "step_counter"]

#: ``(kind, warmup, ints, floats)``: a ScheduleCode with its tables on a device.
DeviceCode = tuple[int, bool, torch.Tensor, torch.Tensor]


def device_code(code: ScheduleCode, device: torch.device) -> DeviceCode:
    """``code`` with its int and float tables as int64 / float64 tensors on ``device``."""
    si = torch.tensor(code.ints, dtype=torch.int64, device=device)
    sf = torch.tensor(code.floats, dtype=torch.float64, device=device)
    return code.kind, code.warmup, si, sf


def step_counter(step: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(step, arrive)``: the int64 step counter holding ``step`` and the int32 arrival counter (zero
    between launches) on ``device``."""
    return (torch.full((1,), int(step), dtype=torch.int64, device=device),
            torch.zeros(1, dtype=torch.int32, device=device))


def constant_code(lr: float) -> ScheduleCode:
    """The code of a constant LR (what a member without a device schedule runs)."""
    return Constant().encode(float(lr))


class MemberTable:
    """One schedule code per member, packed into device tables: ``meta`` int64 (M, 4) = kind, warmup,
    offset into ``ints`` (int64), offset into ``floats`` (float64). A member's code can be swapped for a
    constant LR of the same shape in place (:meth:`set_constant`), which is how a host-side schedule
    changes a member's LR without rebuilding the tables (or recapturing a CUDA graph)."""

    def __init__(self, codes: Sequence[ScheduleCode], device: torch.device) -> None:
        self.codes = list(codes)
        meta, ints, floats = [], [], []
        self.float_offsets: list[int] = []
        for code in self.codes:
            self.float_offsets.append(len(floats))
            meta.append((code.kind, int(code.warmup), len(ints), len(floats)))
            ints.extend(code.ints)
            floats.extend(code.floats)
        self.meta = torch.tensor(meta, dtype=torch.int64, device=device)
        self.ints = torch.tensor(ints, dtype=torch.int64, device=device)
        self.floats = torch.tensor(floats, dtype=torch.float64, device=device)

    def set_constant(self, m: int, lr: float) -> None:
        """Make member ``m`` (whose code is a constant) run at ``lr`` from the next step on."""
        self.codes[m] = constant_code(lr)
        with torch.no_grad():
            # A constant is a one-value PIECEWISE code: floats = [warmup start, value].
            self.floats[self.float_offsets[m] + 1] = float(lr)
