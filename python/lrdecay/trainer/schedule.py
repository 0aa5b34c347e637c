"""The LR schedule a :class:`TrainConfig` names, read from the one registry of schedules.

Each schedule name is defined once, in :data:`lrdecay.optim.registry.REGISTRY`: the fields it reads, the
device-side :class:`lrdecay.schedules.Schedule` the fused optimizers evaluate (FusedSGD for a run,
StackedSGD per member of a stacked model), whether it has stages, the ``torch.optim.lr_scheduler`` the
``optimizer="torch"`` baseline steps once per epoch, and for the schedules decided on the host at epoch
ends (AutoDecay, ReduceLROnPlateau, AccuracyMilestones) the decider and the number it reads.

:class:`RunSchedule` answers every question about a run's schedule from it: ``TrainConfig.lr_at_epoch`` /
``decay_epochs`` and the trainer's optimizer all go through it. What a run actually used is read from its
optimizer (the trainer logs ``optimizer.param_groups[0]["lr"]``).

Float note: the device schedules keep torch's own arithmetic where torch has a closed form or exact
recursion (``MultiStep`` equals ``MultiStepLR`` bit for bit); ``exponential`` multiplies by squaring and
``cosine`` uses the closed form, where torch's ``ExponentialLR`` / ``CosineAnnealingLR`` / ``StepLR``
recurse; they differ by float64 ulps, which the float32 cast of every SGD update almost never shows.
"""

from __future__ import annotations

from typing import Any

from lrdecay.optim.registry import REGISTRY, ScheduleSpec, spec

__all__ = ["RunSchedule", "FIXED", "HOST"]

#: Schedules known in advance (change the LR at epoch boundaries, like torch schedulers stepped per epoch).
FIXED: dict[str, ScheduleSpec] = {n: s for n, s in REGISTRY.items() if not s.is_host}
#: Schedules decided on the host at each epoch end from that epoch's numbers.
HOST: dict[str, ScheduleSpec] = {n: s for n, s in REGISTRY.items() if s.is_host}


class RunSchedule:
    """The schedule of one config (``cfg.schedule`` with its parameters)."""

    def __init__(self, cfg: Any) -> None:
        self.spec = spec(cfg.schedule)
        self.cfg = cfg
        self.name = cfg.schedule

    @property
    def host(self) -> bool:
        """Decided on the host at epoch ends (no device form; no CUDA graph for such runs)."""
        return self.spec.is_host

    def device(self, steps_per_epoch: int):
        """The device-side schedule counting optimizer steps (None for a host-side schedule)."""
        return None if self.host else self.spec.device(self.cfg, steps_per_epoch)

    def lr_at_epoch(self, epoch: int) -> float:
        """The LR of 0-based ``epoch`` (a host-side schedule: the LR before any decay)."""
        if self.host:
            return self.cfg.lr
        return self.device(1).lr_at(int(epoch))

    def decay_epochs(self) -> list[int]:
        """Stage ends: the epochs (completed) after which a staged schedule changes the LR; none for
        schedules that change it every epoch or decide on the host (read those from the run's records)."""
        if not self.spec.staged:
            return []
        lrs = [self.lr_at_epoch(e) for e in range(self.cfg.epochs)]
        return [e for e in range(1, self.cfg.epochs) if lrs[e] != lrs[e - 1]]

    def torch_scheduler(self, optimizer):
        """The ``torch.optim.lr_scheduler`` of the ``optimizer="torch"`` baseline (None: constant or host)."""
        return None if self.spec.torch is None else self.spec.torch(optimizer, self.cfg)

    def host_decay(self, optimizer):
        """The host-side decider acting on ``optimizer.param_groups`` (None for a fixed schedule)."""
        return self.spec.host(optimizer, self.cfg) if self.host else None

    def step_host_decay(self, decider, record: dict) -> None:
        """Feed the epoch's record to the decider (its LR holds from the next epoch on)."""
        decider.step(record[self.spec.reads])
