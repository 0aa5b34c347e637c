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

The decays decided on the host at epoch ends (:class:`AutoDecay`, :class:`AccuracyMilestones`) live in
:mod:`lrdecay.host_decay` and are importable from here too.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from lrdecay._validate import check_int as _check_int
from lrdecay._validate import check_real
from lrdecay.host_decay import AccuracyMilestones, AutoDecay, line_fit, t95

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
