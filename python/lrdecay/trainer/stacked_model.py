"""Stacked models: K models of one architecture as one module, members on dim 0.

:class:`StackedMLP` holds K :class:`lrdecay.models.MLP` s: input ``(K, B, D)``, logits ``(K, B, C)``.
Linear layers are batched matrix products (``torch.bmm`` / ``torch.baddbmm``) over the member dim;
BatchNorm keeps per-member running statistics by normalizing the ``(B, K·C)`` view, one channel per
member and unit, with ``F.batch_norm``. On the CPU each member's slice of these ops computes the very
same floating-point operations as the solo model's ``F.linear`` / ``F.batch_norm`` (checked bitwise in
the tests), so a stacked member's numbers equal its solo run's.

Other architectures (the ResNets) are not stacked: the sweep trains them alone (one per task), and the
process and Ray executors run them side by side. A grouped-convolution or ``torch.func`` version would go
here, behind the same interface (:meth:`load_member` / :meth:`member_state_dict`).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lrdecay.models import ACTIVATIONS, MLP

__all__ = ["StackedMLP", "stack_models"]


class _StackedLinear(torch.autograd.Function):
    """``y[k] = x[k] @ w[k]^T (+ b[k])`` whose backward computes the same products as ``F.linear``'s: the
    weight gradient as ``grad^T @ x`` (torch's ``mm_mat2_backward`` for ``weight.t()``), where plain
    ``bmm`` autograd would compute ``x^T @ grad`` and round differently from a solo run."""

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        wt = w.transpose(1, 2)
        return torch.bmm(x, wt) if b is None else torch.baddbmm(b.unsqueeze(1), x, wt)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        gx = torch.bmm(grad, w) if ctx.needs_input_grad[0] else None
        gw = torch.bmm(grad.transpose(1, 2), x) if ctx.needs_input_grad[1] else None
        gb = grad.sum(1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb


class StackedMLP(nn.Module):
    """K MLPs of one architecture, trained as one module (see the module docstring).

    Build with :meth:`from_models` (copies each member's parameters and buffers); read a member back as
    a solo state dict with :meth:`member_state_dict`, write one with :meth:`load_member`.
    """

    def __init__(self, template: MLP, members: int) -> None:
        super().__init__()
        if not isinstance(template, MLP):
            raise TypeError(f"template must be a lrdecay.models.MLP, got {type(template).__name__}")
        if isinstance(members, bool) or not isinstance(members, int) or members < 1:
            raise ValueError(f"members must be an int >= 1, got {members!r}")
        K = self.members = members
        self.in_features = template.in_features
        self.n_classes = template.n_classes
        # The body as a list of ops: ("linear", i), ("bn", i), ("act", module); names map to the solo keys.
        self.ops: list[tuple[str, object]] = []
        self._solo_keys: list[tuple[str, str, str]] = []  # (stacked name, solo state-dict key, kind)
        n_lin = n_bn = 0
        for idx, mod in enumerate(template.body):
            if isinstance(mod, nn.Linear):
                w = nn.Parameter(torch.empty(K, *mod.weight.shape, dtype=mod.weight.dtype))
                self.register_parameter(f"w{n_lin}", w)
                self._solo_keys.append((f"w{n_lin}", f"body.{idx}.weight", "param"))
                if mod.bias is not None:
                    self.register_parameter(f"b{n_lin}", nn.Parameter(torch.empty(K, *mod.bias.shape)))
                    self._solo_keys.append((f"b{n_lin}", f"body.{idx}.bias", "param"))
                self.ops.append(("linear", n_lin))
                n_lin += 1
            elif isinstance(mod, nn.BatchNorm1d):
                if not (mod.affine and mod.track_running_stats) or mod.momentum is None:
                    raise ValueError("StackedMLP supports BatchNorm1d with affine=True, running statistics and a momentum")
                C = mod.num_features
                self.register_parameter(f"bn{n_bn}_weight", nn.Parameter(torch.empty(K, C)))
                self.register_parameter(f"bn{n_bn}_bias", nn.Parameter(torch.empty(K, C)))
                self.register_buffer(f"bn{n_bn}_mean", torch.zeros(K, C))
                self.register_buffer(f"bn{n_bn}_var", torch.ones(K, C))
                self.register_buffer(f"bn{n_bn}_tracked", torch.zeros((), dtype=torch.long))
                for suffix, key, kind in (("weight", "weight", "param"), ("bias", "bias", "param"),
                                          ("mean", "running_mean", "buffer"), ("var", "running_var", "buffer"),
                                          ("tracked", "num_batches_tracked", "shared")):
                    self._solo_keys.append((f"bn{n_bn}_{suffix}", f"body.{idx}.{key}", kind))
                self.ops.append(("bn", (n_bn, mod.momentum, mod.eps)))
                n_bn += 1
            elif type(mod) in ACTIVATIONS.values():
                self.ops.append(("act", type(mod)()))
            else:
                raise ValueError(f"StackedMLP cannot stack a {type(mod).__name__} layer")
        self.head_w = nn.Parameter(torch.empty(K, *template.head.weight.shape))
        self.head_b = nn.Parameter(torch.empty(K, *template.head.bias.shape))
        self._solo_keys += [("head_w", "head.weight", "param"), ("head_b", "head.bias", "param")]

    # ------------------------------------------------------------------ members
    @classmethod
    def from_models(cls, models: Sequence[MLP]) -> "StackedMLP":
        """Stack ``models`` (same architecture): member m starts as a copy of ``models[m]``."""
        models = list(models)
        if not models:
            raise ValueError("from_models needs at least one model")
        stacked = cls(models[0], len(models))
        keys = set(models[0].state_dict())
        for i, m in enumerate(models):
            sd = m.state_dict()
            if set(sd) != keys or any(sd[k].shape != models[0].state_dict()[k].shape for k in keys):
                raise ValueError(f"models[{i}] has another architecture than models[0]")
            stacked.load_member(i, sd)
        return stacked

    def load_member(self, m: int, state_dict: dict[str, torch.Tensor]) -> None:
        """Write a solo :class:`MLP` state dict into member ``m``."""
        with torch.no_grad():
            for name, key, kind in self._solo_keys:
                t = getattr(self, name)
                v = state_dict[key]
                if kind == "shared":
                    t.copy_(v)
                else:
                    t[m].copy_(v.to(t.dtype))

    def member_state_dict(self, m: int) -> dict[str, torch.Tensor]:
        """Member ``m`` as a solo :class:`MLP` state dict (CPU copies), loadable into ``make_model(...)``."""
        out = {}
        for name, key, kind in self._solo_keys:
            t = getattr(self, name).detach()
            out[key] = (t if kind == "shared" else t[m]).cpu().clone()
        return out

    def store_member(self, m: int, model: nn.Module) -> None:
        """Copy member ``m`` into the solo ``model`` (an :class:`MLP` of the same architecture) in place:
        its tensors keep their identity, so an optimizer holding them stays valid."""
        target = model.state_dict()
        with torch.no_grad():
            for name, key, kind in self._solo_keys:
                src = getattr(self, name)
                target[key].copy_(src if kind == "shared" else src[m])

    def member_parameter_order(self) -> list[str]:
        """Stacked parameter names in the order of the solo model's ``parameters()`` (optimizer state)."""
        return [name for name, _key, kind in self._solo_keys if kind == "param"]

    # ------------------------------------------------------------------ forward
    def _bn(self, h: torch.Tensor, i: int, momentum: float, eps: float) -> torch.Tensor:
        K, B, C = h.shape
        flat = h.transpose(0, 1).reshape(B, K * C)
        mean, var = getattr(self, f"bn{i}_mean"), getattr(self, f"bn{i}_var")
        if self.training:
            getattr(self, f"bn{i}_tracked").add_(1)
        y = F.batch_norm(
            flat, mean.view(-1), var.view(-1), getattr(self, f"bn{i}_weight").reshape(-1),
            getattr(self, f"bn{i}_bias").reshape(-1), self.training, momentum, eps,
        )
        return y.view(B, K, C).transpose(0, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations ``(K, B, width)`` for inputs ``(K, B, ...)``."""
        h = x.reshape(x.shape[0], x.shape[1], -1)
        for kind, arg in self.ops:
            if kind == "linear":
                h = _StackedLinear.apply(h, getattr(self, f"w{arg}"), getattr(self, f"b{arg}", None))
            elif kind == "bn":
                i, momentum, eps = arg
                h = self._bn(h, i, momentum, eps)
            else:
                h = arg(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _StackedLinear.apply(self.features(x), self.head_w, self.head_b)


def stack_models(models: Sequence[nn.Module]) -> StackedMLP:
    """Stack solo models of one architecture (MLPs), or raise ValueError naming what cannot be stacked."""
    for i, m in enumerate(models):
        if not isinstance(m, MLP):
            raise ValueError(f"models[{i}] is a {type(m).__name__}: only lrdecay.models.MLP can be stacked")
    return StackedMLP.from_models(models)
