"""Caps on the sizes a dataset may declare, checked before anything is sized by them.

A few bytes can declare a huge size (an ``.npz`` with ``n_classes = 10**9``, one label of ``3 * 10**8``, a
group id of ``3 * 10**7``), and the model head and the per-class and per-group counts are sized by it.
:func:`lrdecay.trainer.inputs.as_device_data`, which every dataset passes through, checks against these
before allocating.
"""

from lrdecay import _native

__all__ = ["MAX_CLASSES", "MAX_GROUPS"]

#: Most classes a dataset may have (labels in ``[0, MAX_CLASSES)``): the pattern generator's limit.
MAX_CLASSES: int = int(_native.DATA_LIMITS["max_classes"])
#: Most sample groups (group ids in ``[0, MAX_GROUPS)``): what the generator and the ledger both take.
MAX_GROUPS: int = min(int(_native.DATA_LIMITS["max_groups"]), int(_native.LEDGER_LIMITS["max_groups"]))
