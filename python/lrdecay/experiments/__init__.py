"""The paper's experiments: one :class:`~lrdecay.experiments.runner.Experiment` record per claim, one runner.

``EXPERIMENTS`` lists the names in report order (``stages`` C1, ``gd`` C2, ``beliefs`` C3, ``memorization``
C4, ``complexity`` C5, ``transfer`` C6, ``autodecay`` C7); :func:`get` returns a record, :func:`run_all`
runs several on one preset (shared runs trained once, resumable through ``out_dir/runs/``) and
:func:`run` one, as a :class:`RunOptions` says (preset, seeds, data, output folder, workers, ...). Each
record's verdict comes from its ``judge`` applied to the per-seed numbers, following its ``rule``. The ``quick`` and ``full`` settings come from the pre-registered regime search
(:mod:`lrdecay.experiments.regime`, ``docs/regime/``); their seeds were never seen by it.

``data="cifar10"|"cifar100"|"digits"|"folder"`` (with ``data_dir``) runs the experiments that apply to
real images on their image presets (:data:`IMAGE_PRESETS` lists them per data); ``complexity`` needs
pattern groups and reports that it does not apply.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Mapping, Sequence

from lrdecay.experiments.base import MAP_PICKS
from lrdecay.experiments.options import RunOptions

__all__ = ["EXPERIMENTS", "NAMES", "PRESETS", "PRESET_NOTES", "IMAGE_PRESETS", "IMAGE_PRESET_NOTES", "MNIST_PRESET_NOTES",
           "preset_notes", "get", "run", "run_all", "plan", "presets_for", "RunOptions"]

#: name -> claim id, in report order
NAMES = {
    "stages": "C1",
    "gd": "C2",
    "beliefs": "C3",
    "memorization": "C4",
    "complexity": "C5",
    "transfer": "C6",
    "autodecay": "C7",
}
EXPERIMENTS = tuple(NAMES)

#: The experiment presets: tiny (seconds, tests and CI), quick (the 2-core CPU), full (a GPU), and the claim
#: map's picks (:data:`lrdecay.experiments.base.MAP_PICKS`: the quick preset at another grid point).
PRESETS = ("tiny", "quick", "full", *MAP_PICKS)
#: The presets on real images, per data: tiny (a CPU smoke test), quick and full (one GPU; digits and the
#: MNIST family: quick on a 2-core CPU, no full).
IMAGE_PRESETS = {"digits": ("tiny", "quick"), **{data: ("tiny", "quick", "full") for data in ("cifar10", "cifar100", "folder")},
                 **{data: ("tiny", "quick") for data in ("mnist", "fashion-mnist", "kmnist")}}


def presets_for(data: str | None = None) -> tuple[str, ...]:
    """The preset names for ``data`` (None: the pattern datasets)."""
    if data is None:
        return PRESETS
    if data not in IMAGE_PRESETS:
        raise ValueError(f"data must be None or one of {list(IMAGE_PRESETS)}, got {data!r}")
    return IMAGE_PRESETS[data]


def get(name: str):
    """The :class:`~lrdecay.experiments.runner.Experiment` record called ``name`` (ValueError listing the
    names otherwise)."""
    if not isinstance(name, str) or name not in NAMES:
        raise ValueError(f"experiment must be one of {list(NAMES)}, got {name!r}")
    return import_module(f"lrdecay.experiments.{name}").EXPERIMENT


def run_all(names: Sequence[str] = EXPERIMENTS, preset: str | None = None, *, options=None, **changes: Any
            ) -> dict[str, dict]:
    """Run the experiments ``names`` on ``preset`` as ``options`` say (a :class:`RunOptions`; None: the
    defaults), with ``changes`` to its fields by name (``seeds``, ``out_dir``, ``device``, ``workers``,
    ``executor``, ``overrides``, ``progress``, ``data``, ``data_dir``); ``preset`` None: the options'
    (``quick`` by default). See :func:`lrdecay.experiments.runner.run_experiments`."""
    from lrdecay.experiments.runner import run_experiments

    return run_experiments([get(n) for n in names], RunOptions.of(options, preset=preset, **changes))


def plan(names: Sequence[str] = EXPERIMENTS, preset: str | None = None, *, options=None, **changes: Any):
    """What :func:`run_all` would do, checked (settings, data, every first-round run) without training or
    writing anything; arguments as for :func:`run_all`; see
    :func:`lrdecay.experiments.runner.plan_experiments`."""
    from lrdecay.experiments.runner import plan_experiments

    return plan_experiments([get(n) for n in names], RunOptions.of(options, preset=preset, **changes))


def run(name: str, preset: str | None = None, *, overrides: Mapping[str, Any] | None = None, **kwargs) -> dict:
    """Run experiment ``name`` alone; keyword arguments as for :func:`run_all`, ``overrides`` for it."""
    return run_all([name], preset, overrides={name: overrides} if overrides else None, **kwargs)[name]


#: What was tried while choosing each preset (shown in the report). Rules were never changed to a result.
IMAGE_PRESET_NOTES: dict[str, list[str]] = {
    "tiny": ["tiny is a smoke test on real images (a few hundred images, a narrow ResNet-20, a few epochs): its "
             "verdicts mean nothing."],
    "quick": ["The image presets were not chosen by a search: they follow the usual CIFAR recipe (SGD momentum "
              "0.9, LR 0.1 decayed ×0.1 twice, batch 128, weight decay 5e-4, crop + flip), with 20% "
              "symmetric label noise (C4's flipped images) and small LR 0.01."],
    "full": ["The image presets were not chosen by a search: they follow the usual CIFAR recipe (He et al. 2016: "
             "ResNet-56, 160 epochs, decays at 80 and 120), with 20% symmetric label noise (C4's flipped "
             "images) and small LR 0.01."],
}

#: The same for the MNIST family (:data:`lrdecay.experiments.base.MNIST_FAMILY`).
MNIST_PRESET_NOTES: dict[str, list[str]] = {
    "tiny": ["tiny is a smoke test on real images (512 images, a narrow MLP, 4 epochs): its verdicts mean "
             "nothing."],
    "quick": ["The setting is the pick of the pre-registered Fashion-MNIST search (docs/regime-fmnist/: "
              "PREREGISTRATION.md, the map and the pick), chosen by the premise and the paper's picture alone; "
              "no claim's verdict entered the choice, and its seeds (10-12) were never seen by the search. On "
              "MNIST and KMNIST it is the same setting, not searched there."],
}


def preset_notes(data: str | None) -> dict[str, list[str]]:
    """What was tried while choosing each preset of ``data`` (None: the pattern datasets)."""
    from lrdecay.experiments.base import MNIST_FAMILY

    if data is None:
        return PRESET_NOTES
    return MNIST_PRESET_NOTES if data in MNIST_FAMILY else IMAGE_PRESET_NOTES


PRESET_NOTES: dict[str, list[str]] = {
    "tiny": ["tiny is a smoke test (4-class toy data, 600 samples, 6 epochs): its verdicts mean nothing."],
    "quick": [
        "The setting is the pre-registered regime search's pick (docs/regime/PREREGISTRATION.md, "
        "docs/regime/REGIME.md): 144 settings (width, training-set size, label-noise rate, noise group, stage "
        "lengths, weight decay) on pilot seed 1000, the 8 best confirmed on pilot seeds 1001 and 1002, chosen by "
        "the premise alone (lrDecay's final test accuracy at least 0.02 above both constant LRs on every pilot "
        "seed; the largest minimum margin within the CPU cost limit). No claim's verdict entered the choice. "
        "The reported seeds (10, 11, 12) were never used by the search or by the earlier presets.",
        "C2's GD budget was set by a feasibility rule on pilot seed 1000 (docs/regime/PREREGISTRATION.md).",
        "PyTorch runs one thread per worker process (two workers on the 2-core machine).",
    ],
    "full": [
        "The same setting as quick (the search's best overall was within the CPU cost limit), with a 10,000-sample "
        "test set and 5 held-out seeds (10–14); meant for one GPU.",
    ],
    "claimsbest": [
        "An existence test: is there a regime where the paper's account holds? The setting is the claim map's "
        "claims-best pick (docs/claims/, docs/regime/PREREGISTRATION.md): of the 32 settings of the map's grid, "
        "the one where the most claims were supported on each of the three pilot seeds (C1, C2, C4, C5; ties: "
        "the largest minimum excess over the rules). Because it was chosen by verdicts, only its held-out "
        "verdicts (seeds 10-12, never seen by the map) count.",
        "Every other setting is the quick preset's (C2's GD subset and budget, C6's probe, C7's constants).",
        "PyTorch runs one thread per worker process (two workers on the 2-core machine).",
    ],
}
