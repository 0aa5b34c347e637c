"""Triton kernels shipped with lrdecay, one op per file. Importing this package does not import triton."""

import os

__all__ = ["interpreting"]


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"
