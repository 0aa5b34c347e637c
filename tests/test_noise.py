"""Label noise: exact counts, realised rates and transition frequencies of every mode against their
definitions (binomial 5-sigma bounds, fixed seeds), input handling, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrdecay.noise import corrupt_labels


def _within(count, n, p, sigmas=5.0):
    """count is within `sigmas` binomial standard deviations of n*p."""
    return abs(count - n * p) <= sigmas * math.sqrt(max(n * p * (1 - p), 1e-12)) + 1e-9


def _labels(n, k, seed=0):
    return np.random.default_rng(seed).integers(0, k, n)


@pytest.mark.parametrize("n,k,rate", [(1, 2, 0.5), (2, 2, 0.5), (1001, 10, 0.2), (9999, 3, 0.37), (500, 7, 1.0), (500, 7, 0.0)])
def test_symmetric_exact_flips_exactly_and_uniformly_to_other_classes(n, k, rate):
    y = _labels(n, k, n)
    yn, f = corrupt_labels(y, k, rate, seed=1)
    assert f.sum() == math.floor(rate * n + 0.5)
    assert np.array_equal(f, yn != y)
    assert ((yn >= 0) & (yn < k)).all()


def test_symmetric_targets_are_uniform_over_the_other_classes():
    k, n = 5, 200_000
    y = _labels(n, k, 3)
    yn, f = corrupt_labels(y, k, 0.5, seed=4)
    offs = (yn[f] - y[f]) % k  # 1..k-1, each with probability 1/(k-1)
    assert offs.min() >= 1
    counts = np.bincount(offs, minlength=k)[1:]
    for c in counts:
        assert _within(c, f.sum(), 1 / (k - 1))


def test_symmetric_independent_rate():
    n = 100_000
    y = _labels(n, 10, 5)
    _, f = corrupt_labels(y, 10, 0.3, exact=False, seed=6)
    assert _within(f.sum(), n, 0.3)


@pytest.mark.parametrize("exact", [True, False])
def test_uniform_realised_rate_is_rate_times_k_minus_1_over_k(exact):
    n, k, rate = 100_000, 4, 0.4
    y = _labels(n, k, 7)
    yn, f = corrupt_labels(y, k, rate, mode="uniform", exact=exact, seed=8)
    assert np.array_equal(f, yn != y)
    if exact:
        # exactly round(rate*n) samples redrawn, each keeps its class with probability 1/k
        assert _within(f.sum(), round(rate * n), (k - 1) / k)
    else:
        assert _within(f.sum(), n, rate * (k - 1) / k)
    # a changed label is uniform over the k-1 other classes
    offs = (yn[f] - y[f]) % k
    for c in np.bincount(offs, minlength=k)[1:]:
        assert _within(c, f.sum(), 1 / (k - 1))


@pytest.mark.parametrize("exact", [True, False])
def test_pairflip_moves_to_next_class(exact):
    n, k = 20_001, 6
    y = _labels(n, k, 9)
    yn, f = corrupt_labels(y, k, 0.25, mode="pairflip", exact=exact, seed=10)
    assert np.array_equal(yn[f], (y[f] + 1) % k)
    assert np.array_equal(yn[~f], y[~f])
    if exact:
        assert f.sum() == math.floor(0.25 * n + 0.5)
    else:
        assert _within(f.sum(), n, 0.25)


def test_matrix_realised_transitions_match_the_matrix():
    k, n = 3, 150_000
    t = np.array([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5], [0.25, 0.0, 0.75]])
    y = _labels(n, k, 11)
    yn, f = corrupt_labels(y, k, 1.0, mode="matrix", matrix=t, seed=12)
    for i in range(k):
        rows = yn[y == i]
        for j in range(k):
            c = int(np.sum(rows == j))
            if t[i, j] == 0:
                assert c == 0
            else:
                assert _within(c, rows.size, t[i, j])
    assert np.array_equal(f, yn != y)


def test_matrix_with_partial_rate_mixes_with_identity():
    k, n, rate = 2, 100_000, 0.3
    t = np.array([[0.0, 1.0], [0.5, 0.5]])
    y = _labels(n, k, 13)
    yn, _ = corrupt_labels(y, k, rate, mode="matrix", matrix=t, exact=False, seed=14)
    # P(noisy=1 | clean=0) = rate * 1.0; P(noisy=0 | clean=1) = rate * 0.5
    assert _within(int(np.sum(yn[y == 0] == 1)), int(np.sum(y == 0)), rate)
    assert _within(int(np.sum(yn[y == 1] == 0)), int(np.sum(y == 1)), rate * 0.5)


def test_input_is_not_modified_and_any_integer_dtype_works():
    base = _labels(1001, 10, 15)
    ref, fref = corrupt_labels(base.astype(np.int64), 10, 0.3, seed=16)
    for dt in (np.uint8, np.int16, np.int32, np.uint64):
        y = base.astype(dt)
        keep = y.copy()
        yn, f = corrupt_labels(y, 10, 0.3, seed=16)
        assert np.array_equal(y, keep) and y.dtype == dt
        assert yn.dtype == np.int64 and f.dtype == np.bool_
        assert np.array_equal(yn, ref) and np.array_equal(f, fref)
    yn, _ = corrupt_labels(base[::2], 10, 0.3, seed=16)  # non-contiguous view
    assert yn.shape == (501,)
    assert corrupt_labels(list(base[:5]), 10, 0.0)[0].tolist() == list(base[:5])
    assert corrupt_labels(np.zeros(0, np.int64), 3, 0.5)[0].shape == (0,)


def test_seed_changes_selection():
    y = _labels(1000, 10, 17)
    a, _ = corrupt_labels(y, 10, 0.5, seed=1)
    b, _ = corrupt_labels(y, 10, 0.5, seed=2)
    assert not np.array_equal(a, b)


_Y = np.array([0, 1, 2])
_BAD = [
    (dict(y=np.array([0.0, 1.0])), TypeError, "y must be an array of integers"),
    (dict(y=np.array([True, False])), TypeError, "y must be an array of integers"),
    (dict(y=np.array(["a"])), TypeError, "y must be"),
    (dict(y=np.zeros((2, 2), np.int64)), ValueError, "1-D"),
    (dict(y=np.array([0, 3])), ValueError, r"\[0, 3\)"),
    (dict(y=np.array([-1, 0])), ValueError, "labels must be in"),
    (dict(n_classes=1), ValueError, "n_classes"),
    (dict(n_classes=3.0), TypeError, "n_classes"),
    (dict(n_classes=True), TypeError, "n_classes"),
    (dict(rate=-0.1), ValueError, "rate"),
    (dict(rate=1.1), ValueError, "rate"),
    (dict(rate=float("nan")), ValueError, "rate"),
    (dict(rate=None), TypeError, "rate"),
    (dict(mode="swap"), ValueError, "mode"),
    (dict(mode=1), TypeError, "mode"),
    (dict(exact=1), TypeError, "exact"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(mode="matrix"), ValueError, "matrix"),
    (dict(matrix=np.eye(3)), ValueError, "only accepted with mode='matrix'"),
    (dict(mode="matrix", matrix=np.eye(2)), ValueError, "shape"),
    (dict(mode="matrix", matrix=np.full((3, 3), 0.5)), ValueError, "sum to 1"),
    (dict(mode="matrix", matrix=np.array([[1.5, -0.5, 0], [0, 1, 0], [0, 0, 1]])), ValueError, ">= 0"),
    (dict(mode="matrix", matrix=np.array([[np.nan, 1, 0], [0, 1, 0], [0, 0, 1]])), ValueError, "finite"),
    (dict(mode="matrix", matrix=np.eye(3, dtype=bool)), TypeError, "matrix"),
]


@pytest.mark.parametrize("kwargs,exc,msg", _BAD)
def test_bad_input_raises_naming_the_argument(kwargs, exc, msg):
    args = dict(y=_Y, n_classes=3, rate=0.5)
    args.update(kwargs)
    y, k, r = args.pop("y"), args.pop("n_classes"), args.pop("rate")
    with pytest.raises(exc, match=msg):
        corrupt_labels(y, k, r, **args)


def test_empty_list_is_an_empty_label_array():
    # Regression: corrupt_labels([]) complained about a float64 dtype the user never passed.
    y, flipped = corrupt_labels([], 3, 0.5)
    assert y.dtype == np.int64 and flipped.dtype == np.bool_ and y.shape == flipped.shape == (0,)
    with pytest.raises(TypeError, match="float64"):  # an explicit float array is still refused
        corrupt_labels(np.array([], dtype=np.float64), 3, 0.5)


def test_n_classes_limit_comes_from_the_native_module():
    from lrdecay import _native

    top = _native.NOISE_LIMITS["max_classes"]
    assert top == 2**63 - 1
    y, _ = corrupt_labels(np.array([0, 5, 2**40]), top, 1.0, seed=3)
    assert ((y >= 0) & (y < top)).all() and (y != [0, 5, 2**40]).all()
    with pytest.raises(ValueError, match=rf"n_classes must be an int in \[2, {top}\]"):
        corrupt_labels(np.array([0]), top + 1, 0.5)
