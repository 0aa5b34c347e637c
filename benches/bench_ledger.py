"""Ledger epoch ingest: lrdecay.Ledger (Rust) vs the vectorized numpy update a user would write.

Workload: 1M samples × 50 epochs (whole-epoch records, 2 groups, 20% flipped samples), then one read of
every per-sample statistic. Correctness follows a persistent random walk (each sample keeps its state
with probability 0.9 per epoch), like a network that learns and forgets some samples. Both sides are
timed in the same run, in alternating rounds (best of ``ROUNDS`` each); the ratio goes to ``extra_info["speedup_vs_numpy"]``.
Under ``--benchmark-disable`` the sizes shrink so the file runs in well under a second.
"""

from __future__ import annotations

import time

import numpy as np

from lrdecay import Ledger

N_SAMPLES, N_EPOCHS = 1_000_000, 50
SMALL = (20_001, 6)
ROUNDS = 5


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
        # Per-group masks and sizes, precomputed once: the fastest numpy form for a few groups.
        self.group_masks = [groups == k for k in range(n_groups)]
        self.group_sizes = [int(np.count_nonzero(m)) for m in self.group_masks]
        self.n_flipped = int(np.count_nonzero(flipped))

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
                self.n_flipped,
                int(np.count_nonzero(c & self.flipped)),
                self.group_sizes,
                [int(np.count_nonzero(c & m)) for m in self.group_masks],
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
    t = time.perf_counter()
    led = NumpyLedger(n, groups, 2, flipped)
    for c in seq:
        led.record_epoch(c)
    _INGEST.append(time.perf_counter() - t)
    stats = (led.times_correct, led.presentations, led.first_learned, led.forgetting_events, led.learned_since)
    return led, stats


def _run_rust(n, groups, flipped, seq):
    t = time.perf_counter()
    led = Ledger(n, groups=groups, flipped=flipped)
    for c in seq:
        led.record_epoch(c)
    _INGEST.append(time.perf_counter() - t)
    stats = (led.times_correct, led.presentations, led.first_learned, led.forgetting_events, led.learned_since)
    return led, stats


_INGEST: list[float] = []  # ingest-only time of the latest run (before reading the statistics)


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def test_ledger_ingest_vs_numpy(benchmark):
    n, epochs = SMALL if benchmark.disabled else (N_SAMPLES, N_EPOCHS)
    groups, flipped, seq = _data(n, epochs)

    # Rounds alternate between the two, so a change in machine load hits both alike; best of each.
    t_np = t_rs = i_np = i_rs = float("inf")
    for _ in range(ROUNDS):
        t, (_, ref) = _timed(_run_numpy, n, groups, flipped, seq)
        t_np, i_np = min(t_np, t), min(i_np, _INGEST[-1])
        t, (led, got) = _timed(_run_rust, n, groups, flipped, seq)
        t_rs, i_rs = min(t_rs, t), min(i_rs, _INGEST[-1])
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
            "speedup_vs_numpy": t_np / t_rs,  # 50 epochs + one read of every per-sample statistic
            "numpy_ingest_s": i_np,
            "rust_ingest_s": i_rs,
            "ingest_speedup_vs_numpy": i_np / i_rs,  # the 50 epoch ingests alone
            "rust_sample_epochs_per_s": sample_epochs / t_rs,
            "numpy_sample_epochs_per_s": sample_epochs / t_np,
            "history_nbytes": led.history_nbytes,
            "history_bits_per_sample_epoch": led.history_nbytes * 8 / sample_epochs,
        }
    )
