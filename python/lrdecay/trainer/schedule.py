"""The LR schedule a :class:`TrainConfig` names, defined once; everything else derives from it.

:data:`FIXED` holds, for each schedule known in advance, the one definition of its per-epoch LR: the
device-side :class:`lrdecay.schedules.Schedule` the fused optimizers evaluate (FusedSGD for a run,
StackedSGD per member of a stacked model), whether it has stages (LR drops at a few epochs, as opposed to
changing every epoch), and the ``torch.optim.lr_scheduler`` the ``optimizer="torch"`` baseline steps once
per epoch. :data:`HOST` holds the schedules decided on the host at epoch ends from the epoch's numbers
(AutoDecay, ReduceLROnPlateau, AccuracyMilestones): the object to build and the number it reads.

:class:`RunSchedule` answers every question about a run's schedule from these tables:
``TrainConfig.lr_at_epoch`` / ``decay_epochs`` and the trainer's optimizer all go through it. What a run
actually used is read from its optimizer (the trainer logs ``optimizer.param_groups[0]["lr"]``).

Float note: the device schedules keep torch's own arithmetic where torch has a closed form or exact
recursion (``MultiStep`` equals ``MultiStepLR`` bit for bit); ``exponential`` and ``cosine`` are tables
of the per-epoch closed forms. torch's recursive ``ExponentialLR`` / ``CosineAnnealingLR`` / ``StepLR``
differ from these by float64 ulps, which the float32 cast of every SGD update almost never shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["RunSchedule", "FIXED", "HOST"]


@dataclass(frozen=True)
class _Fixed:
    """A schedule known in advance: its device form for ``steps_per_epoch`` steps an epoch, whether it has
    stages, and the matching torch scheduler (None: constant)."""

    device: Callable[[Any, int], Any]
    staged: bool
    torch: Callable[[Any, Any], Any] | None


def _per_epoch_table(values: Callable[[Any, int], float]):
    """A schedule given by its per-epoch closed form: a piecewise-constant table over the run's epochs."""

    def build(cfg, spe: int):
        from lrdecay.schedules import Piecewise

        return Piecewise([e * spe for e in range(1, cfg.epochs)], [values(cfg, e) for e in range(cfg.epochs)])

    return build


def _constant(cfg, spe):
    from lrdecay.schedules import Constant

    return Constant(base_lr=cfg.lr)


def _multistep(cfg, spe):
    from lrdecay.schedules import MultiStep

    return MultiStep.from_epochs(cfg.milestones, cfg.gamma, steps_per_epoch=spe, base_lr=cfg.lr)


def _step(cfg, spe):
    from lrdecay.schedules import Step

    return Step.from_epochs(cfg.step_size, cfg.gamma, steps_per_epoch=spe, base_lr=cfg.lr)


def _torch(name: str):
    def build(opt, cfg):
        import torch

        sch = torch.optim.lr_scheduler
        if name == "multistep":
            return sch.MultiStepLR(opt, cfg.milestones, cfg.gamma)
        if name == "step":
            return sch.StepLR(opt, cfg.step_size, cfg.gamma)
        if name == "exponential":
            return sch.ExponentialLR(opt, cfg.gamma)
        return sch.CosineAnnealingLR(opt, cfg.epochs, cfg.eta_min)

    return build


#: Schedules known in advance (change the LR at epoch boundaries, like torch schedulers stepped per epoch).
FIXED: dict[str, _Fixed] = {
    "constant": _Fixed(_constant, staged=False, torch=None),
    "multistep": _Fixed(_multistep, staged=True, torch=_torch("multistep")),
    "step": _Fixed(_step, staged=True, torch=_torch("step")),
    "exponential": _Fixed(_per_epoch_table(lambda c, e: c.lr * c.gamma**e), staged=False, torch=_torch("exponential")),
    "cosine": _Fixed(
        _per_epoch_table(lambda c, e: c.eta_min + (c.lr - c.eta_min) * (1 + math.cos(math.pi * e / c.epochs)) / 2),
        staged=False, torch=_torch("cosine"),
    ),
}


@dataclass(frozen=True)
class _Host:
    """A schedule decided at epoch ends: the decider built on the optimizer, and the record key it reads."""

    build: Callable[[Any, Any], Any]
    reads: str


def _auto(opt, cfg):
    from lrdecay import schedules

    return schedules.AutoDecay(opt, gamma=cfg.gamma, window=cfg.auto_window, fraction=cfg.auto_fraction,
                               min_stage=cfg.auto_min_stage, max_decays=cfg.max_decays)


def _plateau(opt, cfg):
    import torch

    min_lr = 0.0 if cfg.max_decays is None else cfg.lr * cfg.gamma**cfg.max_decays * (1 - 1e-9)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="min", factor=cfg.gamma, patience=cfg.plateau_patience, threshold=cfg.plateau_threshold,
        threshold_mode="rel", min_lr=min_lr,
    )


def _train_acc(opt, cfg):
    from lrdecay import schedules

    return schedules.AccuracyMilestones(opt, cfg.decay_train_acc, gamma=cfg.gamma)


#: Schedules decided on the host at each epoch end from that epoch's numbers.
HOST: dict[str, _Host] = {
    "auto": _Host(_auto, reads="train_loss"),
    "plateau": _Host(_plateau, reads="train_loss"),
    "train_acc": _Host(_train_acc, reads="train_acc"),
}


class RunSchedule:
    """The schedule of one config (``cfg.schedule`` with its parameters)."""

    def __init__(self, cfg: Any) -> None:
        if cfg.schedule not in FIXED and cfg.schedule not in HOST:
            raise ValueError(f"schedule must be one of {[*FIXED, *HOST]}, got {cfg.schedule!r}")
        self.cfg = cfg
        self.name = cfg.schedule

    @property
    def host(self) -> bool:
        """Decided on the host at epoch ends (no device form; no CUDA graph for such runs)."""
        return self.name in HOST

    def device(self, steps_per_epoch: int):
        """The device-side schedule counting optimizer steps (None for a host-side schedule)."""
        return None if self.host else FIXED[self.name].device(self.cfg, steps_per_epoch)

    def lr_at_epoch(self, epoch: int) -> float:
        """The LR of 0-based ``epoch`` (a host-side schedule: the LR before any decay)."""
        if self.host:
            return self.cfg.lr
        return self.device(1).lr_at(int(epoch))

    def decay_epochs(self) -> list[int]:
        """Stage ends: the epochs (completed) after which a staged schedule changes the LR; none for
        schedules that change it every epoch or decide on the host (read those from the run's records)."""
        if self.host or not FIXED[self.name].staged:
            return []
        lrs = [self.lr_at_epoch(e) for e in range(self.cfg.epochs)]
        return [e for e in range(1, self.cfg.epochs) if lrs[e] != lrs[e - 1]]

    def torch_scheduler(self, optimizer):
        """The ``torch.optim.lr_scheduler`` of the ``optimizer="torch"`` baseline (None: constant or host)."""
        if self.host or FIXED[self.name].torch is None:
            return None
        return FIXED[self.name].torch(optimizer, self.cfg)

    def host_decay(self, optimizer):
        """The host-side decider acting on ``optimizer.param_groups`` (None for a fixed schedule)."""
        return HOST[self.name].build(optimizer, self.cfg) if self.host else None

    def step_host_decay(self, decider, record: dict) -> None:
        """Feed the epoch's record to the decider (its LR holds from the next epoch on)."""
        decider.step(record[HOST[self.name].reads])
