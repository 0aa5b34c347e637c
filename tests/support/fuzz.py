"""Shared pieces of the hypothesis fuzz suite (tests/test_fuzz_*.py).

Every public function is fuzzed three ways, so that a test can fail for each kind of defect:

- **valid** arguments drawn from the documented ranges must succeed, and the result is checked against
  a plain reference (a formula, numpy, torch) or its documented properties;
- **one invalid argument** (every other argument valid) must raise ``ValueError``/``TypeError`` whose
  message names that argument, and change nothing;
- **anything** (random values of every kind for every argument) must return well-formed output or raise
  ``ValueError``/``TypeError``: never another exception, a crash or a hang. Alone this could not tell a
  wrong acceptance from a right one; the two checks above do.

Example counts come from the hypothesis profile ("default"; HYPOTHESIS_PROFILE=thorough for more), sized
so the whole suite runs in CI in a couple of minutes.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
               derandomize=False, print_blob=True)
settings.register_profile("default", max_examples=40, **_COMMON)
settings.register_profile("thorough", max_examples=500, **_COMMON)

#: Settings for the cheap functions, and for the ones that train or generate (a few examples each).
FUZZ = settings(settings.get_profile("default"))
FEW = settings(FUZZ, max_examples=max(4, FUZZ.max_examples // 5))

#: A value of any kind.
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.binary(max_size=4),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(-2, 2), max_size=2),
    st.tuples(st.integers(), st.integers()),
    st.just(np.array([1.5, -1.0])),
    st.just(object()),
)

#: Values that are not ints of any kind (for arguments that must be ints).
not_an_int = st.one_of(st.booleans(), st.floats(allow_nan=True), st.text(max_size=3), st.none(),
                       st.just([1]), st.just(np.float64(2.0)), st.just(np.bool_(True)))
#: Values that are not real numbers (for arguments that must be numbers).
not_a_number = st.one_of(st.booleans(), st.text(max_size=3), st.none(), st.just([0.5]), st.just(np.bool_(False)))
#: Floats that are not finite.
not_finite = st.sampled_from([math.nan, math.inf, -math.inf])


def rejected(fn, name: str, *args, **kwargs) -> Exception:
    """``fn(*args, **kwargs)`` must raise ValueError or TypeError naming ``name``; returns the error."""
    with pytest.raises((ValueError, TypeError)) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert re.search(r"(?<![A-Za-z_])" + re.escape(name) + r"(?![A-Za-z_])", msg), (name, msg)
    return info.value


def clean_outcome(fn, *args, **kwargs):
    """``fn(...)``'s result, or None when it raised ValueError or TypeError (any other exception fails)."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError):
        return None
