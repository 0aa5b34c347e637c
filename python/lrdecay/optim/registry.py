"""The schedules a training run can name (``TrainConfig.schedule``), each declared once.

A :class:`ScheduleSpec` says, for one name: the config fields it reads (besides ``lr`` and ``epochs``,
which every schedule may read), its device encoding (the :class:`lrdecay.schedules.Schedule` the fused
optimizers evaluate, counting optimizer steps), its ``torch.optim.lr_scheduler`` equivalent (what the
``optimizer="torch"`` baseline steps once per epoch), and, for a schedule decided on the host at epoch
ends, its decider (:mod:`lrdecay.host_decay`, or torch's ``ReduceLROnPlateau``) and the epoch number the
decider reads. :data:`REGISTRY` holds them all; the trainer's :class:`~lrdecay.trainer.schedule.RunSchedule`,
the config's list of names and the experiment runner's unused-field rule are read from it.

Field names are :class:`~lrdecay.trainer.TrainConfig` field names exactly; a ``cfg`` below is anything with
those attributes. Every device schedule changes the LR at epoch boundaries only, like a torch scheduler
stepped once per epoch (:func:`per_epoch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from lrdecay import schedules as S
from lrdecay.host_decay import AccuracyMilestones, AutoDecay

__all__ = [
    "REGISTRY",
    "ScheduleSpec",
    "all_fields",
    "fields_of",
    "host_names",
    "host_only_fields",
    "device_names",
    "per_epoch",
    "readers_of",
    "spec",
]


@dataclass(frozen=True)
class ScheduleSpec:
    """One schedule name's definition.

    Attributes:
        name: the ``TrainConfig.schedule`` value.
        fields: the config fields it reads besides ``lr`` and ``epochs``.
        staged: the LR drops at a few epochs (stages), as opposed to changing every epoch.
        device: ``(cfg, steps_per_epoch) -> Schedule`` counting optimizer steps; None for a host schedule.
        torch: ``(optimizer, cfg) -> torch LR scheduler`` stepped once per epoch; None for a constant LR
            (and for host schedules, whose decider is the same object for both optimizers).
        host: ``(optimizer, cfg) -> decider`` with ``step(value)`` called once per epoch; None for a device
            schedule.
        reads: the epoch record key whose value the host decider is stepped with (``train_loss``, ...).
    """

    name: str
    fields: tuple[str, ...]
    staged: bool = False
    device: Callable[[Any, int], S.Schedule] | None = None
    torch: Callable[[Any, Any], Any] | None = None
    host: Callable[[Any, Any], Any] | None = None
    reads: str | None = None

    @property
    def is_host(self) -> bool:
        """Decided on the host at epoch ends (no device form)."""
        return self.host is not None


def per_epoch(schedule: S.Schedule, *, steps_per_epoch: int, epochs: int) -> S.Piecewise:
    """``schedule`` with its step counted in epochs: epoch ``e``'s LR is ``schedule.lr_at(e)`` for every step
    of that epoch, over a run of ``epochs`` epochs (held after the last)."""
    return S.Piecewise([e * steps_per_epoch for e in range(1, epochs)], [schedule.lr_at(e) for e in range(epochs)])


def _auto(opt, cfg):
    return AutoDecay(opt, gamma=cfg.gamma, window=cfg.auto_window, fraction=cfg.auto_fraction,
                     min_stage=cfg.auto_min_stage, max_decays=cfg.max_decays)


def _lr_scheduler():
    import torch

    return torch.optim.lr_scheduler


def _plateau(opt, cfg):
    min_lr = 0.0 if cfg.max_decays is None else cfg.lr * cfg.gamma**cfg.max_decays * (1 - 1e-9)
    return _lr_scheduler().ReduceLROnPlateau(
        opt, mode="min", factor=cfg.gamma, patience=cfg.plateau_patience, threshold=cfg.plateau_threshold,
        threshold_mode="rel", min_lr=min_lr,
    )


_SPECS = (
    ScheduleSpec(
        "constant", (),
        device=lambda cfg, spe: S.Constant(base_lr=cfg.lr),
    ),
    ScheduleSpec(
        "multistep", ("milestones", "gamma"), staged=True,
        device=lambda cfg, spe: S.MultiStep.from_epochs(cfg.milestones, cfg.gamma, steps_per_epoch=spe, base_lr=cfg.lr),
        torch=lambda opt, cfg: _lr_scheduler().MultiStepLR(opt, cfg.milestones, cfg.gamma),
    ),
    ScheduleSpec(
        "step", ("step_size", "gamma"), staged=True,
        device=lambda cfg, spe: S.Step.from_epochs(cfg.step_size, cfg.gamma, steps_per_epoch=spe, base_lr=cfg.lr),
        torch=lambda opt, cfg: _lr_scheduler().StepLR(opt, cfg.step_size, cfg.gamma),
    ),
    ScheduleSpec(
        # ×gamma once per epoch: a Step of one epoch (S.Exponential would decay within the epoch too).
        "exponential", ("gamma",),
        device=lambda cfg, spe: S.Step.from_epochs(1, cfg.gamma, steps_per_epoch=spe, base_lr=cfg.lr),
        torch=lambda opt, cfg: _lr_scheduler().ExponentialLR(opt, cfg.gamma),
    ),
    ScheduleSpec(
        "cosine", ("eta_min",),
        device=lambda cfg, spe: per_epoch(S.Cosine(cfg.epochs, cfg.eta_min, base_lr=cfg.lr),
                                          steps_per_epoch=spe, epochs=cfg.epochs),
        torch=lambda opt, cfg: _lr_scheduler().CosineAnnealingLR(opt, cfg.epochs, cfg.eta_min),
    ),
    ScheduleSpec(
        "auto", ("gamma", "auto_window", "auto_fraction", "auto_min_stage", "max_decays"),
        host=_auto, reads="train_loss",
    ),
    ScheduleSpec(
        # the same test on the error of a held-out split of the training set (TrainConfig.val_fraction):
        # the training loss keeps falling while noisy labels are memorized, the validation error does not
        "auto_val", ("gamma", "auto_window", "auto_fraction", "auto_min_stage", "max_decays"),
        host=_auto, reads="val_error",
    ),
    ScheduleSpec(
        "plateau", ("gamma", "plateau_patience", "plateau_threshold", "max_decays"),
        host=_plateau, reads="train_loss",
    ),
    ScheduleSpec(
        "train_acc", ("gamma", "decay_train_acc"),
        host=lambda opt, cfg: AccuracyMilestones(opt, cfg.decay_train_acc, gamma=cfg.gamma),
        reads="train_acc",
    ),
)

#: Every schedule name → its spec; device schedules first, in the order the CLI lists them.
REGISTRY: dict[str, ScheduleSpec] = {s.name: s for s in _SPECS}


def spec(name: str) -> ScheduleSpec:
    """The spec of schedule ``name`` (ValueError naming the known ones otherwise)."""
    if name not in REGISTRY:
        raise ValueError(f"schedule must be one of {list(REGISTRY)}, got {name!r}")
    return REGISTRY[name]


def device_names() -> tuple[str, ...]:
    """The schedules known in advance (a device form), in registry order."""
    return tuple(n for n, s in REGISTRY.items() if not s.is_host)


def host_names() -> tuple[str, ...]:
    """The schedules decided on the host at epoch ends, in registry order."""
    return tuple(n for n, s in REGISTRY.items() if s.is_host)


def fields_of(name: str) -> tuple[str, ...]:
    """The config fields schedule ``name`` reads (besides ``lr`` and ``epochs``)."""
    return spec(name).fields


def readers_of(field: str) -> tuple[str, ...]:
    """The schedules that read config field ``field``, in registry order (empty for a field none reads)."""
    return tuple(n for n, s in REGISTRY.items() if field in s.fields)


def all_fields() -> frozenset[str]:
    """Every config field some schedule reads (besides ``lr`` and ``epochs``)."""
    return frozenset(f for s in REGISTRY.values() for f in s.fields)


def host_only_fields() -> frozenset[str]:
    """The fields only host-decided schedules read: for any other schedule they are unused."""
    device = {f for s in REGISTRY.values() if not s.is_host for f in s.fields}
    return frozenset(f for s in REGISTRY.values() if s.is_host for f in s.fields) - device
