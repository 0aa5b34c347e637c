""".npz datasets (what ``lrdecay data`` writes, or any .npz with ``x`` and ``y``): :func:`load_npz`.

Every member's ``.npy`` header is read first and its declared size checked against the bytes the archive
holds for it, so a few hundred bytes cannot declare (and make numpy allocate) gigabytes.
"""

from __future__ import annotations

import math
import os
import zipfile

import numpy as np

from lrdecay.data.limits import MAX_CLASSES

__all__ = ["load_npz", "NPZ_ARRAYS"]

#: Arrays :func:`load_npz` reads (``x`` and ``y`` required); ``group_names`` and ``n_classes`` too.
NPZ_ARRAYS = ("x", "y", "y_clean", "group", "flipped")

# Deflate expands at most ~1032-fold; a member claiming more than this per stored byte is not deflate.
_MAX_INFLATE = 1100


def _declared_bytes(z: np.lib.npyio.NpzFile, key: str, where: str) -> None:
    """Refuse member ``key`` when its header declares more data than the archive holds for it."""
    info = z.zip.getinfo(key + ".npy")
    stored = info.compress_size
    if info.file_size > stored * _MAX_INFLATE + 1024:
        raise ValueError(f"{where}: member {key!r} claims {info.file_size} bytes from {stored} compressed ones")
    with z.zip.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"{where}: member {key!r} has .npy format version {version}; 1.0 and 2.0 are read")
        held = info.file_size - f.tell()
    declared = math.prod(shape) * dtype.itemsize
    if dtype.hasobject or declared > held:
        what = "Python objects" if dtype.hasobject else f"{declared} bytes"
        raise ValueError(f"{where}: member {key!r} declares shape {shape} of {dtype} ({what}) but holds {held} bytes")


def load_npz(path: str, flag: str = "--data") -> dict:
    """The dataset in an .npz file as a dict of arrays (``x``, ``y`` and whichever of ``y_clean``,
    ``group``, ``flipped`` it has) plus ``group_names`` and ``n_classes`` when present.

    Raises ValueError naming ``flag`` and the file when it is missing, not an .npz archive, lacks ``x`` or
    ``y``, declares more data than it holds, has non-finite features, or declares ``n_classes`` outside
    ``[2, MAX_CLASSES]``.
    Nothing else is checked here: the trainer validates shapes, dtypes and labels.
    """
    where = f"{flag} {path!r}"
    if not os.path.isfile(path):
        raise ValueError(f"{where}: no such file")
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:  # a damaged or foreign file: say which flag and file
        raise ValueError(f"{where} is not a readable .npz file: {exc}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError(f"{where} is not an .npz archive")
    with z:
        if "x" not in z or "y" not in z:
            raise ValueError(f"{where} must contain arrays 'x' and 'y'")
        keys = [k for k in (*NPZ_ARRAYS, "group_names", "n_classes") if k in z]
        try:
            for k in keys:
                _declared_bytes(z, k, where)
            ds = {k: z[k] for k in NPZ_ARRAYS if k in z}
            x = ds["x"]
            if x.dtype.kind in "fc" and not np.isfinite(x).all():  # NaN features make every loss NaN
                bad = int(x.size - np.count_nonzero(np.isfinite(x)))
                raise ValueError(f"{where}: x holds {bad} non-finite value(s) (NaN or inf); features must be "
                                 f"finite numbers")
            if "group_names" in z:
                ds["group_names"] = tuple(str(s) for s in z["group_names"])
            if "n_classes" in z:
                k = z["n_classes"]
                if k.size != 1 or k.dtype.kind not in "iu":
                    raise ValueError(f"{where}: n_classes must be one integer, got {k.dtype} of shape {k.shape}")
                if not 2 <= int(k.reshape(())) <= MAX_CLASSES:
                    raise ValueError(f"{where}: n_classes must be in [2, {MAX_CLASSES}], got {int(k.reshape(()))}")
                ds["n_classes"] = int(k.reshape(()))
        except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
            raise ValueError(f"{where} is damaged: {type(exc).__name__}: {exc}") from None
    return ds
