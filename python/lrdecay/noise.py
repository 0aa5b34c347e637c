"""Label-noise injection: moved to :mod:`lrdecay.data.noise`; re-exported here so ``from lrdecay.noise
import corrupt_labels`` keeps working."""

from lrdecay.data.noise import MODES, corrupt_labels

__all__ = ["corrupt_labels", "MODES"]
