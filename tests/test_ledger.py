"""lrdecay.Ledger against plain-Python / numpy references of every statistic."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrdecay import Ledger

INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


# ---------------------------------------------------------------------------------------- references


class Ref:
    """The ledger's definitions, written the plain way: a list of epochs, each a dict
    sample -> (correct, pred)."""

    def __init__(self, n, groups=None, n_groups=0, flipped=None):
        self.n, self.groups, self.n_groups = n, groups, n_groups
        self.flipped = np.zeros(n, bool) if flipped is None else flipped
        self.has_flipped = flipped is not None
        self.epochs: list[dict[int, tuple[bool, int | None]]] = []
        self.pc: list[float] = []  # predicted_clean per epoch
        self.clean = None
        self.last_pred = None

    def add_epoch(self, rec: dict[int, tuple[bool, int | None]]):
        self.epochs.append(rec)
        has_pred = any(p is not None for _, p in rec.values())
        if has_pred:
            if self.last_pred is None:
                self.last_pred = np.full(self.n, -1, np.int64)
            for i, (_, p) in rec.items():
                self.last_pred[i] = p
        fl = [i for i in rec if self.flipped[i]]
        if has_pred and self.clean is not None and self.has_flipped and fl:
            self.pc.append(np.mean([rec[i][1] == self.clean[i] for i in fl]))
        else:
            self.pc.append(np.nan)

    def per_sample(self, i):
        seq = [(e, rec[i][0]) for e, rec in enumerate(self.epochs) if i in rec]
        tc = sum(c for _, c in seq)
        fl = next((e for e, c in seq if c), -1)
        fe = sum(1 for (_, a), (_, b) in zip(seq, seq[1:]) if a and not b)
        ls = -1
        if seq and seq[-1][1]:
            k = len(seq) - 1
            while k > 0 and seq[k - 1][1]:
                k -= 1
            ls = seq[k][0]
        return tc, len(seq), fl, fe, ls

    def stats(self):
        rows = np.array([self.per_sample(i) for i in range(self.n)], np.int64).reshape(self.n, 5)
        return dict(zip(["times_correct", "presentations", "first_learned", "forgetting_events", "learned_since"], rows.T))

    def history(self):
        h = np.zeros((len(self.epochs), self.n), bool)
        p = np.zeros_like(h)
        for e, rec in enumerate(self.epochs):
            for i, (c, _) in rec.items():
                h[e, i], p[e, i] = c, True
        return h, p

    def summary(self):
        h, p = self.history()

        def frac(mask_rows):
            out = []
            for e in range(len(self.epochs)):
                m = mask_rows[e]
                out.append(h[e][m].mean() if m.any() else np.nan)
            return np.array(out)

        f = self.flipped
        out = {
            "presented": p.sum(1),
            "accuracy": frac(p),
            "accuracy_flipped": frac(p & f),
            "accuracy_clean": frac(p & ~f),
            "predicted_clean": np.array(self.pc),
        }
        g = np.zeros((len(self.epochs), self.n_groups))
        for k in range(self.n_groups):
            g[:, k] = frac(p & (self.groups == k))
        out["accuracy_group"] = g
        return out


def vectorized_stats(h, p):
    """The same statistics from bool history matrices, vectorized over samples (for large n)."""
    e_count, n = h.shape
    fl = np.full(n, -1)
    fe = np.zeros(n, np.int64)
    ls = np.full(n, -1)
    prev = np.zeros(n, bool)
    for e in range(e_count):
        c, pr = h[e] & p[e], p[e]
        fl = np.where(c & (fl < 0), e, fl)
        fe += pr & ~c & prev
        ls = np.where(c & ~prev, e, np.where(pr & ~c, -1, ls))
        prev = np.where(pr, c, prev)
    return {
        "times_correct": (h & p).sum(0),
        "presentations": p.sum(0),
        "first_learned": fl,
        "forgetting_events": fe,
        "learned_since": ls,
    }


# ---------------------------------------------------------------------------------------- helpers


def random_epoch(rng, n, prev, mode):
    """Correctness with persistence (so runs, forgetting and re-learning all occur) and a presented set."""
    c = np.where(rng.random(n) < 0.35, rng.random(n) < 0.6, prev)
    if mode == "epoch":
        pres = np.ones(n, bool)
    else:
        pres = rng.random(n) < rng.uniform(0.2, 1.0)
        if not pres.any():
            pres[rng.integers(n)] = True
    return c, pres


def feed(led, ref, rng, c, pres, mode, with_pred):
    n = led.n_samples
    pred = rng.integers(0, 5, n) if with_pred else None
    if mode == "epoch":
        cc = c if rng.random() < 0.5 else c.astype(np.uint8)
        pd = None if pred is None else pred.astype(INT_DTYPES[rng.integers(len(INT_DTYPES))])
        led.record_epoch(cc, pred=pd)
    else:
        idx = rng.permutation(np.flatnonzero(pres))
        cuts = np.sort(rng.integers(0, len(idx) + 1, rng.integers(0, 6)))
        for part in np.split(idx, cuts):
            if len(part) == 0 and rng.random() < 0.5:
                continue
            it = INT_DTYPES[rng.integers(len(INT_DTYPES))] if n < 127 else np.int64
            bc = c[part] if rng.random() < 0.5 else c[part].astype(np.uint8)
            led.record_batch(part.astype(it), bc, pred=None if pred is None else pred[part].astype(np.int32))
        led.end_epoch()
    ref.add_epoch({int(i): (bool(c[i]), None if pred is None else int(pred[i])) for i in np.flatnonzero(pres)})


def assert_matches(led, ref, *, vectorized=False):
    h, p = ref.history()
    want = vectorized_stats(h, p) if vectorized else ref.stats()
    for k, v in want.items():
        got = getattr(led, k)
        assert got.dtype == np.int32, k
        np.testing.assert_array_equal(got, v, err_msg=k)
    np.testing.assert_array_equal(led.never_learned, want["first_learned"] < 0)
    np.testing.assert_array_equal(led.history(), h)
    np.testing.assert_array_equal(led.presented_history(), p)
    assert led.n_epochs == len(ref.epochs)
    s, rs = led.summary(), ref.summary()
    np.testing.assert_array_equal(s["epoch"], np.arange(led.n_epochs))
    np.testing.assert_array_equal(s["presented"], rs["presented"])
    for k in ["accuracy", "accuracy_flipped", "accuracy_clean", "predicted_clean", "accuracy_group"]:
        np.testing.assert_allclose(s[k], rs[k], rtol=1e-12, atol=0, equal_nan=True, err_msg=k)
    np.testing.assert_array_equal(s["memorized"], s["accuracy_flipped"])
    if ref.last_pred is None:
        assert led.last_pred is None
    else:
        np.testing.assert_array_equal(led.last_pred, ref.last_pred)


def make(rng, n, n_groups=3):
    groups = rng.integers(0, n_groups, n)
    flipped = rng.random(n) < 0.25
    names = [f"g{k}" for k in range(n_groups)]
    led = Ledger(n, groups=groups, group_names=names, flipped=flipped)
    return led, Ref(n, groups, n_groups, flipped)


def snapshot(led):
    """Everything observable, for 'the ledger is unchanged' checks."""
    out = {k: np.asarray(v).copy() for k, v in led.state_dict().items() if k != "group_names"}
    out["group_names"] = tuple(led.group_names)
    for k in ["times_correct", "presentations", "first_learned", "forgetting_events", "learned_since"]:
        out[k] = getattr(led, k).copy()
    return out


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# ---------------------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("n", [1, 2, 63, 64, 65, 127, 129, 1000])
@pytest.mark.parametrize("mode", ["epoch", "batch", "mixed"])
def test_statistics_match_reference(n, mode):
    rng = np.random.default_rng([n, len(mode)])
    led, ref = make(rng, n)
    c = rng.random(n) < 0.3
    y_clean = rng.integers(0, 5, n)
    for e in range(12):
        if e == 4:
            led.set_clean_labels(y_clean)
            ref.clean = y_clean
        m = mode if mode != "mixed" else ("epoch", "batch")[rng.integers(2)]
        c, pres = random_epoch(rng, n, c, m)
        feed(led, ref, rng, c, pres, m, with_pred=e % 3 != 1)
        if e in (0, 5, 11):
            assert_matches(led, ref)


def test_statistics_large_partial():
    n = 200_003
    rng = np.random.default_rng(7)
    led, ref = make(rng, n, n_groups=5)
    c = rng.random(n) < 0.3
    for e in range(6):
        m = "epoch" if e % 2 == 0 else "batch"
        c, pres = random_epoch(rng, n, c, m)
        pred = rng.integers(0, 10, n)
        if m == "epoch":
            led.record_epoch(c, pred=pred)
        else:
            idx = rng.permutation(np.flatnonzero(pres))
            for part in np.array_split(idx, 7):
                led.record_batch(part, c[part], pred=pred[part])
            led.end_epoch()
        h_row = c & pres
        ref.epochs.append((h_row, pres))
    h = np.array([r[0] for r in ref.epochs])
    p = np.array([r[1] for r in ref.epochs])
    want = vectorized_stats(h, p)
    for k, v in want.items():
        np.testing.assert_array_equal(getattr(led, k), v, err_msg=k)
    np.testing.assert_array_equal(led.history(), h)
    np.testing.assert_array_equal(led.presented_history(), p)
    s = led.summary()
    for e in range(len(h)):
        np.testing.assert_allclose(s["accuracy"][e], h[e][p[e]].mean(), rtol=1e-12)
        f = ref.flipped & p[e]
        np.testing.assert_allclose(s["accuracy_flipped"][e], h[e][f].mean(), rtol=1e-12)
        np.testing.assert_allclose(s["accuracy_clean"][e], h[e][p[e] & ~ref.flipped].mean(), rtol=1e-12)
        for k in range(5):
            g = p[e] & (ref.groups == k)
            np.testing.assert_allclose(s["accuracy_group"][e, k], h[e][g].mean(), rtol=1e-12)
            assert s["presented_group"][e, k] == g.sum()


def test_vectorized_reference_agrees_with_plain_reference():
    rng = np.random.default_rng(3)
    ref = Ref(40)
    c = rng.random(40) < 0.5
    for _ in range(15):
        c, pres = random_epoch(rng, 40, c, "batch")
        ref.add_epoch({int(i): (bool(c[i]), None) for i in np.flatnonzero(pres)})
    want, got = ref.stats(), vectorized_stats(*ref.history())
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_hand_computed_case():
    # Sample 0: presented at epochs 0,1,3,4 with C W (skip) C C; sample 1 never presented after epoch 0.
    led = Ledger(2)
    led.record_batch([0, 1], np.array([True, False]))
    led.end_epoch()
    led.record_batch([0], [False])
    led.end_epoch()
    led.record_batch([1], [False])
    led.end_epoch()
    led.record_batch(np.array([0]), np.array([1], np.uint8))
    led.end_epoch()
    led.record_batch([0], [True])
    led.end_epoch()
    np.testing.assert_array_equal(led.times_correct, [3, 0])
    np.testing.assert_array_equal(led.presentations, [4, 2])
    np.testing.assert_array_equal(led.first_learned, [0, -1])
    np.testing.assert_array_equal(led.forgetting_events, [1, 0])
    np.testing.assert_array_equal(led.learned_since, [3, -1])
    np.testing.assert_array_equal(led.never_learned, [False, True])
    assert led.last_pred is None


def test_forgetting_spans_unpresented_epochs():
    led = Ledger(1)
    led.record_epoch([True])
    for _ in range(3):  # not presented: neither right nor wrong
        led.record_batch(np.array([], np.int64), np.array([], bool))
        with pytest.raises(ValueError, match="nothing recorded"):
            led.end_epoch()
    led.record_batch([0], [False])
    led.end_epoch()
    assert led.forgetting_events[0] == 1 and led.learned_since[0] == -1


def test_last_pred_only_for_presented_samples():
    led = Ledger(3)
    led.record_batch([2, 0], [True, False], pred=np.array([7, 4], np.uint16))
    led.end_epoch()
    np.testing.assert_array_equal(led.last_pred, [4, -1, 7])
    led.record_batch([1], [True], pred=[9])
    led.end_epoch()
    np.testing.assert_array_equal(led.last_pred, [4, 9, 7])
    led.record_epoch([True, True, False])  # no pred: last_pred stays
    np.testing.assert_array_equal(led.last_pred, [4, 9, 7])


def test_predicted_clean_and_memorized_by_hand():
    flipped = np.array([True, True, False, True])
    led = Ledger(4, flipped=flipped)
    led.record_epoch([True, False, True, False], pred=[1, 2, 3, 4])
    led.set_clean_labels([1, 0, 3, 4])
    led.record_epoch([True, False, True, False], pred=[1, 2, 3, 4])
    s = led.summary()
    np.testing.assert_allclose(s["memorized"], [1 / 3, 1 / 3])
    np.testing.assert_allclose(s["accuracy_clean"], [1.0, 1.0])
    assert np.isnan(s["predicted_clean"][0])  # clean labels not known yet at epoch 0
    np.testing.assert_allclose(s["predicted_clean"][1], 2 / 3)  # samples 0 and 3 of the 3 flipped
    assert s["accuracy_group"].shape == (2, 0) and s["group_names"] == []


def test_summary_nan_where_nothing_presented_and_default_group_names():
    led = Ledger(4, groups=np.array([0, 0, 2, 2]))
    assert led.group_names == ("0", "1", "2")
    led.record_batch([0, 1], [True, False])
    led.end_epoch()
    s = led.summary()
    np.testing.assert_allclose(s["accuracy_group"], [[0.5, np.nan, np.nan]], equal_nan=True)
    assert np.isnan(s["accuracy_flipped"][0]) and np.isnan(s["predicted_clean"][0])
    np.testing.assert_allclose(s["accuracy_clean"], [0.5])


def test_summary_as_frame():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    led, _ = make(rng, 50)
    for _ in range(3):
        led.record_epoch(rng.random(50) < 0.5)
    df = led.summary(as_frame=True)
    s = led.summary()
    assert isinstance(df, pd.DataFrame) and len(df) == 3
    for k, name in enumerate(led.group_names):
        np.testing.assert_array_equal(df[f"accuracy[{name}]"].to_numpy(), s["accuracy_group"][:, k])
    np.testing.assert_array_equal(df["accuracy"].to_numpy(), s["accuracy"])


def test_summary_as_frame_without_pandas(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    led = Ledger(3)
    led.record_epoch([True, False, True])
    with pytest.raises(ImportError, match="pip install pandas"):
        led.summary(as_frame=True)


@pytest.mark.parametrize("n_groups", [1, 64, 65, 300])  # bit-mask path up to 64 groups, id lookup above
def test_group_accuracy_many_groups(n_groups):
    n = 3001
    rng = np.random.default_rng(n_groups)
    groups = rng.integers(0, n_groups, n)
    led = Ledger(n, groups=groups)
    assert led.n_groups == groups.max() + 1
    h, p = [], []
    for _ in range(3):
        c = rng.random(n) < 0.5
        pres = rng.random(n) < 0.7
        idx = np.flatnonzero(pres)
        led.record_batch(idx, c[idx])
        led.end_epoch()
        h.append(c & pres)
        p.append(pres)
    s = led.summary()
    for e in range(3):
        for k in range(led.n_groups):
            m = p[e] & (groups == k)
            want = h[e][m].mean() if m.any() else np.nan
            np.testing.assert_allclose(s["accuracy_group"][e, k], want, rtol=1e-12, equal_nan=True)
            assert s["presented_group"][e, k] == m.sum()


def test_history_is_two_bits_per_sample_epoch():
    led = Ledger(64 * 100)
    for _ in range(7):
        led.record_epoch(np.ones(6400, bool))
    assert led.history_nbytes == 2 * 6400 * 7 // 8
    small = Ledger(65)
    small.record_epoch(np.ones(65, bool))
    assert small.history_nbytes == 2 * 2 * 8  # two planes of two words each


# ---------------------------------------------------------------------------------------- persistence


def _continue(led, rng_seed, epochs=4):
    rng = np.random.default_rng(rng_seed)
    n = led.n_samples
    for e in range(epochs):
        c = rng.random(n) < 0.5
        if e % 2:
            led.record_epoch(c, pred=rng.integers(0, 5, n))
        else:
            idx = rng.permutation(n)[: max(1, n // 2)]
            led.record_batch(idx, c[idx], pred=rng.integers(0, 5, len(idx)))
            led.end_epoch()


@pytest.mark.parametrize("n", [1, 65, 3000])
def test_state_dict_round_trip_then_continue(n):
    rng = np.random.default_rng(n)
    led, _ = make(rng, n)
    led.set_clean_labels(rng.integers(0, 5, n))
    _continue(led, 1)
    sd = led.state_dict()
    other = Ledger(5)  # a different shape: load_state_dict replaces everything
    other.load_state_dict(sd)
    assert_same(snapshot(other), snapshot(led))
    _continue(other, 2)
    _continue(led, 2)
    assert_same(snapshot(other), snapshot(led))
    for k in ["accuracy", "accuracy_group", "predicted_clean"]:
        np.testing.assert_array_equal(other.summary()[k], led.summary()[k])


@pytest.mark.parametrize("n", [1, 127, 5000])
def test_save_load_round_trip_then_continue(tmp_path, n):
    rng = np.random.default_rng(n + 1)
    led, _ = make(rng, n)
    _continue(led, 3)
    path = tmp_path / "ledger.npz"
    led.save(path)
    assert os.listdir(tmp_path) == ["ledger.npz"]  # temp file renamed away
    back = Ledger.load(path)
    assert back.group_names == led.group_names
    assert_same(snapshot(back), snapshot(led))
    np.testing.assert_array_equal(back.history(), led.history())
    _continue(back, 4)
    _continue(led, 4)
    assert_same(snapshot(back), snapshot(led))
    led.save(str(path))  # overwrite in place
    assert_same(snapshot(Ledger.load(str(path))), snapshot(led))


def test_empty_ledger_round_trip(tmp_path):
    led = Ledger(10)
    led.save(tmp_path / "e.npz")
    back = Ledger.load(tmp_path / "e.npz")
    assert back.n_epochs == 0 and back.n_samples == 10 and back.last_pred is None


def test_load_rejects_non_ledgers_and_truncated_files(tmp_path):
    led, _ = make(np.random.default_rng(0), 300)
    _continue(led, 5)
    good = tmp_path / "good.npz"
    led.save(good)
    data = good.read_bytes()
    (tmp_path / "trunc.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.npz").write_text("hello")
    np.savez(tmp_path / "other.npz", a=np.arange(3))
    np.save(tmp_path / "arr.npy", np.arange(3))
    sd = {k: np.asarray(v) for k, v in led.state_dict().items()}
    sd["format"] = np.asarray("something.else")
    np.savez(tmp_path / "wrongfmt.npz", **sd)
    for name in ["trunc.npz", "text.npz", "other.npz", "arr.npy", "wrongfmt.npz"]:
        with pytest.raises(ValueError):
            Ledger.load(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        Ledger.load(tmp_path / "missing.npz")


def test_load_state_dict_rejects_bad_states_and_changes_nothing():
    rng = np.random.default_rng(11)
    led, _ = make(rng, 130)
    _continue(led, 6)
    before = snapshot(led)
    sd = led.state_dict()

    def variant(**changes):
        d = dict(sd)
        for k, v in changes.items():
            if v is None:
                d.pop(k)
            else:
                d[k] = v
        return d

    hc = sd["hist_correct"].copy()
    hc[0, 0] |= ~sd["hist_presented"][0, 0]  # a correct bit on a sample that was not presented
    hp_tail = sd["hist_presented"].copy()
    hp_tail[:, -1] |= np.uint64(1) << np.uint64(63)  # beyond n_samples = 130
    bad = [
        "not a dict",
        variant(hist_correct=None),
        variant(version=99),
        variant(format="x"),
        variant(n_samples=131),
        variant(n_epochs=sd["n_epochs"] + 1),
        variant(hist_correct=hc),
        variant(hist_presented=hp_tail),
        variant(hist_correct=sd["hist_correct"].astype(np.float64)),
        variant(groups=np.full(130, 7)),
        variant(group_names=["a"]),
        variant(last_pred=np.full(3, 1)),
        variant(pred_clean=np.zeros((sd["n_epochs"] + 1, 2), np.int64)),
        variant(flipped=np.ones(129, bool)),
    ]
    for b in bad:
        with pytest.raises(ValueError):
            led.load_state_dict(b)
        assert_same(snapshot(led), before)


def test_state_dict_refuses_open_epoch():
    led = Ledger(5)
    led.record_batch([1], [True])
    with pytest.raises(ValueError, match="end_epoch"):
        led.state_dict()


# ---------------------------------------------------------------------------------------- bad input


def test_constructor_rejects_bad_input():
    with pytest.raises(ValueError, match="n_samples"):
        Ledger(0)
    with pytest.raises(TypeError, match="n_samples"):
        Ledger(3.5)
    with pytest.raises(ValueError, match="groups"):
        Ledger(3, groups=[0, 1])
    with pytest.raises(ValueError, match=r"groups\[2\]"):
        Ledger(3, groups=[0, 1, 2], group_names=["a", "b"])
    with pytest.raises(ValueError, match=r"groups\[1\]"):
        Ledger(3, groups=[0, -1, 1])
    with pytest.raises(ValueError, match="groups"):
        Ledger(2, groups=np.array([0, 2**40]))
    with pytest.raises(TypeError, match="groups"):
        Ledger(3, groups=[0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="group_names"):
        Ledger(3, group_names=["a"])
    with pytest.raises(ValueError, match="group_names"):
        Ledger(3, groups=[0, 1, 1], group_names=["a", "a"])
    with pytest.raises(TypeError, match="group_names"):
        Ledger(3, groups=[0, 1, 1], group_names="ab")
    with pytest.raises(TypeError, match="flipped"):
        Ledger(3, flipped=[0, 1, 1])
    with pytest.raises(ValueError, match="flipped"):
        Ledger(3, flipped=[True, False])


def _bad_calls(n):
    ok_c = np.ones(n, bool)
    return [
        (ValueError, "length", lambda l: l.record_epoch(np.ones(n + 1, bool))),
        (TypeError, "dtype", lambda l: l.record_epoch(np.ones(n))),
        (TypeError, "dtype", lambda l: l.record_epoch(np.ones(n, np.int64))),
        (ValueError, "1-D", lambda l: l.record_epoch(np.ones((n, 1), bool))),
        (ValueError, "0 or 1", lambda l: l.record_epoch(np.full(n, 2, np.uint8))),
        (ValueError, "pred has length", lambda l: l.record_epoch(ok_c, pred=np.zeros(n - 1, int))),
        (TypeError, "pred", lambda l: l.record_epoch(ok_c, pred=np.zeros(n))),
        (ValueError, r"pred\[", lambda l: l.record_epoch(ok_c, pred=np.full(n, -1))),
        (ValueError, r"pred\[", lambda l: l.record_epoch(ok_c, pred=np.full(n, 2**40))),
        (ValueError, "out of range", lambda l: l.record_batch([0, n], [True, True])),
        (ValueError, "out of range", lambda l: l.record_batch([-1], [True])),
        (ValueError, "out of range", lambda l: l.record_batch(np.array([2**63], np.uint64), [True])),
        (ValueError, "repeated within this batch", lambda l: l.record_batch([1, 2, 1], [True] * 3)),
        (ValueError, "length", lambda l: l.record_batch([0, 1], [True])),
        (ValueError, "pred has length", lambda l: l.record_batch([0, 1], [True, True], pred=[1])),
        (TypeError, "indices", lambda l: l.record_batch([0.0], [True])),
        (ValueError, "nothing recorded", lambda l: l.end_epoch()),
        (ValueError, "y_clean", lambda l: l.set_clean_labels(np.zeros(n + 1, int))),
        (ValueError, "y_clean", lambda l: l.set_clean_labels(np.full(n, -3))),
    ]


@pytest.mark.parametrize("k", range(len(_bad_calls(4))))
def test_bad_input_changes_nothing(k):
    n = 70
    exc, match, call = _bad_calls(n)[k]
    rng = np.random.default_rng(k)
    led, _ = make(rng, n)
    twin, _ = make(np.random.default_rng(k), n)
    _continue(led, 8)
    _continue(twin, 8)
    before = snapshot(led)
    with pytest.raises(exc, match=match):
        call(led)
    assert_same(snapshot(led), before)
    assert not led.epoch_open
    _continue(led, 9)  # and it keeps working exactly like a ledger that never saw the bad call
    _continue(twin, 9)
    assert_same(snapshot(led), snapshot(twin))


def test_bad_batches_mid_epoch_change_nothing():
    n = 130
    rng = np.random.default_rng(0)
    led, twin = Ledger(n), Ledger(n)
    for l in (led, twin):
        l.record_batch([3, 64, 129], [True, False, True], pred=[1, 2, 3])
    bad = [
        (ValueError, "earlier batch", lambda l: l.record_batch([5, 64], [True, True], pred=[0, 0])),
        (ValueError, "repeated within", lambda l: l.record_batch([5, 6, 5], [True] * 3, pred=[0] * 3)),
        (ValueError, "pred missing", lambda l: l.record_batch([5], [True])),
        (ValueError, "end_epoch", lambda l: l.record_epoch(np.ones(n, bool))),
        (ValueError, "out of range", lambda l: l.record_batch([5, 130], [True, True], pred=[0, 0])),
    ]
    for exc, match, call in bad:
        with pytest.raises(exc, match=match):
            call(led)
        assert led.epoch_open
    for l in (led, twin):
        l.record_batch([5, 6], [False, True], pred=[4, 4])
        l.end_epoch()
    assert_same(snapshot(led), snapshot(twin))
    np.testing.assert_array_equal(led.presented_history()[0], np.isin(np.arange(n), [3, 5, 6, 64, 129]))
    del rng


# ---------------------------------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 70),
    ops=st.lists(
        st.tuples(st.sampled_from(["epoch", "batch", "end", "bad"]), st.integers(0, 2**32 - 1)),
        max_size=25,
    ),
)
def test_random_call_sequences_match_reference(n, ops):
    led = Ledger(n)
    ref = Ref(n)
    pending: dict[int, tuple[bool, int | None]] = {}
    for op, seed in ops:
        rng = np.random.default_rng(seed)
        if op == "epoch":
            c = rng.random(n) < 0.5
            if pending:
                with pytest.raises(ValueError):
                    led.record_epoch(c)
                continue
            led.record_epoch(c)
            ref.add_epoch({i: (bool(c[i]), None) for i in range(n)})
        elif op == "batch":
            free = [i for i in range(n) if i not in pending]
            if not free:
                continue
            k = int(rng.integers(1, len(free) + 1))
            idx = rng.choice(free, k, replace=False)
            c = rng.random(k) < 0.5
            led.record_batch(idx, c)
            pending.update({int(i): (bool(b), None) for i, b in zip(idx, c)})
        elif op == "end":
            if not pending:
                with pytest.raises(ValueError):
                    led.end_epoch()
                continue
            led.end_epoch()
            ref.add_epoch(pending)
            pending = {}
        else:
            with pytest.raises((ValueError, TypeError)):
                led.record_batch([int(rng.integers(n, n + 10))], [True])
    assert led.epoch_open == bool(pending)
    assert_matches(led, ref)


# ---------------------------------------------------------------------------------------- determinism


@pytest.mark.slow
def test_same_result_whatever_the_thread_count(tmp_path):
    script = (
        "import numpy as np, hashlib, lrdecay\n"
        "rng = np.random.default_rng(5); n = 300_001\n"
        "l = lrdecay.Ledger(n, groups=rng.integers(0, 3, n), flipped=rng.random(n) < .2)\n"
        "for e in range(4): l.record_epoch(rng.random(n) < .5, pred=rng.integers(0, 9, n))\n"
        "h = hashlib.sha256()\n"
        "for k, v in sorted(l.state_dict().items()): h.update(np.asarray(v).tobytes())\n"
        "for a in (l.times_correct, l.forgetting_events, l.learned_since, l.first_learned):\n"
        "    h.update(a.tobytes())\n"
        "h.update(np.asarray(l.summary()['accuracy_group']).tobytes()); print(h.hexdigest())\n"
    )
    outs = set()
    for threads in ("1", "2", "3"):
        env = dict(os.environ, RAYON_NUM_THREADS=threads)
        r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        outs.add(r.stdout.strip())
    assert len(outs) == 1


# ---------------------------------------------------------------------------------------- numpy bools


def _odd_bools(rng, n, p_true=0.5):
    """A bool array whose True bytes are arbitrary nonzero bytes (e.g. a uint8 buffer viewed as bool):
    numpy reads any nonzero byte as True."""
    raw = np.where(rng.random(n) < p_true, rng.integers(1, 256, n), 0).astype(np.uint8)
    return raw.view(bool)


def test_bool_bytes_other_than_0_1_are_true_not_another_sample():
    # Regression: byte 2 at sample 1 used to be counted for sample 2.
    raw = np.zeros(64, np.uint8)
    raw[1] = 2
    led = Ledger(64)
    led.record_epoch(raw.view(bool))
    np.testing.assert_array_equal(np.flatnonzero(led.times_correct), [1])


@pytest.mark.parametrize("n", [1, 7, 63, 64, 65, 200, 4097])
def test_odd_bool_bytes_read_as_numpy_reads_them(n):
    rng = np.random.default_rng(n)
    groups = rng.integers(0, 3, n)
    flipped_odd = _odd_bools(rng, n, 0.3)
    flipped = np.flatnonzero(flipped_odd)  # numpy's reading: nonzero bytes are True
    flipped_mask = np.zeros(n, bool)
    flipped_mask[flipped] = True
    odd = Ledger(n, groups=groups, flipped=flipped_odd)
    ref = Ledger(n, groups=groups, flipped=flipped_mask)
    for e in range(4):
        c = _odd_bools(rng, n)
        clean = c.view(np.uint8) != 0
        if e % 2 == 0:
            odd.record_epoch(c)
            ref.record_epoch(clean)
        else:
            idx = rng.permutation(n)[: max(1, n // 2)]
            odd.record_batch(idx, c[idx])
            ref.record_batch(idx, clean[idx])
            odd.end_epoch()
            ref.end_epoch()
    assert_same(snapshot(odd), snapshot(ref))
    np.testing.assert_array_equal(odd.times_correct, ref.times_correct)
    s_odd, s_ref = odd.summary(), ref.summary()
    for k in ["presented_flipped", "accuracy_flipped", "accuracy_clean", "accuracy_group"]:
        np.testing.assert_array_equal(s_odd[k], s_ref[k], err_msg=k)
    # and the state's flip mask is a clean bool array
    assert set(np.unique(odd.state_dict()["flipped"].view(np.uint8)).tolist()) <= {0, 1}


def test_uint8_correctness_must_still_be_0_or_1():
    raw = np.zeros(10, np.uint8)
    raw[3] = 2
    led = Ledger(10)
    with pytest.raises(ValueError, match=r"correct\[3\] = 2"):
        led.record_epoch(raw)
    assert led.n_epochs == 0


# ---------------------------------------------------------------------------------------- damaged files


def _ledger_file(tmp_path):
    led, _ = make(np.random.default_rng(21), 70)
    led.set_clean_labels(np.random.default_rng(22).integers(0, 5, 70))
    _continue(led, 23, epochs=3)
    path = tmp_path / "good.npz"
    led.save(path)
    return led, path.read_bytes()


def _whole_or_refused(data, want):
    """Loading damaged file bytes either raises ValueError or gives back exactly the saved ledger."""
    import io

    try:
        got = Ledger.load(io.BytesIO(data))
    except ValueError:
        return "refused"
    assert_same(snapshot(got), want)
    assert got.group_names == tuple(want["group_names"])
    return "whole"


@pytest.mark.slow
def test_every_single_bit_flip_loads_whole_or_is_refused(tmp_path):
    # Regression: one bit flip (a zip comment length) loaded a ledger without last_pred and the clean
    # labels; other flips raised NotImplementedError or RuntimeError.
    led, data = _ledger_file(tmp_path)
    want = snapshot(led)
    rng = np.random.default_rng(0)
    # Every bit of the zip's central directory and end record (member names, sizes, comment lengths),
    # then one random bit of each other byte.
    cd_start = int.from_bytes(data[-6:-2], "little")
    assert 0 < cd_start < len(data) - 22
    flips = [(pos, bit) for pos in range(cd_start, len(data)) for bit in range(8)]
    flips += [(pos, int(rng.integers(8))) for pos in range(cd_start)]
    outcomes = []
    for pos, bit in flips:
        bad = bytearray(data)
        bad[pos] ^= 1 << bit
        outcomes.append(_whole_or_refused(bytes(bad), want))
    assert outcomes.count("refused") > len(flips) // 2


@pytest.mark.slow
def test_every_truncation_is_refused(tmp_path):
    led, data = _ledger_file(tmp_path)
    path = tmp_path / "short.npz"
    for size in range(0, len(data), 7):
        path.write_bytes(data[:size])
        with pytest.raises(ValueError):
            Ledger.load(path)


def test_a_file_missing_a_member_is_refused(tmp_path):
    led, data = _ledger_file(tmp_path)
    import zipfile

    for drop in ["last_pred", "clean_labels", "flipped"]:
        src = zipfile.ZipFile(tmp_path / "good.npz")
        out = tmp_path / f"no_{drop}.npz"
        with zipfile.ZipFile(out, "w") as z:
            for info in src.infolist():
                if info.filename != f"{drop}.npy":
                    z.writestr(info, src.read(info.filename))
        with pytest.raises(ValueError, match="checksum"):
            Ledger.load(out)


# ---------------------------------------------------------------------------------------- limits


@pytest.mark.parametrize("n", [2**31, 2**64, 2**70])
def test_too_many_samples_names_the_argument_and_the_range(n):
    # Regression: Ledger(2**64) raised OverflowError("int too big to convert").
    with pytest.raises(ValueError, match=r"n_samples must be an int in \[1, 2147483647\], got " + str(n)):
        Ledger(n)


def test_limits_and_count_columns_come_from_the_native_module():
    from lrdecay import _native
    from lrdecay.ledger import LIMITS

    assert LIMITS == _native.LEDGER_LIMITS == {
        "max_samples": 2**31 - 1, "max_groups": 2**16, "max_epochs": 2**31 - 2, "max_label": 2**31 - 1,
    }
    assert _native.LEDGER_COUNT_COLUMNS == (
        "presented", "correct", "presented_flipped", "correct_flipped", "flipped_pred_clean", "flipped_with_pred",
    )
    # The named columns are what summary() reports, on a hand-checkable case.
    led = Ledger(4, groups=[0, 0, 1, 1], flipped=np.array([True, False, False, True]))
    led.set_clean_labels([1, 1, 1, 1])
    led.record_epoch(np.array([True, True, False, True]), pred=[1, 0, 2, 3])
    counts = dict(zip(_native.LEDGER_COUNT_COLUMNS, led._core.epoch_counts()[0]))
    assert counts == {"presented": 4, "correct": 3, "presented_flipped": 2, "correct_flipped": 2,
                      "flipped_pred_clean": 1, "flipped_with_pred": 2}
    s = led.summary()
    assert s["presented"][0] == 4 and s["accuracy"][0] == 0.75 and s["predicted_clean"][0] == 0.5
    with pytest.raises(ValueError, match=r"groups: at most 65536 groups"):
        Ledger(3, groups=[0, 1, 2], group_names=[str(i) for i in range(2**16 + 1)])
