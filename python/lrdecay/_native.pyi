"""Type stubs for the compiled module ``lrdecay._native`` (rust/lrdecay-py); tests/test_stubs.py checks
them against the built module with ``mypy.stubtest``."""

from typing import TypedDict, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "__version__",
    "pattern_fill",
    "group_sizes",
    "DATA_LIMITS",
    "corrupt_labels_into",
    "NOISE_LIMITS",
    "LedgerCore",
    "LEDGER_LIMITS",
    "LEDGER_COUNT_COLUMNS",
    "sgd_step_f32_ptrs",
]

__version__: str

# --- data (rust/lrdecay-py/src/data.rs) ---

class _PatternSpec(TypedDict):
    dim: int
    clusters_per_class: int
    radius: float
    spread: float
    center_seed: int

class _GroupSpec(TypedDict):
    id: int  # written into the group column
    patterns: list[int]  # indices into _DatasetSpec.patterns
    weight: float

class _DatasetSpec(TypedDict):
    n_classes: int
    patterns: list[_PatternSpec]
    groups: list[_GroupSpec]  # the groups generated
    seed: int
    split: int  # 0 train, 1 test
    label_noise: float

#: max_n, max_classes, max_dim, max_clusters, max_patterns, max_groups, max_centre_values, max_seed
DATA_LIMITS: dict[str, int]

def pattern_fill(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    y_clean: npt.NDArray[np.int64],
    group: npt.NDArray[np.int32],
    flipped: npt.NDArray[np.bool_],
    *,
    spec: _DatasetSpec,
) -> None:
    """Fill the caller-allocated arrays (x: n x D C-contiguous) with a pattern dataset; GIL released."""

def group_sizes(weights: list[float], n: int) -> list[int]:
    """Exact group sizes by largest-remainder rounding of weights * n."""

# --- noise (rust/lrdecay-py/src/noise.rs) ---

#: max_classes, max_seed
NOISE_LIMITS: dict[str, int]

def corrupt_labels_into(
    y: npt.NDArray[np.int64],
    out: npt.NDArray[np.int64],
    flipped: npt.NDArray[np.bool_],
    *,
    n_classes: int,
    rate: float,
    mode: str,
    exact: bool,
    matrix: npt.NDArray[np.float64] | None,
    seed: int,
) -> None:
    """Write noisy labels of y into out and the changed-mask into flipped; GIL released."""

# ---- ledger (rust/lrdecay-py/src/ledger.rs; public API: lrdecay.Ledger) ----


#: max_samples, max_groups, max_epochs, max_label
LEDGER_LIMITS: dict[str, int]
#: names of the first columns of LedgerCore.epoch_counts(); per-group presented and correct follow
LEDGER_COUNT_COLUMNS: tuple[str, ...]

@final
class LedgerCore:
    """The native per-sample ledger; use :class:`lrdecay.Ledger`."""

    def __new__(
        cls,
        n_samples: int,
        groups: npt.NDArray[np.integer] | None = None,
        n_groups: int = 0,
        flipped: npt.NDArray[np.bool_] | None = None,
    ) -> LedgerCore: ...
    def record_epoch(
        self,
        correct: npt.NDArray[np.bool_] | npt.NDArray[np.uint8],
        pred: npt.NDArray[np.integer] | None = None,
    ) -> None: ...
    def record_batch(
        self,
        indices: npt.NDArray[np.integer],
        correct: npt.NDArray[np.bool_] | npt.NDArray[np.uint8],
        pred: npt.NDArray[np.integer] | None = None,
    ) -> None: ...
    def end_epoch(self) -> None: ...
    def set_clean_labels(self, y: npt.NDArray[np.integer]) -> None: ...
    @property
    def n_samples(self) -> int: ...
    @property
    def n_epochs(self) -> int: ...
    @property
    def n_groups(self) -> int: ...
    @property
    def epoch_open(self) -> bool: ...
    @property
    def history_nbytes(self) -> int: ...
    def times_correct(self) -> npt.NDArray[np.int32]: ...
    def presentations(self) -> npt.NDArray[np.int32]: ...
    def forgetting_events(self) -> npt.NDArray[np.int32]: ...
    def first_learned(self) -> npt.NDArray[np.int32]: ...
    def learned_since(self) -> npt.NDArray[np.int32]: ...
    def never_learned(self) -> npt.NDArray[np.bool_]: ...
    def last_pred(self) -> npt.NDArray[np.int32] | None: ...
    def clean_labels(self) -> npt.NDArray[np.int32] | None: ...
    def group_ids(self) -> npt.NDArray[np.int64] | None: ...
    def flipped(self) -> npt.NDArray[np.bool_] | None: ...
    def epoch_counts(self) -> npt.NDArray[np.int64]:
        """epochs × (6 + 2·n_groups): presented, correct, presented_flipped, correct_flipped,
        flipped_pred_clean, flipped_with_pred (−1: not computable), per-group presented, per-group correct."""
    def history(self, presented: bool = False) -> npt.NDArray[np.bool_]: ...
    def history_words(self) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]: ...
    @staticmethod
    def from_parts(
        n_samples: int,
        groups: npt.NDArray[np.int64] | None,
        n_groups: int,
        flipped: npt.NDArray[np.bool_] | None,
        hist_correct: npt.NDArray[np.uint64],
        hist_presented: npt.NDArray[np.uint64],
        n_epochs: int,
        pred_clean: npt.NDArray[np.int64],
        last_pred: npt.NDArray[np.int64] | None,
        clean_labels: npt.NDArray[np.int64] | None,
    ) -> LedgerCore: ...

# --- sgd (rust/lrdecay-py/src/sgd.rs) ---

def sgd_step_f32_ptrs(
    params: list[int],
    grads: list[int],
    bufs: list[int] | None,
    numels: list[int],
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    first_step: bool,
) -> None:
    """One SGD-momentum step (torch.optim.SGD's arithmetic, bit for bit) over contiguous float32 CPU
    buffers given by address (``tensor.data_ptr()``), in place, GIL released. Private to FusedSGD: the
    addresses are trusted; list lengths are checked."""
