"""Pattern datasets: determinism, splits, exact group sizes, geometry, Gaussian quality, the
complexity knob, label noise, bad input. References are computed here from first principles."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from lrdecay.data import PRESETS, pattern_dataset


def _digest(ds) -> str:
    h = hashlib.sha256()
    for a in (ds.x, ds.y, ds.y_clean, ds.group, ds.flipped):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


_DIGEST_SCRIPT = """
import hashlib, numpy as np
from lrdecay.data import pattern_dataset
from lrdecay.noise import corrupt_labels
out = []
for kw in [dict(n=1001, seed=3, label_noise=0.2), dict(n=777, preset="ps10-2c", split="test", seed=5),
           dict(n=300, groups=["complex"], seed=1)]:
    n = kw.pop("n")
    ds = pattern_dataset(n, **kw)
    h = hashlib.sha256()
    for a in (ds.x, ds.y, ds.y_clean, ds.group, ds.flipped):
        h.update(a.tobytes())
    out.append(h.hexdigest())
y = np.arange(50_001) % 7
for mode in ["symmetric", "uniform", "pairflip"]:
    for exact in [True, False]:
        yn, f = corrupt_labels(y, 7, 0.3, mode=mode, exact=exact, seed=9)
        out.append(hashlib.sha256(yn.tobytes() + f.tobytes()).hexdigest())
