"""Moved: the stacked engine to :mod:`lrdecay.trainer.stacked`, the sweep's stacked task to
:mod:`lrdecay.sweep.tasks`; kept so old imports work."""

from lrdecay.sweep.tasks import execute_stacked
from lrdecay.trainer.stacked import StackedEngine

__all__ = ["StackedEngine", "execute_stacked"]
