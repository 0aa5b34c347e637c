"""lrdecay: a Rust- and Triton-accelerated toolkit for studying how learning-rate decay helps neural networks.

Built around You, Long, Wang & Jordan, "How Does Learning Rate Decay Help Modern Neural Networks?".

- :mod:`lrdecay.data` — seeded synthetic pattern datasets with tractable complexity (Rust), real images
  from local files (CIFAR-10/100, image folders, scikit-learn's digits), label-noise injection (Rust) and
  the device-side image augmentation; :mod:`lrdecay.images`, :mod:`lrdecay.noise` and
  :mod:`lrdecay.augment` re-export their parts under the older names.
- :class:`lrdecay.Ledger` — per-sample learned / forgotten / memorized bookkeeping (Rust).
- :mod:`lrdecay.schedules`, :class:`lrdecay.optim.FusedSGD` — device-side LR schedules and a one-launch
  Triton SGD-momentum step.
- :func:`lrdecay.train`, :class:`lrdecay.Trainer`, :class:`lrdecay.TrainConfig` — training runs with
  device-resident data, CUDA-graph steps, per-sample ledger, logs, checkpoints and plots.
- :mod:`lrdecay.models` — MLP (optional BatchNorm), CIFAR-style ResNet-20/56 and ResNet-18.

Torch-dependent names are imported lazily so that ``import lrdecay`` stays cheap.
"""

from importlib import import_module as _import_module

from lrdecay._native import __version__

# name -> module that defines it; resolved on first attribute access (PEP 562).
_LAZY = {
    "pattern_dataset": "lrdecay.data",
    "PatternDataset": "lrdecay.data",
    "ImageDataset": "lrdecay.images",
    "images": "lrdecay.images",
    "corrupt_labels": "lrdecay.noise",
    "Ledger": "lrdecay.ledger",
    "FusedSGD": "lrdecay.optim",
    "schedules": "lrdecay.schedules",
    "optim": "lrdecay.optim",
    "data": "lrdecay.data",
    "noise": "lrdecay.noise",
    "ledger": "lrdecay.ledger",
    "train": "lrdecay.trainer",
    "Trainer": "lrdecay.trainer",
    "TrainConfig": "lrdecay.trainer",
    "RunResult": "lrdecay.trainer",
    "trainer": "lrdecay.trainer",
    "models": "lrdecay.models",
    "make_model": "lrdecay.models",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'lrdecay' has no attribute {name!r}")
    module = _import_module(module_name)
    value = module if module_name.rsplit(".", 1)[-1] == name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
