"""Learning-rate schedules that count optimizer steps and can be evaluated on the device.

Every schedule is a pure function of the optimizer step ``t`` (0 for the first ``step()`` call) and a base
learning rate. :meth:`Schedule.lr_at` evaluates it on the host. :meth:`Schedule.encode` turns it, for one
base LR, into a :class:`ScheduleCode`: one of three device forms that the Triton SGD kernel evaluates from
an int64 step counter living on the device, so the LR changes without a host sync and without recompiling:

- ``PIECEWISE``: ``values[#{b in boundaries : b <= t}]`` (Constant, MultiStep, Piecewise);
- ``GEOMETRIC``: ``base * gamma ** (t // period)`` (Step, Exponential), the power by squaring;
- ``PERIODIC``: a table over one half period, mirrored (Cosine, whose LR has period ``2 * t_max``);

optionally wrapped in a linear warmup (:class:`Warmup`). :meth:`Schedule.lr_at` evaluates the very same
code with the very same float64 operations as the kernel, so the host value (what ``group['lr']`` shows)
and the device value are the same double.

Parity with ``torch.optim.lr_scheduler``: ``MultiStep`` equals ``MultiStepLR`` exactly (its value table is
built with the same recursive products); ``Cosine`` uses the closed form, which ``CosineAnnealingLR``
follows recursively (differences of a few float64 ulps, ~1e-15 relative); ``Step``/``Exponential`` use
exponentiation by squaring where torch multiplies once per decay (again float64-ulp differences). After the
cast to float32 that every SGD update applies to the LR, these differences essentially never show.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from numbers import Real
from typing import Sequence

from lrdecay._validate import check_int as _check_int
from lrdecay._validate import check_real

__all__ = [
    "Schedule",
    "ScheduleCode",
    "Constant",
    "Step",
    "MultiStep",
    "Exponential",
    "Cosine",
    "Warmup",
    "Piecewise",
    "PIECEWISE",
    "GEOMETRIC",
    "PERIODIC",
    "AutoDecay",
    "AccuracyMilestones",
    "line_fit",
    "t95",
]

PIECEWISE = 1
GEOMETRIC = 2
PERIODIC = 3

# A cosine table of 2**24 float64 entries is 128 MiB; larger periods are almost surely a unit mistake.
_MAX_T_MAX = 1 << 24


def _check_float(name: str, value, *, low: float = 0.0, low_open: bool = False) -> float:
    return check_real(name, value, low, lo_open=low_open)


def _check_base(base_lr) -> float | None:
    return None if base_lr is None else _check_float("base_lr", base_lr)


def _check_steps_per_epoch(steps_per_epoch) -> int:
    return _check_int("steps_per_epoch", steps_per_epoch, 1)


def ipow(x: float, k: int) -> float:
    """``x ** k`` for an int ``k >= 0`` by squaring, in the exact float64 operation order of the kernel."""
    r = 1.0
    while k > 0:
        if k & 1:
            r = r * x
        x = x * x
        k >>= 1
    return r


@dataclass(frozen=True)
class ScheduleCode:
    """A schedule bound to one base LR, in the form the device evaluates.

    ``ints`` and ``floats`` become an int64 and a float64 device tensor. Layout (index 0 is the warmup):
    ``ints = [warmup_steps, *kind_ints]``, ``floats = [warmup_start_factor, *kind_floats]``;
    ``PIECEWISE``: ``kind_ints = [n, b_1..b_n]`` (sorted boundaries), ``kind_floats = [v_0..v_n]``;
    ``GEOMETRIC``: ``kind_ints = [period]``, ``kind_floats = [base, gamma]``;
    ``PERIODIC``: ``kind_ints = [T]``, ``kind_floats = [lr(0)..lr(T)]`` (lr has period ``2T``, mirrored).
    """

    kind: int
    warmup: bool
    ints: tuple[int, ...]
    floats: tuple[float, ...]

    def lr_at(self, t: int) -> float:
        """The LR at step ``t``, with the kernel's float64 operations in the kernel's order."""
        ints, floats = self.ints, self.floats
        if self.warmup and t < ints[0]:
            warm, start = ints[0], floats[0]
            return self._inner(0) * (start + (1.0 - start) * float(t) / float(warm))
        return self._inner(t - ints[0] if self.warmup else t)

    def _inner(self, t: int) -> float:
        ints, floats = self.ints, self.floats
        if self.kind == PIECEWISE:
            n = ints[1]
            return floats[1 + bisect_right(ints[2 : 2 + n], t)]
        if self.kind == GEOMETRIC:
            return floats[1] * ipow(floats[2], t // ints[1])
        period = ints[1]
        r = t % (2 * period)
        if r > period:
            r = 2 * period - r
        return floats[1 + r]


class Schedule(ABC):
    """Base class: a learning rate as a function of the optimizer step.

    ``base_lr=None`` means "the optimizer group's LR" when attached to :class:`lrdecay.optim.FusedSGD`
    (its ``initial_lr``); pass ``base_lr`` to :meth:`lr_at` otherwise.
    """

    base_lr: float | None

    def __init__(self, *, base_lr: float | None = None) -> None:
        self.base_lr = _check_base(base_lr)
        self._codes: dict[float, ScheduleCode] = {}

    def resolve_base(self, base_lr: float | None = None) -> float:
        """The base LR this schedule uses: its own ``base_lr`` if set, else the argument."""
        if self.base_lr is not None:
            return self.base_lr
        if base_lr is None:
            raise ValueError(
                f"{type(self).__name__} has no base_lr: pass base_lr= to the schedule or to lr_at()"
            )
        return _check_float("base_lr", base_lr)

    def encode(self, base_lr: float | None = None) -> ScheduleCode:
        """The device form of this schedule for the resolved base LR (cached per base)."""
        base = self.resolve_base(base_lr)
        code = self._codes.get(base)
        if code is None:
            code = self._encode(base)
            self._codes[base] = code
        return code

    def lr_at(self, step: int, base_lr: float | None = None) -> float:
        """The LR used by optimizer step ``step`` (0-based), identical to the device value."""
        step = _check_int("step", step, 0)
        return self.encode(base_lr).lr_at(step)

    @abstractmethod
    def _encode(self, base: float) -> ScheduleCode: ...

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


def _piecewise(boundaries: Sequence[int], values: Sequence[float]) -> ScheduleCode:
    return ScheduleCode(PIECEWISE, False, (0, len(boundaries), *boundaries), (0.0, *values))


class Constant(Schedule):
    """A constant LR (the base)."""

    def __init__(self, *, base_lr: float | None = None) -> None:
        super().__init__(base_lr=base_lr)

    def _encode(self, base: float) -> ScheduleCode:
        return _piecewise((), (base,))

    @classmethod
    def from_epochs(cls, *, steps_per_epoch: int, base_lr: float | None = None) -> Constant:
        """Same as ``Constant()``; present so every schedule has ``from_epochs``."""
        _check_steps_per_epoch(steps_per_epoch)
        return cls(base_lr=base_lr)


class Step(Schedule):
    """``base * gamma ** (t // step_size)``, like ``torch.optim.lr_scheduler.StepLR``."""

    def __init__(self, step_size: int, gamma: float = 0.1, *, base_lr: float | None = None) -> None:
        self.step_size = _check_int("step_size", step_size, 1)
        self.gamma = _check_float("gamma", gamma)
        super().__init__(base_lr=base_lr)

    def _encode(self, base: float) -> ScheduleCode:
        return ScheduleCode(GEOMETRIC, False, (0, self.step_size), (0.0, base, self.gamma))

    @classmethod
    def from_epochs(
        cls, step_size: int, gamma: float = 0.1, *, steps_per_epoch: int, base_lr: float | None = None
    ) -> Step:
        """``step_size`` given in epochs."""
        spe = _check_steps_per_epoch(steps_per_epoch)
        return cls(_check_int("step_size", step_size, 1) * spe, gamma, base_lr=base_lr)


class MultiStep(Schedule):
    """``base * gamma ** #{m in milestones : m <= t}``, like ``MultiStepLR`` (repeated milestones count twice)."""

    def __init__(self, milestones: Sequence[int], gamma: float = 0.1, *, base_lr: float | None = None) -> None:
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            raise TypeError(f"milestones must be a sequence of ints >= 0, got {type(milestones).__name__}")
        self.milestones = sorted(_check_int("milestones[i]", m, 0) for m in milestones)
        self.gamma = _check_float("gamma", gamma)
        super().__init__(base_lr=base_lr)

    def _encode(self, base: float) -> ScheduleCode:
        counts = Counter(self.milestones)
        bounds = sorted(counts)
        values = [base]
        # MultiStepLR's own recursion: lr <- lr * gamma ** (multiplicity of this milestone).
        for b in bounds:
            values.append(values[-1] * self.gamma ** counts[b])
        return _piecewise(bounds, values)

    @classmethod
    def from_epochs(
        cls,
        milestones: Sequence[int],
        gamma: float = 0.1,
        *,
        steps_per_epoch: int,
        base_lr: float | None = None,
    ) -> MultiStep:
        """Milestones given in epochs (the paper decays at epochs): each becomes ``epoch * steps_per_epoch``."""
        spe = _check_steps_per_epoch(steps_per_epoch)
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            raise TypeError(f"milestones must be a sequence of ints >= 0, got {type(milestones).__name__}")
        return cls([_check_int("milestones[i]", m, 0) * spe for m in milestones], gamma, base_lr=base_lr)


class Exponential(Schedule):
    """``base * gamma ** t``, like ``ExponentialLR``."""

    def __init__(self, gamma: float, *, base_lr: float | None = None) -> None:
        self.gamma = _check_float("gamma", gamma)
        super().__init__(base_lr=base_lr)

    def _encode(self, base: float) -> ScheduleCode:
        return ScheduleCode(GEOMETRIC, False, (0, 1), (0.0, base, self.gamma))

    @classmethod
    def from_epochs(cls, gamma: float, *, steps_per_epoch: int, base_lr: float | None = None) -> Exponential:
        """``gamma`` per epoch, applied smoothly: the per-step factor is ``gamma ** (1 / steps_per_epoch)``.

        (For a decay once per epoch, use ``Step.from_epochs(1, gamma, ...)``.)
        """
        spe = _check_steps_per_epoch(steps_per_epoch)
        return cls(_check_float("gamma", gamma) ** (1.0 / spe), base_lr=base_lr)


class Cosine(Schedule):
    """``eta_min + (base - eta_min) * (1 + cos(pi * t / t_max)) / 2``, like ``CosineAnnealingLR``.

    Past ``t_max`` it rises again (period ``2 * t_max``), as torch's does. torch computes it recursively;
    this is the closed form (agreement to a few float64 ulps).
    """

    def __init__(self, t_max: int, eta_min: float = 0.0, *, base_lr: float | None = None) -> None:
        self.t_max = _check_int("t_max", t_max, 1)
        if self.t_max > _MAX_T_MAX:
            raise ValueError(f"t_max must be an int in [1, {_MAX_T_MAX}], got {self.t_max}")
        self.eta_min = _check_float("eta_min", eta_min)
        super().__init__(base_lr=base_lr)

    def _encode(self, base: float) -> ScheduleCode:
        t_max, eta = self.t_max, self.eta_min
        table = [eta + (base - eta) * (1.0 + math.cos(math.pi * r / t_max)) / 2.0 for r in range(t_max + 1)]
        return ScheduleCode(PERIODIC, False, (0, t_max), (0.0, *table))

    @classmethod
    def from_epochs(
        cls, t_max: int, eta_min: float = 0.0, *, steps_per_epoch: int, base_lr: float | None = None
    ) -> Cosine:
        """``t_max`` given in epochs; the LR still changes every step."""
        spe = _check_steps_per_epoch(steps_per_epoch)
        return cls(_check_int("t_max", t_max, 1) * spe, eta_min, base_lr=base_lr)


class Piecewise(Schedule):
    """Piecewise-constant LR: ``values[i]`` for ``boundaries[i-1] <= t < boundaries[i]``.

    ``values`` are absolute LRs (as in optax/Keras), so the base LR is not used; ``len(values)`` must be
    ``len(boundaries) + 1`` and boundaries strictly increasing.
    """

    def __init__(
        self, boundaries: Sequence[int], values: Sequence[float], *, base_lr: float | None = None
    ) -> None:
        for name, seq in (("boundaries", boundaries), ("values", values)):
            if isinstance(seq, (str, bytes)) or not hasattr(seq, "__iter__"):
                raise TypeError(f"{name} must be a sequence, got {type(seq).__name__}")
        b = [_check_int("boundaries[i]", x, 0) for x in boundaries]
        v = [_check_float("values[i]", x) for x in values]
        if any(b2 <= b1 for b1, b2 in zip(b, b[1:])):
            raise ValueError(f"boundaries must be strictly increasing, got {b}")
        if len(v) != len(b) + 1:
            raise ValueError(f"values must have len(boundaries) + 1 = {len(b) + 1} entries, got {len(v)}")
        self.boundaries, self.values = b, v
        super().__init__(base_lr=base_lr)

    def resolve_base(self, base_lr: float | None = None) -> float:
        """Piecewise ignores the base (its values are the LRs)."""
        return 0.0 if base_lr is None and self.base_lr is None else super().resolve_base(base_lr)

    def _encode(self, base: float) -> ScheduleCode:
        return _piecewise(self.boundaries, self.values)

    @classmethod
    def from_epochs(
        cls,
        boundaries: Sequence[int],
        values: Sequence[float],
        *,
        steps_per_epoch: int,
        base_lr: float | None = None,
    ) -> Piecewise:
        """Boundaries given in epochs."""
        spe = _check_steps_per_epoch(steps_per_epoch)
        if isinstance(boundaries, (str, bytes)) or not hasattr(boundaries, "__iter__"):
            raise TypeError(f"boundaries must be a sequence, got {type(boundaries).__name__}")
        return cls([_check_int("boundaries[i]", x, 0) * spe for x in boundaries], values, base_lr=base_lr)


class Warmup(Schedule):
    """Linear warmup for ``steps`` steps, then ``then`` (shifted by ``steps``).

    For ``t < steps``: ``then.lr_at(0) * (start_factor + (1 - start_factor) * t / steps)``, which is
    ``LinearLR(start_factor, 1.0, total_iters=steps)`` followed by ``then`` via ``SequentialLR``.
    The base LR resolves as for any schedule (``base_lr`` here, else the optimizer's); an inner schedule
    with its own ``base_lr`` keeps it.
    """

    def __init__(
        self, steps: int, then: Schedule | None = None, *, start_factor: float | None = None,
        base_lr: float | None = None,
    ) -> None:
        self.steps = _check_int("steps", steps, 1)
        if then is None:
            then = Constant()
        if not isinstance(then, Schedule):
            raise TypeError(f"then must be a lrdecay.schedules.Schedule, got {type(then).__name__}")
        if isinstance(then, Warmup):
            raise TypeError("then must not be another Warmup (merge the two warmups into one)")
        self.then = then
        if start_factor is None:
            start_factor = 1.0 / (self.steps + 1)
        self.start_factor = _check_float("start_factor", start_factor, low=0.0, low_open=True)
        if self.start_factor > 1.0:
            raise ValueError(f"start_factor must be in (0, 1], got {self.start_factor}")
        super().__init__(base_lr=base_lr)

    def resolve_base(self, base_lr: float | None = None) -> float:
        """Own base if set, else the inner schedule's rules."""
        if self.base_lr is not None:
            return self.base_lr
        return self.then.resolve_base(base_lr)

    def _encode(self, base: float) -> ScheduleCode:
        inner = self.then.encode(base)
        return ScheduleCode(
            inner.kind,
            True,
            (self.steps, *inner.ints[1:]),
            (self.start_factor, *inner.floats[1:]),
        )

    @classmethod
    def from_epochs(
        cls,
        epochs: int,
        then: Schedule | None = None,
        *,
        steps_per_epoch: int,
        start_factor: float | None = None,
        base_lr: float | None = None,
    ) -> Warmup:
        """Warmup length given in epochs (``then`` should already count steps)."""
        spe = _check_steps_per_epoch(steps_per_epoch)
        return cls(_check_int("epochs", epochs, 1) * spe, then, start_factor=start_factor, base_lr=base_lr)


# ============================================================================ AutoDecay (host side)
# Not a step-indexed Schedule: AutoDecay watches the per-epoch training loss on the host and decays the LR
# when the loss has plateaued, i.e. when the current stage has ended (You et al., v1: "AutoDecay").


# One-sided 95% quantiles of Student's t by degrees of freedom (1..30); beyond 30 the normal 1.645 is
# within 2%. A table, not scipy: these are the only quantiles the package needs.
_T95 = (6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812, 1.796, 1.782, 1.771, 1.761,
        1.753, 1.746, 1.740, 1.734, 1.729, 1.725, 1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701,
        1.699, 1.697)


def t95(df: int) -> float:
    """One-sided 95% quantile of Student's t with ``df`` >= 1 degrees of freedom (1.645 beyond 30)."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    return _T95[df - 1] if df <= len(_T95) else 1.645


def line_fit(values: Sequence[float]) -> tuple[float, float, float]:
    """Least-squares line through ``values`` at x = 0, 1, ...: ``(slope, standard error of the slope,
    fitted value at the last x)``. The standard error needs >= 3 values (it is 0 for 2)."""
    n = len(values)
    if n < 2:
        raise ValueError(f"line_fit needs at least 2 values, got {n}")
    xm = (n - 1) / 2.0
    m = sum(values) / n
    sxx = sum((i - xm) ** 2 for i in range(n))
    slope = sum((i - xm) * (v - m) for i, v in enumerate(values)) / sxx
    ssr = sum((v - (m + slope * (i - xm))) ** 2 for i, v in enumerate(values))
    se = math.sqrt(ssr / (n - 2) / sxx) if n > 2 else 0.0
    return slope, se, m + slope * (n - 1 - xm)


class _HostDecay:
    """Shared part of the host-side decays: the LRs of an optimizer's param groups (or a dry-run LR),
    multiplied by ``gamma`` on a decay, never below ``min_lr``, at most ``max_decays`` times."""

    def __init__(self, optimizer, gamma, max_decays, min_lr, base_lr) -> None:
        gamma = _check_float("gamma", gamma, low=0.0, low_open=True)
        if gamma >= 1.0:
            raise ValueError(f"gamma must be in (0, 1), got {gamma}")
        if max_decays is not None:
            max_decays = _check_int("max_decays", max_decays, 0)
        min_lr = _check_float("min_lr", min_lr)
        if optimizer is None:
            if base_lr is None:
                raise ValueError(f"{type(self).__name__} needs an optimizer or a base_lr")
            self._lrs = [_check_float("base_lr", base_lr)]
        else:
            groups = getattr(optimizer, "param_groups", None)
            if not isinstance(groups, list) or not groups:
                raise TypeError(f"optimizer must be a torch optimizer or None, got {type(optimizer).__name__}")
            if getattr(optimizer, "schedule", None) is not None:
                raise ValueError(
                    f"{type(self).__name__} sets group['lr'] on the host, but this optimizer has a device-side "
                    "schedule that overrides it: build FusedSGD with schedule=None"
                )
            self._lrs = None
        self.optimizer = optimizer
        self.gamma, self.max_decays, self.min_lr = gamma, max_decays, min_lr
        self.epoch = 0  # epochs seen
        self.decay_epochs: list[int] = []  # epochs (1-based count of epochs seen) after which the LR dropped

    @property
    def lr(self) -> float:
        """The current LR (of the first param group)."""
        return self._lrs[0] if self.optimizer is None else float(self.optimizer.param_groups[0]["lr"])

    @property
    def exhausted(self) -> bool:
        """True once ``max_decays`` decays have happened."""
        return self.max_decays is not None and len(self.decay_epochs) >= self.max_decays

    def _decay(self) -> None:
        if self.optimizer is None:
            self._lrs = [max(v * self.gamma, self.min_lr) for v in self._lrs]
        else:
            for group in self.optimizer.param_groups:
                group["lr"] = max(group["lr"] * self.gamma, self.min_lr)
        self.decay_epochs.append(self.epoch)

    def state_dict(self) -> dict:
        """Everything but the optimizer (its LRs are in its own state dict)."""
        return {"epoch": self.epoch, "decay_epochs": list(self.decay_epochs),
                "lrs": None if self._lrs is None else list(self._lrs)}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s output."""
        self.epoch = int(state["epoch"])
        self.decay_epochs = [int(e) for e in state["decay_epochs"]]
        if state.get("lrs") is not None:
            self._lrs = [float(v) for v in state["lrs"]]


def _check_metric(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


class AutoDecay(_HostDecay):
    """Decay the learning rate by ``gamma`` when a stage of training has ended: the training loss has
    stopped improving *relative to what the stage has achieved*, allowing for the epoch-to-epoch noise.

    Call :meth:`step` once per epoch with that epoch's mean training loss. The plateau test, once the
    stage (the epochs since the last decay, or since the start) has at least ``max(window, min_stage)``
    epochs:

    1. Fit a least-squares line to the stage's last ``window`` epoch losses: slope ``b``, standard error
       ``se`` from the scatter of the losses around the line.
    2. The optimistic improvement per epoch is the one-sided 95% upper confidence bound
       ``r = -b + t95(window - 2) * se``.
    3. The stage's drop so far is ``D = ref - fit_last``: ``ref`` is the loss of the epoch before the stage
       (for the first stage, its own first epoch), ``fit_last`` the line's value at the last epoch.
    4. The stage has ended when ``window * r <= fraction * max(D, 0)``: even at the optimistic rate, the
       next ``window`` epochs would add less than ``fraction`` of what the stage has already achieved.
       Every param group's ``lr`` is multiplied by ``gamma`` (not below ``min_lr``); the next stage starts.

    Why this test and these constants (set from these arguments, not tuned on any run):

    - Relative to the stage's own drop, not to the loss level: with noisy labels a large part of the loss
      can never be fitted, so "1% of the loss per epoch" (the previous test) reads a still-improving
      stage as a plateau; the stage's drop is the scale of what the current LR can do.
    - Noise-aware: the upper confidence bound means a noisy stretch (large LR, few epochs) must look flat
      *beyond its noise* before it counts as ended; a quiet one is read as it is.
    - ``window=5``: the smallest window that leaves 3 degrees of freedom for the scatter (t95(3) = 2.35;
      with 1 or 2 the bound is too wide to ever fire); ``fraction=0.1``: diminishing returns, the next
      ``window`` epochs promise under a tenth of what the stage gave so far.

    It sets ``group['lr']`` on the host, so the optimizer must read its LR from ``group['lr']``:
    ``torch.optim.SGD`` (any torch optimizer), or :class:`lrdecay.optim.FusedSGD` built with
    ``schedule=None`` (a FusedSGD with a device-side schedule would overwrite the LR; that is refused).
    A step captured in a CUDA graph bakes the LR in, so run such steps eagerly.
    ``optimizer=None`` is allowed for a dry run: give ``base_lr`` and read :attr:`lr`.

    Args:
        optimizer: the optimizer whose ``param_groups`` LRs are decayed, or None.
        gamma: multiplicative decay in (0, 1).
        window: epochs in the line fit (>= 3).
        fraction: the share of the stage's drop below which the promised improvement counts as a plateau
            (>= 0).
        min_stage: minimum epochs per stage (default: ``window``).
        max_decays: maximum number of decays (None: unlimited).
        min_lr: never decay a group's LR below this.
        base_lr: the starting LR when ``optimizer`` is None.
    """

    def __init__(
        self,
        optimizer=None,
        *,
        gamma: float = 0.1,
        window: int = 5,
        fraction: float = 0.1,
        min_stage: int | None = None,
        max_decays: int | None = None,
        min_lr: float = 0.0,
        base_lr: float | None = None,
    ) -> None:
        window = _check_int("window", window, 3)
        fraction = _check_float("fraction", fraction)
        min_stage = window if min_stage is None else _check_int("min_stage", min_stage, 1)
        super().__init__(optimizer, gamma, max_decays, min_lr, base_lr)
        self.window, self.fraction, self.min_stage = window, fraction, min_stage
        self._ref: float | None = None  # loss of the epoch before the current stage
        self._losses: list[float] = []  # losses of the current stage
        self.last_test: dict | None = None  # the numbers of the last plateau test (for logs and plots)

    def test(self, losses: Sequence[float], ref: float) -> dict:
        """The plateau test on a stage's ``losses`` with reference ``ref``: ``{"rate", "rate_upper",
        "drop", "plateau"}`` (see the class docstring)."""
        slope, se, fit_last = line_fit(list(losses)[-self.window :])
        rate_upper = -slope + t95(self.window - 2) * se
        drop = ref - fit_last
        return {"rate": -slope, "rate_upper": rate_upper, "drop": drop,
                "plateau": self.window * rate_upper <= self.fraction * max(drop, 0.0)}

    def plateaued(self) -> bool:
        """Whether the plateau test fires on the losses seen in the current stage."""
        if len(self._losses) < max(self.window, self.min_stage):
            return False
        ref = self._losses[0] if self._ref is None else self._ref
        self.last_test = self.test(self._losses, ref)
        return self.last_test["plateau"]

    def step(self, loss: float) -> bool:
        """Record one epoch's training loss; decay the LR if the stage has ended. Returns True on a decay."""
        loss = _check_metric("loss", loss)
        self.epoch += 1
        self._losses.append(loss)
        if self.exhausted or not self.plateaued():
            return False
        self._decay()
        self._ref, self._losses = loss, []
        return True

    def state_dict(self) -> dict:
        """Everything but the optimizer (its LRs are in its own state dict)."""
        return {**super().state_dict(), "losses": list(self._losses), "ref": self._ref}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s output."""
        super().load_state_dict(state)
        self._losses = [float(v) for v in state["losses"]]
        self._ref = None if state.get("ref") is None else float(state["ref"])


class AccuracyMilestones(_HostDecay):
    """Decay the learning rate by ``gamma`` when the training accuracy first reaches each of
    ``thresholds`` (increasing): decays placed at matched training accuracy, e.g. to give full-batch
    gradient descent its decays where an SGD run had its own. Call :meth:`step` once per epoch (or per
    full-batch step) with that epoch's training accuracy; at most one decay per call.
    """

    def __init__(
        self, optimizer=None, thresholds: Sequence[float] = (), *, gamma: float = 0.1, min_lr: float = 0.0,
        base_lr: float | None = None,
    ) -> None:
        if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, Sequence):
            raise TypeError(f"thresholds must be a list of accuracies in [0, 1], got {type(thresholds).__name__}")
        ths = [_check_float(f"thresholds[{i}]", v) for i, v in enumerate(thresholds)]
        if any(v > 1 for v in ths) or any(b <= a for a, b in zip(ths, ths[1:])):
            raise ValueError(f"thresholds must be strictly increasing accuracies in [0, 1], got {list(thresholds)}")
        super().__init__(optimizer, gamma, len(ths), min_lr, base_lr)
        self.thresholds = ths

    def step(self, accuracy: float) -> bool:
        """Record one epoch's training accuracy; decay if it reached the next threshold. True on a decay."""
        accuracy = _check_metric("accuracy", accuracy)
        self.epoch += 1
        if self.exhausted or accuracy < self.thresholds[len(self.decay_epochs)]:
            return False
        self._decay()
        return True
