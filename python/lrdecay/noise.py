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

import numbers

import numpy as np

from lrdecay import _native

__all__ = ["corrupt_labels", "MODES"]

MODES = ("symmetric", "uniform", "pairflip", "matrix")

_MAX_CLASSES = 2**62
_MAX_SEED = 2**64 - 1


def _check_int(name: str, value, lo: int, hi: int) -> int:
    """``value`` as a Python int in ``[lo, hi]``; TypeError for non-integers (bools included)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer in [{lo}, {hi}], got {type(value).__name__} {value!r}")
    v = int(value)
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {v}")
    return v


def _check_real(name: str, value, lo: float, hi: float) -> float:
    """``value`` as a float in ``[lo, hi]`` (NaN rejected); TypeError for non-numbers and bools."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [{lo}, {hi}], got {type(value).__name__} {value!r}")
    v = float(value)
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {v}")
    return v


def _check_labels(y, n_classes: int) -> np.ndarray:
    """``y`` as a fresh or read-only-used C-contiguous int64 array, after dtype, shape and range checks."""
    arr = np.asarray(y)
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
    n_classes = _check_int("n_classes", n_classes, 2, _MAX_CLASSES)
    rate = _check_real("rate", rate, 0.0, 1.0)
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a str, one of {MODES}, got {type(mode).__name__}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not isinstance(exact, (bool, np.bool_)):
        raise TypeError(f"exact must be a bool, got {type(exact).__name__}")
    seed = _check_int("seed", seed, 0, _MAX_SEED)
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
