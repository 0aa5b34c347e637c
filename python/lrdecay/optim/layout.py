"""The flat parameter layout: parameters, gradients and momentum buffers re-homed into contiguous buffers.

``p.data`` and ``p.grad`` become views of one flat parameter and one flat gradient buffer, so the model
and autograd keep working on them while an optimizer step is one pass (one kernel launch) over the
buffers. :class:`Bucket` holds the parameters of one (param group, device, dtype) of
:class:`~lrdecay.optim.FusedSGD`; :class:`StackedLayout` the ``(K, ...)`` parameters of a stacked model
(:class:`~lrdecay.optim.StackedSGD`), one contiguous segment per parameter.
"""

from __future__ import annotations

import torch

__all__ = ["Bucket", "StackedLayout", "offsets_of", "rehome_flat"]


def offsets_of(sizes: list[int]) -> list[int]:
    """Prefix sums ``[0, s0, s0 + s1, ...]``: where each of ``sizes`` starts, and the total at the end."""
    offsets = [0]
    for n in sizes:
        offsets.append(offsets[-1] + n)
    return offsets


def rehome_flat(params: list[torch.Tensor], offsets: list[int]):
    """Move ``params`` (one dtype and device) into one flat parameter and one flat gradient buffer:
    parameter ``i`` becomes the view ``[offsets[i], offsets[i+1])`` of each (``p.data`` and ``p.grad`` are
    the views, so the model and autograd keep working on them). Returns ``(flat_p, flat_g, p_views,
    g_views)``."""
    ref = params[0]
    with torch.no_grad():
        flat_p = torch.empty(offsets[-1], dtype=ref.dtype, device=ref.device)
        flat_g = torch.zeros(offsets[-1], dtype=ref.dtype, device=ref.device)
        p_views, g_views = [], []
        for p, a, b in zip(params, offsets, offsets[1:]):
            pv = flat_p[a:b].view(p.shape)
            pv.copy_(p.detach())
            gv = flat_g[a:b].view(p.shape)
            if p.grad is not None:
                gv.copy_(p.grad.detach())
            p.data = pv
            p.grad = gv
            p_views.append(pv)
            g_views.append(gv)
    return flat_p, flat_g, p_views, g_views


def restore_grad_views(params: list[torch.Tensor], g_views: list[torch.Tensor]) -> None:
    """Point every ``p.grad`` back at its view of the flat gradient buffer (after ``p.grad = None``)."""
    for p, gv in zip(params, g_views):
        if p.grad is not gv:
            p.grad = gv


class Bucket:
    """The parameters of one (group, device, dtype) of FusedSGD, re-homed into flat buffers (triton backend).

    The momentum buffer is allocated on first use; ``has_buf[i]`` says whether parameter ``i``'s momentum
    holds state (its first momentum step has run)."""

    def __init__(self, params: list[torch.Tensor]) -> None:
        self.params = params
        self.sizes = [p.numel() for p in params]
        self.offsets = offsets_of(self.sizes)
        self.flat_p, self.flat_g, self.p_views, self.g_views = rehome_flat(params, self.offsets)
        self.flat_m: torch.Tensor | None = None
        self.m_views: list[torch.Tensor] = []
        self.has_buf = [False] * len(params)
        self.all_have_buf = False

    def ensure_momentum(self) -> None:
        """Allocate the flat momentum buffer (zeros) and its per-parameter views, once."""
        if self.flat_m is None:
            self.flat_m = torch.zeros_like(self.flat_p)
            self.m_views = [self.flat_m[a:b].view(p.shape) for p, a, b in zip(self.params, self.offsets, self.offsets[1:])]

    def check_storage(self) -> None:
        """Raise if a parameter's storage was replaced after re-homing (the step would miss it)."""
        for i in (0, len(self.params) - 1):
            if self.params[i].data_ptr() != self.p_views[i].data_ptr():
                raise RuntimeError(
                    "FusedSGD: a parameter's storage was replaced after the optimizer re-homed it "
                    "(e.g. model.to() after creating the optimizer); create the optimizer after moving the model"
                )


class StackedLayout:
    """The ``(K, ...)`` parameters of a stacked model in flat buffers: one segment per parameter, each
    contiguous with the members on dim 0, so the parameters stay ordinary contiguous tensors (views of the
    flat buffer) and member ``m``'s elements of segment ``j`` are one contiguous run."""

    def __init__(self, params: list[torch.Tensor], members: int, *, momentum: bool) -> None:
        self.members = members
        self.params = params
        self.sizes = [p[0].numel() for p in params]
        self.offsets = offsets_of([members * n for n in self.sizes])
        self.flat_p, self.flat_g, self.p_views, self.g_views = rehome_flat(params, self.offsets)
        self.flat_m = torch.zeros_like(self.flat_p) if momentum else None
        self._addresses: list[tuple] | None = None

    def member_runs(self, m: int) -> list[tuple[int, int]]:
        """(start, length) of member ``m``'s element runs in the flat buffers, one per parameter."""
        return [(a + m * n, n) for a, n in zip(self.offsets, self.sizes)]

    def member_views(self, flat: torch.Tensor, m: int) -> list[torch.Tensor]:
        """Member ``m``'s runs of ``flat`` (one of the flat buffers) as 1-D views."""
        return [flat[a : a + n] for a, n in self.member_runs(m)]

    def native_addresses(self) -> list[tuple]:
        """Per member: the addresses of its runs in the flat p, g and m buffers and their lengths (the
        buffers are never reallocated, so computed once)."""
        if self._addresses is None:
            esz = self.flat_p.element_size()
            bp, bg = self.flat_p.data_ptr(), self.flat_g.data_ptr()
            bm = self.flat_m.data_ptr() if self.flat_m is not None else None
            out = []
            for m in range(self.members):
                runs = self.member_runs(m)
                out.append(([bp + a * esz for a, _ in runs], [bg + a * esz for a, _ in runs],
                            None if bm is None else [bm + a * esz for a, _ in runs], [n for _, n in runs]))
            self._addresses = out
        return self._addresses

    def check_and_pull_grads(self) -> None:
        """Raise if a parameter's storage was replaced or its gradient set to None; copy gradients assigned
        from outside (``p.grad = tensor``) into the flat gradient buffer."""
        for p, pv, gv in zip(self.params, self.p_views, self.g_views):
            if p.data_ptr() != pv.data_ptr():
                raise RuntimeError("StackedSGD: a parameter's storage was replaced after the optimizer re-homed it")
            if p.grad is not gv:
                if p.grad is None:
                    raise RuntimeError("StackedSGD: a parameter's gradient was set to None; use zero_grad()")
                gv.copy_(p.grad)
                p.grad = gv
