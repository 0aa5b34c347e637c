"""Label-noise injection (Rust): :func:`corrupt_labels`.

A noise model has two parts: *which* samples get their label redrawn, set by ``rate`` (with
``exact=True`` exactly ``round(rate * n)`` of them, halves rounded up, chosen without replacement; with
``exact=False`` each sample independently with probability ``rate``), and *how* a chosen label is
redrawn, set by ``mode``:

``"symmetric"``
    a uniformly chosen *other* class, so every chosen sample is flipped (realised rate = ``rate``);
``"uniform"``
    a uniformly chosen class out of all K: it may keep its class (realised rate ``rate * (K-1)/K``);
``"pairflip"``
    class k becomes (k + 1) mod K;
``"matrix"``
    class j with probability ``matrix[i, j]`` = P(noisy = j | clean = i), a row-stochastic K x K
    matrix. With ``rate=1`` every sample is redrawn, so the realised transition matrix is ``matrix``
    itself; in general P(noisy = j | clean = i) = (1 - rate) [i == j] + rate * matrix[i, j].
"""

from __future__ import annotations

import numpy as np

from lrdecay import _native
from lrdecay._validate import check_bool, check_int, check_real, check_str

__all__ = ["corrupt_labels", "MODES"]

MODES = ("symmetric", "uniform", "pairflip", "matrix")

_MAX_CLASSES = _native.NOISE_LIMITS["max_classes"]
_MAX_SEED = _native.NOISE_LIMITS["max_seed"]


def _check_labels(y, n_classes: int) -> np.ndarray:
    """``y`` as a fresh or read-only-used C-contiguous int64 array, after dtype, shape and range checks."""
    arr = np.asarray(y)
    if arr.size == 0 and not isinstance(y, np.ndarray):
        # An empty list has no dtype of its own (numpy would call it float64): no labels, no noise.
        arr = np.zeros(arr.shape, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"y must be an array of integers (any int/uint dtype, not bool), got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {arr.shape}")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= n_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(f"y: labels must be in [0, n_classes) = [0, {n_classes}), found {bad}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def corrupt_labels(
    y,
    n_classes: int,
    rate: float,
    *,
    mode: str = "symmetric",
    exact: bool = True,
    matrix=None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(y_noisy, flipped)``: a noisy copy of the labels ``y`` and the mask of changed labels.

    Parameters
    ----------
    y:
        1-D array of integer labels in ``[0, n_classes)`` (any integer dtype; bools and floats are
        rejected with TypeError). Not modified.
    n_classes:
        Number of classes K, an integer >= 2.
    rate:
        Fraction of samples whose label is redrawn, in ``[0, 1]``.
    mode:
        ``"symmetric"`` (another class, uniformly), ``"uniform"`` (any class, uniformly; may keep the
        label), ``"pairflip"`` (k -> (k+1) mod K) or ``"matrix"`` (row of ``matrix``).
    exact:
        If True, exactly ``round(rate * n)`` samples (halves rounded up) are redrawn, chosen without
        replacement; if False, each sample is redrawn independently with probability ``rate``.
    matrix:
        For ``mode="matrix"`` only: a K x K row-stochastic matrix with
        ``matrix[i, j] = P(noisy = j | clean = i)`` (entries >= 0, each row sums to 1 within 1e-6).
    seed:
        Integer in ``[0, 2**64 - 1]``. The same seed gives the same bytes for any thread count.

    Returns
    -------
    y_noisy : int64 array, same length as ``y``
    flipped : bool array, ``y_noisy != y``

    Raises
    ------
    TypeError, ValueError
        On a bad argument, naming it and the accepted range, before any work.
    """
    n_classes = check_int("n_classes", n_classes, 2, _MAX_CLASSES)
    rate = check_real("rate", rate, 0.0, 1.0)
    mode = check_str("mode", mode, MODES)
    exact = check_bool("exact", exact)
    seed = check_int("seed", seed, 0, _MAX_SEED)
    mat = None
    if mode == "matrix":
        if matrix is None:
            raise ValueError("matrix: a K x K row-stochastic matrix is required when mode='matrix'")
        mat = np.asarray(matrix)
        if mat.dtype.kind not in "fiu":
            raise TypeError(f"matrix must be a real numeric array, got dtype {mat.dtype}")
        if mat.shape != (n_classes, n_classes):
            raise ValueError(f"matrix: expected shape ({n_classes}, {n_classes}), got {mat.shape}")
        mat = np.ascontiguousarray(mat, dtype=np.float64)
    elif matrix is not None:
        raise ValueError(f"matrix is only accepted with mode='matrix', got mode={mode!r}")
    y64 = _check_labels(y, n_classes)
    out = np.empty(y64.shape[0], dtype=np.int64)
    flipped = np.zeros(y64.shape[0], dtype=bool)  # Rust writes it as &mut [bool]: start from valid bools
    _native.corrupt_labels_into(
        y64, out, flipped, n_classes=n_classes, rate=rate, mode=mode, exact=bool(exact), matrix=mat, seed=seed
    )
    return out, flipped
