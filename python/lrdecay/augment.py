"""The device-side image input pipeline: moved to :mod:`lrdecay.data.augment`; re-exported here so
``from lrdecay.augment import ...`` keeps working."""

from lrdecay.data.augment import AUGMENTS, ImagePipeline, augment_draws, mix32

__all__ = ["ImagePipeline", "AUGMENTS", "mix32", "augment_draws"]
