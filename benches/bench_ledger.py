"""Ledger epoch ingest: lrdecay.Ledger (Rust) vs the vectorized numpy update a user would write.

Workload: 1M samples × 50 epochs (whole-epoch records, 2 groups, 20% flipped samples), then one read of
every per-sample statistic. Correctness follows a persistent random walk (each sample keeps its state
with probability 0.9 per epoch), like a network that learns and forgets some samples. Both sides are
timed in the same run (best of ``ROUNDS``); the ratio goes to ``extra_info["speedup_vs_numpy"]``.
Under ``--benchmark-disable`` the sizes shrink so the file runs in well under a second.
"""

from __future__ import annotations

import time

import numpy as np

from lrdecay import Ledger

N_SAMPLES, N_EPOCHS = 1_000_000, 50
SMALL = (20_001, 6)
ROUNDS = 3


class NumpyLedger:
    """The same bookkeeping, vectorized numpy: the baseline (whole epochs, every sample presented)."""

    def __init__(self, n: int, groups: np.ndarray, n_groups: int, flipped: np.ndarray) -> None:
        self.n, self.groups, self.n_groups, self.flipped = n, groups, n_groups, flipped
        self.epoch = 0
        self.times_correct = np.zeros(n, np.int32)
        self.presentations = np.zeros(n, np.int32)
        self.first_learned = np.full(n, -1, np.int32)
        self.forgetting_events = np.zeros(n, np.int32)
        self.run_start = np.full(n, -1, np.int32)
        self.last = np.zeros(n, bool)
        self.history: list[np.ndarray] = []  # packbits: 1 bit per sample-epoch
        self.counts: list[tuple] = []

    def record_epoch(self, c: np.ndarray) -> None:
        e = self.epoch
        self.presentations += 1
        self.times_correct += c
        self.forgetting_events += self.last & ~c
        np.copyto(self.first_learned, e, where=c & (self.first_learned < 0))
        np.copyto(self.run_start, e, where=c & ~self.last)
        self.last = c.copy()
        self.history.append(np.packbits(c))
        self.counts.append(
            (
                self.n,
                int(np.count_nonzero(c)),
                int(np.count_nonzero(self.flipped)),
                int(np.count_nonzero(c & self.flipped)),
                np.bincount(self.groups, minlength=self.n_groups),
                np.bincount(self.groups, weights=c, minlength=self.n_groups),
            )
        )
        self.epoch += 1

    @property
    def learned_since(self) -> np.ndarray:
        return np.where(self.last, self.run_start, -1).astype(np.int32)


def _data(n: int, epochs: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    groups = (rng.random(n) < 0.5).astype(np.int64)
    flipped = rng.random(n) < 0.2
    c = rng.random(n) < 0.3
    seq = []
    for _ in range(epochs):
        c = c ^ (rng.random(n) < 0.1)
        seq.append(c)
    return groups, flipped, seq


def _run_numpy(n, groups, flipped, seq):
    led = NumpyLedger(n, groups, 2, flipped)
    for c in seq:
        led.record_epoch(c)
    stats = (led.times_correct, led.presentations, led.first_learned, led.forgetting_events, led.learned_since)
    return led, stats


def _run_rust(n, groups, flipped, seq):
    led = Ledger(n, groups=groups, flipped=flipped)
    for c in seq:
        led.record_epoch(c)
    stats = (led.times_correct, led.presentations, led.first_learned, led.forgetting_events, led.learned_since)
    return led, stats


def _best(fn, *args):
    best, out = float("inf"), None
    for _ in range(ROUNDS):
        t = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t)
    return best, out


def test_ledger_ingest_vs_numpy(benchmark):
    n, epochs = SMALL if benchmark.disabled else (N_SAMPLES, N_EPOCHS)
    groups, flipped, seq = _data(n, epochs)

    t_np, (_, ref) = _best(_run_numpy, n, groups, flipped, seq)
    t_rs, (led, got) = _best(_run_rust, n, groups, flipped, seq)
    for a, b in zip(got, ref):  # the two must compute the same thing for the ratio to mean anything
        np.testing.assert_array_equal(a, b)

    benchmark.pedantic(_run_rust, args=(n, groups, flipped, seq), rounds=ROUNDS, iterations=1)
    sample_epochs = n * epochs
    benchmark.extra_info.update(
        {
            "n_samples": n,
            "n_epochs": epochs,
            "numpy_s": t_np,
            "rust_s": t_rs,
            "speedup_vs_numpy": t_np / t_rs,
            "rust_sample_epochs_per_s": sample_epochs / t_rs,
            "numpy_sample_epochs_per_s": sample_epochs / t_np,
            "history_nbytes": led.history_nbytes,
            "history_bits_per_sample_epoch": led.history_nbytes * 8 / sample_epochs,
        }
    )