print(" ".join(out))
"""


def _digests_with_threads(threads: int) -> str:
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    res = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT], env=env, capture_output=True, text=True, check=True)
    return res.stdout.strip()


@pytest.mark.slow
def test_byte_identical_for_one_and_two_threads_and_across_runs():
    one = _digests_with_threads(1)
    two = _digests_with_threads(2)
    again = _digests_with_threads(2)
    assert one == two == again
    assert len(set(one.split())) == len(one.split())  # different configs really differ


def test_same_seed_same_bytes_in_process_and_different_seed_differs():
    a = pattern_dataset(513, seed=11, label_noise=0.1)
    b = pattern_dataset(513, seed=11, label_noise=0.1)
    c = pattern_dataset(513, seed=12, label_noise=0.1)
    assert _digest(a) == _digest(b)
    assert not np.array_equal(a.x, c.x)


def test_layout_and_dtypes():
    ds = pattern_dataset(37, seed=2)
    assert ds.x.shape == (37, 128) and ds.x.dtype == np.float32 and ds.x.flags.c_contiguous
    assert ds.y.dtype == np.int64 and ds.y_clean.dtype == np.int64
    assert ds.group.dtype == np.int32 and ds.flipped.dtype == np.bool_
    assert len(ds) == 37 and ds.n_classes == 10
    assert ds.group_names == ("easy", "complex", "noise")
    assert ds.pattern_names == ("easy", "complex")
    assert ds.pattern_slices == {"easy": slice(0, 64), "complex": slice(64, 128)}
    assert ((ds.y >= 0) & (ds.y < 10)).all()
    json.dumps(ds.spec)  # plain, JSON-serialisable
    assert list(ds.spec["group_counts"].values()) == _largest_remainder([0.45, 0.45, 0.10], 37)


def _largest_remainder(weights, n):
    """Reference apportionment in exact rational arithmetic."""
    w = [Fraction(x) for x in weights]
    q = [x / sum(w) * n for x in w]
    counts = [math.floor(x) for x in q]
    order = sorted(range(len(w)), key=lambda i: (-(q[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 1001, 99_991])
@pytest.mark.parametrize("preset", ["ps10", "ps10-clean", "ps10-2c"])
def test_group_counts_are_exact(n, preset):
    if n > 10_000 and preset != "ps10":
        pytest.skip("one large case is enough")
    ds = pattern_dataset(n, preset=preset, seed=n)
    weights = [g["weight"] for g in PRESETS[preset]["groups"]]
    expect = _largest_remainder(weights, n)
    got = np.bincount(ds.group, minlength=len(weights)).tolist()
    assert got == expect


def test_group_assignment_is_a_shuffle_and_custom_weights_apply():
    ds = pattern_dataset(10_000, seed=4, weights={"noise": 0.5})
    w = [0.45, 0.45, 0.5]
    assert np.bincount(ds.group).tolist() == _largest_remainder(w, 10_000)
    # A shuffle, not blocks: each tenth of the index range holds each group in about its share.
    for part in np.array_split(ds.group, 10):
        share = np.bincount(part, minlength=3) / len(part)
        assert np.all(np.abs(share - np.array(w) / sum(w)) < 0.06)


def test_probe_set_of_one_group_keeps_full_group_names():
    ds = pattern_dataset(500, groups=["complex"], seed=3)
    assert ds.group_names == ("easy", "complex", "noise")
    assert (ds.group == 1).all()
    ds2 = pattern_dataset(501, groups=["noise", "easy"], seed=3)
    assert set(np.unique(ds2.group)) == {0, 2}
    # weights of the chosen groups are renormalised: easy 0.45 vs noise 0.10
    assert np.bincount(ds2.group, minlength=3)[[0, 2]].tolist() == _largest_remainder([0.10, 0.45], 501)[::-1]


def test_custom_groups_and_noise_group():
    ds = pattern_dataset(
        3000,
        seed=8,
        groups=[{"name": "both", "patterns": ["easy", "complex"], "weight": 2}, {"name": "junk", "patterns": []}],
    )
    assert ds.group_names == ("both", "junk")
    assert np.bincount(ds.group).tolist() == _largest_remainder([2, 1], 3000)


def _zero_spread(**kw):
    return pattern_dataset(4000, seed=6, easy={"spread": 0.0}, complex={"spread": 0.0}, **kw)


def test_centres_lie_on_their_spheres_and_are_class_specific():
    ds = _zero_spread(groups=[{"name": "both", "patterns": ["easy", "complex"]}])
    for name, radius, m in [("easy", 4.0, 1), ("complex", 0.5, 4)]:
        blk = ds.x[:, ds.pattern_slices[name]].astype(np.float64)
        np.testing.assert_allclose(np.linalg.norm(blk, axis=1), radius, rtol=1e-5)
        centres, inv = np.unique(blk, axis=0, return_inverse=True)
        assert len(centres) == 10 * m  # K*m distinct centres, all used at n=4000
        # each centre belongs to exactly one class
        for c in range(len(centres)):
            assert len(np.unique(ds.y[inv.ravel() == c])) == 1


def test_blank_blocks_are_noise_around_the_origin():
    ds = pattern_dataset(20_000, seed=9)
    e, c = ds.pattern_slices["easy"], ds.pattern_slices["complex"]
    easy, comp, noise = (ds.group == 0), (ds.group == 1), (ds.group == 2)
    # complex block of easy-group samples: N(0, 0.05^2) per coordinate
    blk = ds.x[easy][:, c]
    assert abs(blk.mean()) < 5 * 0.05 / math.sqrt(blk.size)
    assert abs(blk.std() / 0.05 - 1) < 0.01
    # easy block of complex-group and noise-group samples: N(0, 1)
    for mask in (comp, noise):
        blk = ds.x[mask][:, e]
        assert abs(blk.mean()) < 5 / math.sqrt(blk.size)
        assert abs(blk.std() - 1) < 0.01
    # the carried block of easy samples sits at distance ~spread*sqrt(dim) from the origin-free centre
    blk = ds.x[easy][:, e].astype(np.float64)
    assert abs(np.linalg.norm(blk, axis=1).mean() - math.sqrt(16 + 64)) < 0.2


def _erf_cdf(x):
    return 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def test_gaussian_noise_quality():
    # radius 0 puts every centre at the origin, so x is pure N(0, spread^2) noise
    ds = pattern_dataset(8001, seed=21, easy={"radius": 0.0}, complex={"radius": 0.0, "spread": 1.0})
    z = ds.x.astype(np.float64).ravel()
    n = z.size
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs((z**4).mean() - 3) < 5 * math.sqrt(96 / n)
    assert abs((z**3).mean()) < 5 * math.sqrt(15 / n)
    # Kolmogorov-Smirnov against the exact normal CDF (erf), on a subsample to keep it fast
    s = np.sort(z[::7])
    cdf = _erf_cdf(s)
    m = s.size
    d = max(np.max(np.arange(1, m + 1) / m - cdf), np.max(cdf - np.arange(m) / m))
    assert d < 1.95 / math.sqrt(m)  # KS critical value at alpha = 0.001
    # neighbouring coordinates and neighbouring rows are uncorrelated
    x = ds.x.astype(np.float64)
    assert abs(np.corrcoef(x[:, 0], x[:, 1])[0, 1]) < 5 / math.sqrt(len(x))
    assert abs(np.corrcoef(x[:-1, 3], x[1:, 3])[0, 1]) < 5 / math.sqrt(len(x))


def test_train_and_test_splits_are_independent_samples_of_the_same_centres():
    tr = _zero_spread(groups=["easy"])
    te = pattern_dataset(4000, seed=6, split="test", easy={"spread": 0.0}, complex={"spread": 0.0}, groups=["easy"])
    e = tr.pattern_slices["easy"]
    # same centres ...
    assert {tuple(r) for r in np.unique(tr.x[:, e], axis=0)} == {tuple(r) for r in np.unique(te.x[:, e], axis=0)}
    # ... independent samples: labels and noise unrelated
    full_tr, full_te = pattern_dataset(5000, seed=6), pattern_dataset(5000, seed=6, split="test")
    assert abs(np.mean(full_tr.y == full_te.y) - 0.1) < 5 * math.sqrt(0.09 / 5000)
    r = np.corrcoef(full_tr.x[:, 70].astype(np.float64), full_te.x[:, 70].astype(np.float64))[0, 1]
    assert abs(r) < 5 / math.sqrt(5000)


def test_label_noise_train_only_unless_asked():
    tr = pattern_dataset(1001, seed=2, label_noise=0.2)
    assert tr.flipped.sum() == 200  # round(0.2 * 1001) = 200
    assert np.array_equal(tr.flipped, tr.y != tr.y_clean)
    te = pattern_dataset(1001, seed=2, split="test")
    assert not te.flipped.any() and np.array_equal(te.y, te.y_clean)
    te2 = pattern_dataset(1001, seed=2, split="test", label_noise=0.5)
    assert te2.flipped.sum() == 501
    # the clean labels do not depend on the noise
    assert np.array_equal(pattern_dataset(1001, seed=2).y_clean, tr.y_clean)
    assert np.array_equal(pattern_dataset(1001, seed=2).x, tr.x)


def _linear_accuracy(block, **kw):
    """Least-squares one-vs-all linear classifier on one block: fit on train, accuracy on test."""
    tr = pattern_dataset(12_000, seed=5, **kw)
    te = pattern_dataset(4000, seed=5, split="test", **kw)
    sl = tr.pattern_slices[block]
    a = np.c_[tr.x[:, sl], np.ones(len(tr))].astype(np.float64)
    w, *_ = np.linalg.lstsq(a, np.eye(tr.n_classes)[tr.y], rcond=None)
    pred = np.argmax(np.c_[te.x[:, sl], np.ones(len(te))] @ w, axis=1)
    return float(np.mean(pred == te.y))


@pytest.mark.slow
def test_complexity_knob_is_real_for_a_linear_classifier():
    easy = _linear_accuracy("easy", groups=["easy"])
    assert easy > 0.9
    # Same geometry, more clusters per class: a linear classifier falls towards chance (0.1).
    accs = [_linear_accuracy("complex", groups=["complex"], complex={"clusters_per_class": m}) for m in (1, 8, 32)]
    assert accs[0] > 0.95
    assert accs[0] > accs[1] > accs[2]
    assert accs[2] < 0.5
    # the noise group is at chance for any classifier of x
    assert _linear_accuracy("easy", groups=["noise"]) < 0.1 + 5 * math.sqrt(0.09 / 4000)


def test_center_seed_shares_or_redraws_a_pattern():
    src = _zero_spread(groups=[{"name": "both", "patterns": ["easy", "complex"]}])
    pats = [dict(p) for p in PRESETS["ps10"]["patterns"]]
    pats[0].update(spread=0.0, center_seed=6)  # keep the source's easy centres
    pats[1].update(spread=0.0, center_seed=1234)  # redraw the complex centres
    tgt = pattern_dataset(4000, seed=99, patterns=pats, groups=[{"name": "both", "patterns": ["easy", "complex"]}])
    e, c = src.pattern_slices["easy"], src.pattern_slices["complex"]
    as_set = lambda a: {tuple(r) for r in np.unique(a, axis=0)}
    assert as_set(src.x[:, e]) == as_set(tgt.x[:, e])
    assert not as_set(src.x[:, c]) & as_set(tgt.x[:, c])
    assert tgt.spec["patterns"][1]["center_seed"] == 1234


def test_to_torch_matches_numpy():
    torch = pytest.importorskip("torch")
    ds = pattern_dataset(33, seed=1, label_noise=0.3)
    t = ds.to_torch()
    assert set(t) == {"x", "y", "y_clean", "group", "flipped"}
    assert t["x"].dtype == torch.float32 and t["y"].dtype == torch.int64 and t["flipped"].dtype == torch.bool
    for k in t:
        assert np.array_equal(t[k].numpy(), getattr(ds, k))
    assert t["x"].device.type == "cpu" and ds.to_torch("cpu")["y"].device.type == "cpu"


def test_cli_writes_npz(tmp_path):
    from lrdecay.cli import main

    out = tmp_path / "d.npz"
    assert main(["data", "--preset", "ps10-clean", "--n", "101", "--seed", "3", "--out", str(out)]) == 0
    z = np.load(out)
    ref = pattern_dataset(101, preset="ps10-clean", seed=3)
    assert np.array_equal(z["x"], ref.x) and np.array_equal(z["group"], ref.group)
    with pytest.raises(SystemExit):
        main(["data", "--n", "0", "--out", str(out)])


_BAD = [
    (dict(n=0), ValueError, "n must be"),
    (dict(n=-5), ValueError, "n must be"),
    (dict(n=2.5), TypeError, "n must be"),
    (dict(n=True), TypeError, "n must be"),
    (dict(n=10, preset="nope"), ValueError, "preset"),
    (dict(n=10, preset=3), TypeError, "preset"),
    (dict(n=10, split="val"), ValueError, "split"),
    (dict(n=10, seed=-1), ValueError, "seed"),
    (dict(n=10, seed=2**64), ValueError, "seed"),
    (dict(n=10, seed=1.0), TypeError, "seed"),
    (dict(n=10, label_noise=1.5), ValueError, "label_noise"),
    (dict(n=10, label_noise=float("nan")), ValueError, "label_noise"),
    (dict(n=10, label_noise="0.1"), TypeError, "label_noise"),
    (dict(n=10, n_classes=1), ValueError, "n_classes"),
    (dict(n=10, groups=["bogus"]), ValueError, "unknown group"),
    (dict(n=10, groups=[]), ValueError, "groups"),
    (dict(n=10, groups="easy"), TypeError, "groups"),
    (dict(n=10, groups=["easy", "easy"]), ValueError, "unique"),
    (dict(n=10, groups=[{"name": "a", "patterns": ["zzz"]}]), ValueError, "unknown pattern"),
    (dict(n=10, groups=[{"name": "a", "patterns": [], "weight": 0}]), ValueError, "weight"),
    (dict(n=10, groups=[{"name": "a", "patterns": [], "weight": -1}]), ValueError, "weight"),
    (dict(n=10, patterns=[{"name": "easy", "dim": 0, "clusters_per_class": 1, "radius": 1, "spread": 1}]), ValueError, "dim"),
    (dict(n=10, patterns=[{"name": "easy", "dim": 4, "clusters_per_class": 0, "radius": 1, "spread": 1}]), ValueError, "clusters_per_class"),
    (dict(n=10, patterns=[{"name": "easy", "dim": 4, "clusters_per_class": 1, "radius": -1, "spread": 1}]), ValueError, "radius"),
    (dict(n=10, patterns=[{"name": "easy", "dim": 4, "clusters_per_class": 1, "radius": 1}]), ValueError, "missing"),
    (dict(n=10, patterns=[{"name": "easy", "dim": 4, "clusters_per_class": 1, "radius": 1, "spread": 1, "x": 1}]), ValueError, "unknown keys"),
    (dict(n=10, complex={"spread": float("inf")}), ValueError, "spread"),
    (dict(n=10, complex={"clusters_per_class": 2.0}), TypeError, "clusters_per_class"),
    (dict(n=10, colour={"spread": 1}), ValueError, "unknown keyword"),
    (dict(n=10, weights={"nope": 1}), ValueError, "unknown group"),
    (dict(n=10, n_classes=70_000), ValueError, "n_classes"),
]


@pytest.mark.parametrize("kwargs,exc,msg", _BAD)
def test_bad_input_raises_naming_the_argument(kwargs, exc, msg):
    kwargs = dict(kwargs)
    n = kwargs.pop("n")
    with pytest.raises(exc, match=msg):
        pattern_dataset(n, **kwargs)


def test_presets_do_not_change_when_overridden():
    before = json.dumps(PRESETS, sort_keys=True)
    pattern_dataset(10, complex={"radius": 0.1}, weights={"noise": 0.9})
    assert json.dumps(PRESETS, sort_keys=True) == before


# ---------------------------------------------------------------------------------------- the native boundary


def test_limits_come_from_the_native_module_and_both_sides_agree():
    # Regression: the Rust limits were copied as literals in data.py.
    from lrdecay import _native
    from lrdecay.data import LIMITS, MAX_N, _native_spec

    assert LIMITS == _native.DATA_LIMITS and MAX_N == LIMITS["max_n"] == 2**31 - 1
    assert LIMITS["max_classes"] == 2**16 and LIMITS["max_centre_values"] == 2**28
    pat = {"name": "p", "dim": 1, "clusters_per_class": 1, "radius": 1.0, "spread": 0.0}
    # At each limit Python accepts; one past it Python refuses naming the limit, and so does Rust.
    ok = pattern_dataset(3, n_classes=LIMITS["max_classes"], patterns=[pat], groups=[{"name": "g", "patterns": ["p"]}])
    assert ok.y.max() < LIMITS["max_classes"]
    over = {
        "n_classes": dict(n_classes=LIMITS["max_classes"] + 1),
        "dim": dict(patterns=[{**pat, "dim": LIMITS["max_dim"] + 1}]),
        "clusters_per_class": dict(patterns=[{**pat, "clusters_per_class": LIMITS["max_clusters"] + 1}]),
    }
    for what, kw in over.items():
        kw.setdefault("groups", [{"name": "g", "patterns": ["p"]}] if "patterns" in kw else None)
        with pytest.raises(ValueError, match=what):
            pattern_dataset(3, **kw)
    spec = _native_spec(ok.spec)
    arrays = (np.empty((3, 1), np.float32), np.empty(3, np.int64), np.empty(3, np.int64),
              np.empty(3, np.int32), np.zeros(3, bool))
    _native.pattern_fill(*arrays, spec=spec)
    np.testing.assert_array_equal(arrays[0], ok.x)
    for key, value in [("n_classes", LIMITS["max_classes"] + 1), ("patterns", [{**spec["patterns"][0], "dim": LIMITS["max_dim"] + 1}])]:
        with pytest.raises(ValueError, match=key.rstrip("s")):
            _native.pattern_fill(*arrays, spec={**spec, key: value})
    with pytest.raises(Exception, match="seed"):  # the boundary names its fields
        _native.pattern_fill(*arrays, spec={k: v for k, v in spec.items() if k != "seed"})
