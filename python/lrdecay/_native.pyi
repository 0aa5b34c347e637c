"""Type stubs for the compiled module ``lrdecay._native`` (kept in sync with rust/lrdecay-py)."""

__version__: str
