"""Type stubs for the compiled module ``lrdecay._native`` (kept in sync with rust/lrdecay-py)."""

__version__: str

# --- data (rust/lrdecay-py/src/data.rs) ---
import numpy as np
import numpy.typing as npt

def pattern_fill(
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    y_clean: npt.NDArray[np.int64],
    group: npt.NDArray[np.int32],
    flipped: npt.NDArray[np.bool_],
    *,
    n_classes: int,
    dims: list[int],
    clusters_per_class: list[int],
    radii: list[float],
    spreads: list[float],
    center_seeds: list[int],
    group_ids: list[int],
    group_patterns: list[list[int]],
    group_weights: list[float],
    seed: int,
    split: int,
    label_noise: float,
) -> None:
    """Fill the caller-allocated arrays (x: n x D C-contiguous) with a pattern dataset; GIL released."""

def group_sizes(weights: list[float], n: int) -> list[int]:
    """Exact group sizes by largest-remainder rounding of weights * n."""

def pattern_centres(
    dim: int, clusters_per_class: int, radius: float, center_seed: int, pattern_index: int, n_classes: int
) -> npt.NDArray[np.float32]:
    """The (n_classes * clusters_per_class, dim) centres of one pattern; row k*m + j = class k, cluster j."""

# --- noise (rust/lrdecay-py/src/noise.rs) ---
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
