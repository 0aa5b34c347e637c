"""Moved to :mod:`lrdecay.trainer.stacked_model` (stacking is training); kept so old imports work."""

from lrdecay.trainer.stacked_model import StackedMLP, stack_models

__all__ = ["StackedMLP", "stack_models"]
