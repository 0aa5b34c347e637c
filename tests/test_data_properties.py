"""Property tests: random (often wrong) arguments to every public function of lrdecay.data and
lrdecay.noise. Each call either returns well-formed output or raises ValueError/TypeError; no other
exception, no panic, no hang."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrdecay.data import pattern_dataset
from lrdecay.noise import corrupt_labels

_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(-2, 2), max_size=2),
)
_small_int = st.one_of(st.integers(-3, 40), _anything)
_rate = st.one_of(st.floats(-0.5, 1.5), st.sampled_from([0, 1, 0.0, 1.0]), _anything)


def _ok_or_clean_error(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError):
        return None


_pattern = st.fixed_dictionaries(
    {
        "name": st.one_of(st.sampled_from(["easy", "complex", "p"]), _anything),
        "dim": _small_int,
        "clusters_per_class": _small_int,
        "radius": _rate,
        "spread": _rate,
    },
    optional={"center_seed": st.one_of(st.integers(-1, 2**64), _anything)},
)
_group = st.fixed_dictionaries(
    {"name": st.one_of(st.text(min_size=1, max_size=3), _anything), "patterns": st.one_of(st.lists(st.sampled_from(["easy", "complex", "p", "q"]), max_size=3), _anything)},
    optional={"weight": _rate},
)


@_SETTINGS
@given(
    n=_small_int,
    preset=st.one_of(st.sampled_from(["ps10", "ps10-clean", "ps10-2c", "toy", "bad"]), _anything),
    split=st.one_of(st.sampled_from(["train", "test", "val"]), _anything),
    seed=st.one_of(st.integers(-1, 2**64), _anything),
    label_noise=_rate,
    n_classes=st.one_of(st.none(), _small_int),
    patterns=st.one_of(st.none(), st.lists(_pattern, max_size=3), _anything),
    groups=st.one_of(
        st.none(),
        st.lists(st.sampled_from(["easy", "complex", "noise", "complex8", "x"]), max_size=3),
        st.lists(_group, max_size=3),
        _anything,
    ),
    overrides=st.dictionaries(
        st.sampled_from(["easy", "complex", "weights", "other"]),
        st.one_of(st.dictionaries(st.sampled_from(["dim", "radius", "spread", "easy", "noise"]), _rate, max_size=2), _anything),
        max_size=2,
    ),
)
def test_pattern_dataset_random_arguments(n, preset, split, seed, label_noise, n_classes, patterns, groups, overrides):
    ds = _ok_or_clean_error(
        pattern_dataset, n, preset=preset, split=split, seed=seed, label_noise=label_noise,
        n_classes=n_classes, patterns=patterns, groups=groups, **overrides,
    )
    if ds is not None:
        assert ds.x.shape[0] == len(ds) == n
        assert np.isfinite(ds.x).all()
        assert ((ds.y >= 0) & (ds.y < ds.n_classes)).all()
        assert ((ds.group >= 0) & (ds.group < len(ds.group_names))).all()
        assert np.array_equal(ds.flipped, ds.y != ds.y_clean)


@_SETTINGS
@given(
    y=st.one_of(
        st.lists(st.integers(-2, 12), max_size=30).map(np.array),
        st.lists(st.integers(0, 9), max_size=30).map(lambda v: np.array(v, dtype=np.uint8)),
        st.lists(st.floats(0, 9), max_size=5).map(np.array),
        st.lists(st.booleans(), max_size=5).map(np.array),
        _anything,
    ),
    n_classes=st.one_of(st.integers(-1, 12), st.integers(2**62, 2**64), _anything),
    rate=_rate,
    mode=st.one_of(st.sampled_from(["symmetric", "uniform", "pairflip", "matrix", "x"]), _anything),
    exact=st.one_of(st.booleans(), _anything),
    matrix=st.one_of(
        st.none(),
        st.integers(1, 4).flatmap(lambda k: st.lists(st.lists(st.floats(-0.5, 1.5), min_size=k, max_size=k), min_size=k, max_size=k)),
        st.integers(1, 4).map(lambda k: np.eye(k)),
        _anything,
    ),
    seed=st.one_of(st.integers(-1, 2**64), _anything),
)
def test_corrupt_labels_random_arguments(y, n_classes, rate, mode, exact, matrix, seed):
    before = np.array(y, copy=True) if isinstance(y, np.ndarray) else None
    out = _ok_or_clean_error(corrupt_labels, y, n_classes, rate, mode=mode, exact=exact, matrix=matrix, seed=seed)
    if before is not None:
        assert np.array_equal(before, y)
    if out is not None:
        yn, f = out
        assert yn.shape == f.shape == np.asarray(y).shape
        assert ((yn >= 0) & (yn < n_classes)).all()
        assert np.array_equal(f, yn != np.asarray(y))
