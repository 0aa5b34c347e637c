"""Triton kernels shipped with lrdecay, one op per file. Importing this package does not import triton."""
