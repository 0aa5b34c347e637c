"""Fuzz: lrdecay.data.pattern_dataset and lrdecay.noise.corrupt_labels (see tests/support/fuzz.py)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from support.fuzz import FEW, FUZZ, anything, clean_outcome, not_a_number, not_an_int, not_finite, rejected
from lrdecay.data import PRESETS, pattern_dataset
from lrdecay.noise import MODES, corrupt_labels

# ---------------------------------------------------------------------------------------- pattern_dataset

_field_values = {
    "dim": st.integers(1, 6),
    "clusters_per_class": st.integers(1, 3),
    "radius": st.floats(0, 10, allow_nan=False),
    "spread": st.floats(0, 3, allow_nan=False),
    "center_seed": st.integers(0, 2**64 - 1),
}


@st.composite
def valid_dataset_args(draw):
    preset = draw(st.sampled_from(sorted(PRESETS)))
    kw = dict(
        preset=preset,
        split=draw(st.sampled_from(["train", "test"])),
        seed=draw(st.integers(0, 2**64 - 1)),
        label_noise=draw(st.one_of(st.none(), st.floats(0, 1))),
    )
    if draw(st.booleans()):
        kw["n_classes"] = draw(st.integers(2, 12))
    names = [p["name"] for p in PRESETS[preset]["patterns"]]
    for name in draw(st.lists(st.sampled_from(names), unique=True, max_size=2)):
        fields = draw(st.lists(st.sampled_from(sorted(_field_values)), unique=True, min_size=1, max_size=2))
        kw[name] = {f: draw(_field_values[f]) for f in fields}
    gnames = [g["name"] for g in PRESETS[preset]["groups"]]
    if draw(st.booleans()):
        kw["groups"] = draw(st.lists(st.sampled_from(gnames), unique=True, min_size=1))
    if draw(st.booleans()):
        kw["weights"] = {g: draw(st.floats(0.01, 5)) for g in draw(st.lists(st.sampled_from(gnames), unique=True, min_size=1))}
    return draw(st.integers(1, 300)), kw


def _exact_count(rate, n):
    return min(n, max(0, math.floor(rate * n + 0.5)))


@FUZZ
@given(valid_dataset_args())
def test_pattern_dataset_valid_arguments(args):
    n, kw = args
    ds = pattern_dataset(n, **kw)
    k = ds.n_classes
    assert ds.x.shape == (n, sum(p["dim"] for p in ds.spec["patterns"])) and ds.x.dtype == np.float32
    assert ds.x.flags.c_contiguous and np.isfinite(ds.x).all()
    assert ds.y.dtype == ds.y_clean.dtype == np.int64 and ds.group.dtype == np.int32 and ds.flipped.dtype == bool
    assert ((ds.y_clean >= 0) & (ds.y_clean < k)).all() and ((ds.y >= 0) & (ds.y < k)).all()
    np.testing.assert_array_equal(ds.flipped, ds.y != ds.y_clean)
    rate = kw["label_noise"] or 0.0
    assert int(ds.flipped.sum()) == _exact_count(rate, n)
    # exact group sizes: every selected group gets floor or ceil of its weighted share, none other appears
    selected = ds.spec["selected_groups"]
    weights = {g["name"]: g["weight"] for g in ds.spec["groups"]}
    total = sum(weights[g] for g in selected)
    counts = np.bincount(ds.group, minlength=len(ds.group_names))
    for i, name in enumerate(ds.group_names):
        if name in selected:
            share = weights[name] / total * n
            assert math.floor(share) - 1 <= counts[i] <= math.ceil(share) + 1, (name, counts[i], share)
        else:
            assert counts[i] == 0
    assert counts.sum() == n
    # a blank block (pattern not carried) is noise around the origin only: spread 0 makes it exactly 0
    for g_i, g in enumerate(ds.spec["groups"]):
        rows = ds.group == g_i
        for p in ds.spec["patterns"]:
            if p["name"] not in g["patterns"] and p["spread"] == 0 and rows.any():
                assert not ds.x[rows][:, ds.pattern_slices[p["name"]]].any()
    # same arguments, same bytes
    again = pattern_dataset(n, **kw)
    assert again.x.tobytes() == ds.x.tobytes() and np.array_equal(again.y, ds.y)


_bad_top = {
    "n": st.one_of(st.integers(max_value=0), st.integers(2**31, 2**70), not_an_int),
    "seed": st.one_of(st.integers(max_value=-1), st.integers(2**64, 2**70), not_an_int),
    "label_noise": st.one_of(st.floats(1.0001, 1e9), st.floats(-1e9, -1e-9), not_finite, not_a_number.filter(lambda v: v is not None)),
    "n_classes": st.one_of(st.integers(max_value=1), st.integers(65537, 2**40), not_an_int.filter(lambda v: v is not None)),
    "preset": st.one_of(st.text(max_size=5).filter(lambda s: s not in PRESETS), st.integers(), st.none()),
    "split": st.one_of(st.text(max_size=5).filter(lambda s: s not in ("train", "test")), st.integers(), st.none()),
}
_bad_field = {
    "dim": st.one_of(st.integers(max_value=0), st.integers(65537, 2**40), not_an_int),
    "clusters_per_class": st.one_of(st.integers(max_value=0), st.integers(65537, 2**40), not_an_int),
    "radius": st.one_of(st.floats(-1e9, -1e-9), st.floats(1e6 + 1, 1e300), not_finite, not_a_number),
    "spread": st.one_of(st.floats(-1e9, -1e-9), st.floats(1e6 + 1, 1e300), not_finite, not_a_number),
    "center_seed": st.one_of(st.integers(max_value=-1), st.integers(2**64, 2**70), not_an_int.filter(lambda v: v is not None)),
}


@FUZZ
@given(valid_dataset_args(), st.data())
def test_pattern_dataset_one_bad_argument(args, data):
    n, kw = args
    kind = data.draw(st.sampled_from(["top", "field"]))
    if kind == "top":
        name = data.draw(st.sampled_from(sorted(_bad_top)))
        bad = data.draw(_bad_top[name])
        if name == "n":
            rejected(pattern_dataset, "n", bad, **kw)
        else:
            rejected(pattern_dataset, name, n, **{**kw, name: bad})
    else:
        pattern = data.draw(st.sampled_from([p["name"] for p in PRESETS[kw["preset"]]["patterns"]]))
        field = data.draw(st.sampled_from(sorted(_bad_field)))
        override = {**kw.get(pattern, {}), field: data.draw(_bad_field[field])}
        rejected(pattern_dataset, field, n, **{**kw, pattern: override})


@FUZZ
@given(
    n=st.one_of(st.integers(-3, 40), anything),
    preset=st.one_of(st.sampled_from(["ps10", "toy", "bad"]), anything),
    split=st.one_of(st.sampled_from(["train", "test", "val"]), anything),
    seed=st.one_of(st.integers(-1, 2**64), anything),
    label_noise=st.one_of(st.floats(-0.5, 1.5), anything),
    n_classes=st.one_of(st.none(), st.integers(-1, 20), anything),
    patterns=st.one_of(st.none(), st.lists(st.dictionaries(st.sampled_from(["name", "dim", "clusters_per_class", "radius", "spread", "x"]), st.one_of(st.integers(-1, 5), st.text(max_size=2), anything), max_size=6), max_size=3), anything),
    groups=st.one_of(st.none(), st.lists(st.sampled_from(["easy", "complex", "noise", "x"]), max_size=3), anything),
)
def test_pattern_dataset_anything(n, preset, split, seed, label_noise, n_classes, patterns, groups):
    ds = clean_outcome(pattern_dataset, n, preset=preset, split=split, seed=seed, label_noise=label_noise,
                       n_classes=n_classes, patterns=patterns, groups=groups)
    if ds is not None:
        assert len(ds) == n and ds.x.shape[0] == n and np.isfinite(ds.x).all()
        assert np.array_equal(ds.flipped, ds.y != ds.y_clean)


# ---------------------------------------------------------------------------------------- corrupt_labels

_INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


@st.composite
def valid_noise_args(draw):
    k = draw(st.integers(2, 12))
    n = draw(st.integers(0, 200))
    y = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)), dtype=draw(st.sampled_from(_INT_DTYPES)))
    mode = draw(st.sampled_from(MODES))
    matrix = None
    if mode == "matrix":
        raw = np.array(draw(st.lists(st.lists(st.floats(0, 1), min_size=k, max_size=k), min_size=k, max_size=k)))
        raw[:, draw(st.integers(0, k - 1))] += 1e-3  # no all-zero row
        matrix = raw / raw.sum(axis=1, keepdims=True)
    return y, k, dict(rate=draw(st.floats(0, 1)), mode=mode, exact=draw(st.booleans()), matrix=matrix,
                      seed=draw(st.integers(0, 2**64 - 1)))


@FUZZ
@given(valid_noise_args())
def test_corrupt_labels_valid_arguments(args):
    y, k, kw = args
    before = y.copy()
    out, flipped = corrupt_labels(y, k, **kw)
    assert np.array_equal(y, before) and y.dtype == before.dtype  # input untouched
    assert out.dtype == np.int64 and flipped.dtype == bool and out.shape == flipped.shape == y.shape
    assert ((out >= 0) & (out < k)).all()
    np.testing.assert_array_equal(flipped, out != y.astype(np.int64))
    n = len(y)
    if kw["mode"] in ("symmetric", "pairflip") and kw["exact"]:
        assert int(flipped.sum()) == _exact_count(kw["rate"], n)  # every chosen label changes
    if kw["mode"] == "pairflip":
        np.testing.assert_array_equal(out[flipped], (y.astype(np.int64)[flipped] + 1) % k)
    if kw["mode"] == "matrix":
        changed = np.flatnonzero(flipped)
        assert (kw["matrix"][y.astype(np.int64)[changed], out[changed]] > 0).all()
    if kw["rate"] == 0:
        assert not flipped.any()
    again = corrupt_labels(y, k, **kw)
    assert np.array_equal(again[0], out)


_bad_noise = {
    "n_classes": st.one_of(st.integers(max_value=1), st.integers(2**63, 2**70), not_an_int),
    "rate": st.one_of(st.floats(1.0001, 1e9), st.floats(-1e9, -1e-9), not_finite, not_a_number),
    "mode": st.one_of(st.text(max_size=5).filter(lambda s: s not in MODES), st.integers(), st.none()),
    "exact": st.one_of(st.integers(), st.text(max_size=2), st.none()),
    "seed": st.one_of(st.integers(max_value=-1), st.integers(2**64, 2**70), not_an_int),
}


@FUZZ
@given(valid_noise_args(), st.data())
def test_corrupt_labels_one_bad_argument(args, data):
    y, k, kw = args
    name = data.draw(st.sampled_from([*sorted(_bad_noise), "y", "matrix"]))
    if name == "y":
        bad = data.draw(st.sampled_from(["float", "bool", "2d", "negative", "too large"]))
        yy = {"float": np.zeros(3), "bool": np.ones(3, bool), "2d": np.zeros((2, 2), np.int64),
              "negative": np.array([0, -1]), "too large": np.array([0, k])}[bad]
        rejected(corrupt_labels, "y", yy, k, **kw)
    elif name == "matrix":
        m = np.full((k, k), 1.0 / k)
        m[0, 0] += data.draw(st.sampled_from([0.5, -2.0, math.nan]))
        rejected(corrupt_labels, "matrix", y, k, **{**kw, "mode": "matrix", "matrix": m})
    elif name == "n_classes":
        rejected(corrupt_labels, "n_classes", y, data.draw(_bad_noise[name]), **kw)
    else:
        rejected(corrupt_labels, name, y, k, **{**kw, name: data.draw(_bad_noise[name])})


@FEW
@given(
    y=st.one_of(st.lists(st.integers(-2, 12), max_size=30).map(np.array), anything),
    n_classes=st.one_of(st.integers(-1, 12), anything),
    rate=st.one_of(st.floats(-0.5, 1.5), anything),
    mode=st.one_of(st.sampled_from(MODES), anything),
    exact=st.one_of(st.booleans(), anything),
    matrix=st.one_of(st.none(), st.integers(1, 4).map(np.eye), anything),
    seed=st.one_of(st.integers(-1, 2**64), anything),
)
def test_corrupt_labels_anything(y, n_classes, rate, mode, exact, matrix, seed):
    before = np.array(y, copy=True) if isinstance(y, np.ndarray) else None
    out = clean_outcome(corrupt_labels, y, n_classes, rate, mode=mode, exact=exact, matrix=matrix, seed=seed)
    if before is not None:
        assert np.array_equal(before, y)
    if out is not None:
        yn, f = out
        assert yn.shape == f.shape == np.asarray(y).shape and ((yn >= 0) & (yn < n_classes)).all()
