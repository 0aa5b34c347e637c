"""Learning-rate decays decided on the host at epoch ends, from the epoch's numbers.

Not step-indexed :class:`~lrdecay.schedules.Schedule` s: :class:`AutoDecay` watches the per-epoch training
loss and decays the LR when the loss has plateaued, i.e. when the current stage has ended (You et al., v1:
"AutoDecay"); :class:`AccuracyMilestones` decays when the training accuracy first reaches given values.
Both set ``group['lr']`` of a torch optimizer (or keep a dry-run LR). Re-exported from
:mod:`lrdecay.schedules`, where they have always been importable.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Sequence

from lrdecay._validate import check_int as _check_int
from lrdecay._validate import check_real

__all__ = ["AutoDecay", "AccuracyMilestones", "line_fit", "t95"]


def _check_float(name: str, value, *, low: float = 0.0, low_open: bool = False) -> float:
    return check_real(name, value, low, lo_open=low_open)


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
