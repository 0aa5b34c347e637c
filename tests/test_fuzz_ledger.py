"""Fuzz: lrdecay.Ledger's arguments (see tests/support/fuzz.py). Valid call sequences against a plain
reference are fuzzed in tests/test_ledger.py (test_random_call_sequences_match_reference); damaged files in
test_every_single_bit_flip_loads_whole_or_is_refused. Here: every bad argument is refused naming it, and
changes nothing."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from support.fuzz import FEW, FUZZ, anything, clean_outcome, not_an_int, rejected
from lrdecay import Ledger


def _state(led):
    sd = led.state_dict()
    return {k: (np.asarray(v).tobytes(), np.asarray(v).shape) for k, v in sd.items()}


@st.composite
def a_ledger(draw):
    n = draw(st.integers(1, 150))
    kw = {}
    if draw(st.booleans()):
        k = draw(st.integers(1, 4))
        kw["groups"] = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
        kw["group_names"] = [f"g{i}" for i in range(k)]
    if draw(st.booleans()):
        kw["flipped"] = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    led = Ledger(n, **kw)
    for _ in range(draw(st.integers(0, 3))):
        led.record_epoch(np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))),
                         pred=np.array(draw(st.lists(st.integers(0, 9), min_size=n, max_size=n))))
    return led


_bad_call = st.sampled_from([
    ("correct", "record_epoch: wrong length"),
    ("correct", "record_epoch: float dtype"),
    ("correct", "record_epoch: 2-D"),
    ("correct", "record_epoch: uint8 not 0/1"),
    ("pred", "record_epoch: negative pred"),
    ("pred", "record_epoch: pred too large"),
    ("pred", "record_epoch: pred wrong length"),
    ("indices", "record_batch: index out of range"),
    ("indices", "record_batch: repeated index"),
    ("indices", "record_batch: float indices"),
    ("correct", "record_batch: length differs from indices"),
    ("y_clean", "set_clean_labels: wrong length"),
    ("y_clean", "set_clean_labels: negative"),
])


@FUZZ
@given(a_ledger(), _bad_call, st.data())
def test_ledger_one_bad_argument_changes_nothing(led, case, data):
    name, what = case
    n = led.n_samples
    before = _state(led)
    ok = np.ones(n, bool)
    calls = {
        "record_epoch: wrong length": lambda: led.record_epoch(np.ones(n + data.draw(st.integers(1, 5)), bool)),
        "record_epoch: float dtype": lambda: led.record_epoch(np.ones(n)),
        "record_epoch: 2-D": lambda: led.record_epoch(np.ones((n, 1), bool)),
        "record_epoch: uint8 not 0/1": lambda: led.record_epoch(np.full(n, data.draw(st.integers(2, 255)), np.uint8)),
        "record_epoch: negative pred": lambda: led.record_epoch(ok, pred=np.full(n, -data.draw(st.integers(1, 2**40)))),
        "record_epoch: pred too large": lambda: led.record_epoch(ok, pred=np.full(n, 2**31 + data.draw(st.integers(0, 2**40)))),
        "record_epoch: pred wrong length": lambda: led.record_epoch(ok, pred=np.zeros(n + 1, np.int64)),
        "record_batch: index out of range": lambda: led.record_batch(np.array([0, n + data.draw(st.integers(0, 9))]), np.ones(2, bool)),
        "record_batch: repeated index": lambda: led.record_batch(np.array([n - 1, n - 1]), np.ones(2, bool)),
        "record_batch: float indices": lambda: led.record_batch(np.array([0.0]), np.ones(1, bool)),
        "record_batch: length differs from indices": lambda: led.record_batch(np.array([0]), np.ones(2, bool)),
        "set_clean_labels: wrong length": lambda: led.set_clean_labels(np.zeros(n + 1, np.int64)),
        "set_clean_labels: negative": lambda: led.set_clean_labels(np.full(n, -1)),
    }
    rejected(calls[what], name)
    assert not led.epoch_open and _state(led) == before


@FUZZ
@given(st.sampled_from(["n_samples", "groups", "group_names", "flipped"]), st.integers(1, 50), st.data())
def test_ledger_constructor_one_bad_argument(name, n, data):
    if name == "n_samples":
        rejected(Ledger, "n_samples", data.draw(st.one_of(st.integers(max_value=0), st.integers(2**31, 2**80), not_an_int)))
        return
    bad = data.draw(st.sampled_from({
        "groups": [np.zeros(n + 1, np.int64), np.full(n, -1), np.zeros(n), np.zeros((n, 2), np.int64)],
        "group_names": ["ab", [1], ["a", "a"], []],
        "flipped": [np.zeros(n + 1, bool), np.zeros(n, np.int64), np.zeros(n)],
    }[name]))
    kw = {"groups": np.zeros(n, np.int64)} if name == "group_names" else {}
    if name == "groups":
        kw["group_names"] = ["a"] if (np.asarray(bad).dtype.kind in "iu" and np.asarray(bad).ndim == 1 and (bad >= 0).all()) else None
    rejected(Ledger, name, n, **{**kw, name: bad})


@FUZZ
@given(led=a_ledger())
def test_ledger_save_load_round_trip(tmp_path_factory, led):
    path = tmp_path_factory.mktemp("ledger") / "l.npz"
    led.save(path)
    back = Ledger.load(path)
    again = Ledger.load(io.BytesIO(path.read_bytes()))
    assert _state(back) == _state(led) == _state(again) and back.group_names == led.group_names


@FEW
@given(n=st.one_of(st.integers(-2, 40), anything), groups=st.one_of(st.none(), anything),
       group_names=st.one_of(st.none(), anything), flipped=st.one_of(st.none(), anything),
       correct=anything, pred=st.one_of(st.none(), anything))
def test_ledger_anything(n, groups, group_names, flipped, correct, pred):
    led = clean_outcome(Ledger, n, groups=groups, group_names=group_names, flipped=flipped)
    if led is not None:
        before = _state(led)
        if clean_outcome(led.record_epoch, correct, pred=pred) is None and led.n_epochs == 0:
            assert _state(led) == before
        led.summary()
