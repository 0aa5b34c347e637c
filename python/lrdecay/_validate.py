"""Argument checks shared by every public function of lrdecay (data, noise, schedules, models, optim,
the trainer's config): one place that says what "an int in [lo, hi]" accepts and how the error reads.

Each check returns the value normalised to a plain Python type (so numpy scalars do not leak into
configs and JSON) or raises ``TypeError`` (wrong kind; bools are not numbers here) or ``ValueError``
(out of range), with a message that names the argument and what is accepted.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np

__all__ = ["check_int", "check_real", "check_bool", "check_str", "loads_json"]

_BOOLS = (bool, np.bool_)


def _int_range(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"an int in [{lo}, {hi}]"
    if lo is not None:
        return f"an int >= {lo}"
    if hi is not None:
        return f"an int <= {hi}"
    return "an int"


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as a Python int in ``[lo, hi]`` (either bound may be None). Any integral type (numpy
    integers included) is accepted; bools and floats (even ``2.0``) raise ``TypeError``."""
    accepted = _int_range(lo, hi)
    if isinstance(value, _BOOLS) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {accepted}, got {type(value).__name__} {value!r}")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{name} must be {accepted}, got {v}")
    return v


def check_real(
    name: str,
    value: Any,
    lo: float = -math.inf,
    hi: float = math.inf,
    *,
    lo_open: bool = False,
) -> float:
    """``value`` as a finite Python float in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``). Any real
    number type is accepted; bools, strings and tensors raise ``TypeError``; NaN and infinities raise
    ``ValueError``."""
    bounded = math.isfinite(lo) or math.isfinite(hi)
    accepted = f" in {'(' if lo_open else '['}{lo}, {hi}]" if bounded else ""
    if isinstance(value, _BOOLS) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number{accepted}, got {type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo):
        raise ValueError(f"{name} must be a finite number{accepted}, got {v}")
    return v


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a Python bool; only ``bool`` (and numpy's ``bool_``) are accepted, not 0/1."""
    if not isinstance(value, _BOOLS):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def check_str(name: str, value: Any, choices: Iterable[str] | None = None) -> str:
    """``value`` as a str, one of ``choices`` when given."""
    options = None if choices is None else list(choices)
    if not isinstance(value, str):
        what = "a str" if options is None else f"one of {options}"
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {value!r}")
    if options is not None and value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def loads_json(text: str | bytes, what: str) -> Any:
    """Parse JSON written by a person (a config, a spec): ValueError naming ``what`` for invalid JSON, a
    key given twice in one object (JSON lets the last one win silently) or nesting too deep to read."""
    import json

    def no_duplicates(pairs):
        seen: dict = {}
        for k, v in pairs:
            if k in seen:
                raise ValueError(f"{what} gives the key {k!r} twice in one object")
            seen[k] = v
        return seen

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply to read") from None
