"""``TrainConfig``: every setting of a training run, validated, round-tripping to JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from typing import Any

from lrdecay._validate import check_bool as _bool
from lrdecay._validate import check_int as _int
from lrdecay._validate import check_real as _float
from lrdecay._validate import check_str as _str

__all__ = ["TrainConfig", "SCHEDULES", "HOST_SCHEDULES", "OPTIMIZERS", "UNHASHED_FIELDS", "OBSERVATION_FIELDS",
           "DATA_FIELDS", "PER_MEMBER_FIELDS", "SCHEDULE_FIELDS"]

from lrdecay.trainer.fields import DATA, HASHED, OBSERVATION, PER_MEMBER, SCHEDULE, UNHASHED, check_roles
from lrdecay.trainer.fields import config_field, fields_with, schedule_fields
from lrdecay.trainer.schedule import FIXED, HOST, RunSchedule

#: Schedules decided at each epoch end on the host, from the epoch's numbers (not known in advance).
HOST_SCHEDULES = tuple(HOST)
SCHEDULES = (*FIXED, *HOST_SCHEDULES)
OPTIMIZERS = ("fused", "torch")



def _presets():
    from lrdecay.data import PRESETS

    return list(PRESETS)


def _models():
    from lrdecay.models import MODEL_NAMES

    return list(MODEL_NAMES)


def _activations():
    from lrdecay.models import ACTIVATIONS

    return sorted(ACTIVATIONS)


def _augments():
    from lrdecay.data.augment import AUGMENTS

    return ["auto", *AUGMENTS]



#: Bounds on the model's size fields: far above any model this package trains, far below what would
#: overflow a tensor's size (``--width 3000000000`` is refused, not allocated).
MAX_WIDTH = 2**16
MAX_DEPTH = 2**10


def _at_most(name: str, value: int, hi: int) -> None:
    if value > hi:
        raise ValueError(f"{name} must be an int <= {hi}, got {value}")

@dataclass
class TrainConfig:
    """Settings of one training run. ``TrainConfig.from_json(cfg.to_json()) == cfg``.

    Data (used when ``train`` is not given a dataset):
        preset: pattern-dataset preset (``lrdecay.data``), e.g. ``"ps10"``.
        n_train, n_test: training / test set sizes (n_test = 0: no test set).
        label_noise: symmetric label-flip rate in [0, 1] for the training set, or None.
        probe_groups: also evaluate one probe test set per group (``groups=[name]``), so per-pattern test
            accuracy has its own samples.
        val_fraction: carve this fraction of the training set (a seeded draw, observed labels) as a
            validation split that is never trained on and is evaluated every epoch (record keys ``val`` and
            ``val_error``); 0: none.
    Model (used when ``train`` is not given a model):
        model: one of :data:`lrdecay.models.MODEL_NAMES` (``"mlp"``, ``"cnn"``, ``"resnet20"``, ...); width, depth, activation, batchnorm as in
        :func:`lrdecay.models.make_model` (width/depth None: the model's default).
    Optimization:
        epochs, batch_size (None: full-batch gradient descent, batch = whole training set), drop_last.
        optimizer: ``"fused"`` (lrdecay.optim.FusedSGD with a device-side schedule) or ``"torch"``
            (torch.optim.SGD + the matching torch.optim.lr_scheduler, stepped once per epoch).
        lr, momentum, dampening, weight_decay, nesterov: as in torch.optim.SGD.
        schedule: ``constant``, ``multistep`` (decay by ``gamma`` at each epoch in ``milestones``),
            ``step`` (every ``step_size`` epochs), ``exponential`` (×gamma every epoch), ``cosine``
            (to ``eta_min`` over all epochs). Schedules change the LR at epoch boundaries, like the
            torch schedulers stepped per epoch.
            Decided on the host at each epoch end (no CUDA graph for these runs): ``auto``
            (:class:`lrdecay.schedules.AutoDecay` on the epoch's training loss: ``auto_window``,
            ``auto_fraction``, ``auto_min_stage``), ``auto_val`` (the same test on the validation error of
            the ``val_fraction`` split), ``plateau`` (``torch.optim.lr_scheduler.ReduceLROnPlateau``
            on the training loss: ``plateau_patience``, relative ``plateau_threshold``) and ``train_acc``
            (:class:`lrdecay.schedules.AccuracyMilestones`: decay when the epoch's training accuracy first
            reaches each of ``decay_train_acc``). Each multiplies the LR by ``gamma``; ``auto`` and
            ``plateau`` at most ``max_decays`` times (None: unlimited).
    Run:
        seed: determines data, data order, initialization and label noise.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        cuda_graph: on CUDA with the fused optimizer, capture the whole step in a CUDA graph.
        ledger: record per-sample correctness in an :class:`lrdecay.Ledger`.
        eval_every: evaluate test/probe sets every k epochs (and at the last epoch).
        eval_train: at those epochs also evaluate the training set in eval mode (record key
            ``train_eval``: accuracy, per group, clean samples, memorized fraction of flipped samples).
        checkpoint_every: write ``checkpoint.pt`` every k epochs (0: only at the end); needs an out_dir.
        snapshot_epochs: keep the model's state dict (CPU copy) at the end of these epochs
            (``RunResult.snapshots``; also ``snapshots/epoch_NNNN.pt`` in the out_dir, checksummed like
            checkpoints: read them with :func:`lrdecay.trainer.load_checkpoint`).
        plots: write PNG curves at the end; progress: tqdm bar (quiet when stderr is not a TTY).
    Real images (:mod:`lrdecay.images`; used when ``train`` is not given a dataset):
        data: None (the pattern dataset of ``preset``) or ``"cifar10"``, ``"cifar100"``, ``"digits"``,
            ``"folder"`` (a class-per-subfolder tree, with optional ``train/`` and ``test/`` or ``val/``).
            The whole test split is the test set (``n_test=0``: none); ``label_noise`` flips training
            labels symmetrically (seeded by ``seed``); ``preset``, ``n_train`` and ``probe_groups`` are
            not used.
        data_dir: the folder holding the data (not used by ``digits``; never downloaded).
        image_size: side of the images decoded from a folder.
        classes: train and test on these classes only (indices into the data's class list, at least 2,
            distinct), relabelled 0..len(classes)-1 in this order; None: every class. Selected before
            ``train_subset`` and label noise (e.g. the source side of a held-out class split).
        train_subset: train on a class-balanced subset of this many training images (None: all).
        augment: ``"auto"`` (the data's default: crop+flip for CIFAR and folders, none for digits),
            ``"none"``, ``"crop"``, ``"flip"`` or ``"crop+flip"``, applied on the device inside the step,
            seeded by (seed, epoch, image); crop_padding: zero pixels around the image for the crop.
        channels_last: model and image batches in ``torch.channels_last`` memory format (faster
            convolutions on CUDA tensor cores).
        amp: bfloat16 autocast for forward and loss (meant for CUDA; on the CPU it is slow but works);
            parameters, gradients and the optimizer stay float32.
    """

    # data
    preset: str = config_field("ps10", roles=[HASHED, DATA], help="pattern-dataset preset", choices=_presets)
    n_train: int = config_field(10_000, roles=[HASHED, DATA], help="training samples drawn from --preset")
    n_test: int = config_field(2_000, roles=[HASHED, DATA, PER_MEMBER],
                               help="test samples drawn from --preset (0: no test set)")
    label_noise: float | None = config_field(None, roles=[HASHED, DATA, PER_MEMBER],
                                             help="symmetric label-flip rate of the training set, in [0, 1]")
    probe_groups: bool = config_field(False, roles=[HASHED, DATA, PER_MEMBER],
                                      help="also evaluate one probe test set per pattern group")
    val_fraction: float = config_field(  # not DATA: the split is carved from the built set, in the trainer
        0.0, roles=[HASHED],
        help="carve this fraction of the training set (observed labels) as a validation split, never trained "
             "on, evaluated every epoch (0: none; the auto_val schedule reads it)")
    # model
    model: str = config_field("mlp", roles=[HASHED], help="model", choices=_models)
    width: int | None = config_field(None, roles=[HASHED], help="hidden width (none: the model's)")
    depth: int | None = config_field(None, roles=[HASHED], help="hidden layers (none: the model's)")
    activation: str = config_field("relu", roles=[HASHED], help="activation of the MLP", choices=_activations)
    batchnorm: bool = config_field(True, roles=[HASHED], help="batch normalization in the model")
    # optimization
    epochs: int = config_field(30, roles=[HASHED], help="training epochs")
    batch_size: int | None = config_field(
        128, roles=[HASHED], help="minibatch size (none: full-batch gradient descent)",
        aliases=[("--full-batch", None, "full-batch gradient descent (--batch-size none)")])
    drop_last: bool = config_field(False, roles=[HASHED], help="drop the last, smaller minibatch of an epoch")
    optimizer: str = config_field(
        "fused", roles=[HASHED, PER_MEMBER], choices=lambda: OPTIMIZERS,
        help="fused: lrdecay FusedSGD, device-side schedule; torch: torch.optim.SGD + lr_scheduler")
    lr: float = config_field(0.1, roles=[HASHED, PER_MEMBER], help="learning rate (the schedule's starting value)")
    momentum: float = config_field(0.9, roles=[HASHED, PER_MEMBER], help="SGD momentum")
    dampening: float = config_field(0.0, roles=[HASHED, PER_MEMBER], help="SGD momentum dampening")
    weight_decay: float = config_field(5e-4, roles=[HASHED, PER_MEMBER], help="weight decay (L2)")
    nesterov: bool = config_field(False, roles=[HASHED, PER_MEMBER], help="Nesterov momentum")
    schedule: str = config_field("multistep", roles=[HASHED, PER_MEMBER], choices=lambda: SCHEDULES,
                                 help="learning-rate schedule (changes at epoch boundaries)")
    milestones: list[int] = config_field(
        roles=[HASHED, PER_MEMBER, SCHEDULE], items="epochs, e.g. 10,20",
        help="decay epochs of the multistep schedule", default_factory=lambda: [10, 20])
    gamma: float = config_field(
        0.1, roles=[HASHED, PER_MEMBER, SCHEDULE],
        help="decay factor of the multistep, step, exponential, auto, plateau and train_acc schedules")
    step_size: int = config_field(10, roles=[HASHED, PER_MEMBER, SCHEDULE],
                                  help="epochs between decays of the step schedule")
    eta_min: float = config_field(0.0, roles=[HASHED, PER_MEMBER, SCHEDULE],
                                  help="final learning rate of the cosine schedule")
    max_decays: int | None = config_field(None, roles=[HASHED, PER_MEMBER, SCHEDULE],
                                          help="most decays of the auto and plateau schedules (none: unlimited)")
    auto_window: int = config_field(5, roles=[HASHED, PER_MEMBER, SCHEDULE],
                                    help="auto, auto_val schedules: epochs of training loss it compares (>= 3)")
    auto_fraction: float = config_field(0.1, roles=[HASHED, PER_MEMBER, SCHEDULE],
                                        help="auto, auto_val schedules: decay when the loss fell by less than this fraction")
    auto_min_stage: int | None = config_field(None, roles=[HASHED, PER_MEMBER, SCHEDULE],
                                              help="auto, auto_val schedules: fewest epochs between decays (none: the window)")
    plateau_patience: int = config_field(3, roles=[HASHED, PER_MEMBER, SCHEDULE],
                                         help="plateau schedule: epochs without improvement before a decay")
    plateau_threshold: float = config_field(0.01, roles=[HASHED, PER_MEMBER, SCHEDULE],
                                            help="plateau schedule: relative improvement that counts")
    decay_train_acc: list[float] = config_field(
        roles=[HASHED, PER_MEMBER, SCHEDULE], items="accuracies, e.g. 0.9,0.99",
        help="train_acc schedule: decay when the training accuracy first reaches each of these",
        default_factory=list)
    # run
    seed: int = config_field(0, roles=[HASHED, DATA, PER_MEMBER],
                             help="seed of the data, data order, initialization and label noise")
    device: str = config_field("auto", roles=[UNHASHED, OBSERVATION], help="auto (CUDA if available), cpu, cuda or cuda:N")
    cuda_graph: bool = config_field(
        True, roles=[UNHASHED, OBSERVATION], help="capture the step in a CUDA graph (CUDA, fused optimizer)",
        aliases=[("--no-graph", False, "do not capture the step in a CUDA graph (--no-cuda-graph)")])
    ledger: bool = config_field(True, roles=[HASHED, PER_MEMBER], help="record per-sample correctness in a ledger")
    eval_every: int = config_field(1, roles=[HASHED, OBSERVATION, PER_MEMBER],
                                   help="evaluate the test sets every k epochs (and at the last)")
    eval_train: bool = config_field(False, roles=[HASHED, OBSERVATION, PER_MEMBER],
                                    help="at those epochs also evaluate the training set in eval mode")
    checkpoint_every: int = config_field(0, roles=[UNHASHED, OBSERVATION, PER_MEMBER],
                                         help="also write checkpoint.pt every k epochs (0: only at the end)")
    snapshot_epochs: list[int] = config_field(
        roles=[HASHED, OBSERVATION, PER_MEMBER], items="epochs, e.g. 5,10",
        help="keep the model's weights at the end of these epochs (snapshots/)", default_factory=list)
    plots: bool = config_field(True, roles=[UNHASHED, OBSERVATION, PER_MEMBER], help="write PNG curves at the end")
    progress: bool = config_field(True, roles=[UNHASHED, OBSERVATION, PER_MEMBER],
                                  help="progress bar (quiet when stderr is not a terminal)")
    # real images
    data: str | None = config_field(
        None, roles=[HASHED, DATA], help="real images by name (none: the pattern preset)",
        no_flag="`lrdecay train --data` is written by hand: it also takes an .npz training set")
    data_dir: str | None = config_field(None, roles=[UNHASHED, OBSERVATION, DATA],
                                        help="folder holding --data cifar10, cifar100 or folder (needed), or mnist, fashion-mnist, "
                                        "kmnist (default: $LRDECAY_DATA, then /usr/share/datasets/<name>); nothing is "
                                        "downloaded")
    image_size: int = config_field(32, roles=[HASHED, DATA], help="side of the images decoded from a folder")
    classes: list[int] | None = config_field(
        None, roles=[HASHED, DATA], items="class indices, e.g. 0,1,2",
        help="real images: train and test on these classes only, relabelled 0..k-1 in this order (none: all)")
    train_subset: int | None = config_field(None, roles=[HASHED, DATA],
                                            help="train on a class-balanced subset of this many images (none: all)")
    augment: str = config_field("auto", roles=[HASHED], help="augmentation, on the device inside the step",
                                choices=_augments)
    crop_padding: int = config_field(4, roles=[HASHED], help="zero padding around an image for the random crop")
    channels_last: bool = config_field(False, roles=[HASHED], help="channels_last memory format (conv models)")
    amp: bool = config_field(False, roles=[HASHED], help="bfloat16 autocast (CUDA)")

    def __post_init__(self) -> None:
        for name in _LIST_FIELDS:  # a tuple given for a list field is kept as a list (JSON, equality)
            value = getattr(self, name)
            if isinstance(value, tuple):
                setattr(self, name, list(value))
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ValueError/TypeError naming the first bad field and its accepted range (numpy scalars
        are first turned into Python ones, so the config stays JSON)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
                setattr(self, f.name, value.item())
        if isinstance(self.milestones, list):
            self.milestones = [m.item() if hasattr(m, "item") and getattr(m, "ndim", None) == 0 else m
                               for m in self.milestones]
        from lrdecay.data.patterns import LIMITS

        _int("n_train", self.n_train, 1)
        _int("n_test", self.n_test, 0)
        _at_most("n_train", self.n_train, LIMITS["max_n"])
        _at_most("n_test", self.n_test, LIMITS["max_n"])
        _str("preset", self.preset)
        if self.label_noise is not None:
            _float("label_noise", self.label_noise, 0.0, 1.0)
        _bool("probe_groups", self.probe_groups)
        _float("val_fraction", self.val_fraction, 0.0, 0.5)
        if self.schedule == "auto_val" and not self.val_fraction > 0:
            raise ValueError("schedule='auto_val' reads the validation error: it needs val_fraction > 0 "
                             f"(e.g. 0.1), got val_fraction={self.val_fraction}")
        _str("model", self.model)
        from lrdecay.models import ACTIVATIONS, MODEL_NAMES

        if self.model not in MODEL_NAMES:
            raise ValueError(f"model must be one of {list(MODEL_NAMES)}, got {self.model!r}")
        if self.width is not None:
            _int("width", self.width, 1)
            _at_most("width", self.width, MAX_WIDTH)
        if self.depth is not None:
            _int("depth", self.depth, 1)
            _at_most("depth", self.depth, MAX_DEPTH)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        _bool("batchnorm", self.batchnorm)
        _int("epochs", self.epochs, 1)
        if self.batch_size is not None:
            _int("batch_size", self.batch_size, 1)
        _bool("drop_last", self.drop_last)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        _float("lr", self.lr, 0.0, math.inf)
        _float("momentum", self.momentum, 0.0, math.inf)
        _float("dampening", self.dampening, 0.0, math.inf)
        _float("weight_decay", self.weight_decay, 0.0, math.inf)
        _bool("nesterov", self.nesterov)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov=True requires momentum > 0 and dampening = 0")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        if not isinstance(self.milestones, list):
            raise TypeError(f"milestones must be a list of ints, got {type(self.milestones).__name__}")
        for i, m in enumerate(self.milestones):
            _int(f"milestones[{i}]", m, 1)
        if any(b <= a for a, b in zip(self.milestones, self.milestones[1:])):
            raise ValueError(f"milestones must be strictly increasing epochs >= 1, got {self.milestones}")
        _float("gamma", self.gamma, 0.0, math.inf)
        if self.gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")
        _int("step_size", self.step_size, 1)
        _float("eta_min", self.eta_min, 0.0, math.inf)
        if self.max_decays is not None:
            _int("max_decays", self.max_decays, 0)
        _int("auto_window", self.auto_window, 3)
        _float("auto_fraction", self.auto_fraction, 0.0, math.inf)
        if self.auto_min_stage is not None:
            _int("auto_min_stage", self.auto_min_stage, 1)
        _int("plateau_patience", self.plateau_patience, 0)
        _float("plateau_threshold", self.plateau_threshold, 0.0, math.inf)
        if not isinstance(self.decay_train_acc, list):
            raise TypeError(f"decay_train_acc must be a list of accuracies, got {type(self.decay_train_acc).__name__}")
        for i, a in enumerate(self.decay_train_acc):
            _float(f"decay_train_acc[{i}]", a, 0.0, 1.0)
        if any(b <= a for a, b in zip(self.decay_train_acc, self.decay_train_acc[1:])):
            raise ValueError(f"decay_train_acc must be strictly increasing, got {self.decay_train_acc}")
        if self.schedule in ("auto", "auto_val", "plateau") and not 0 < self.gamma < 1:
            raise ValueError(f"schedule={self.schedule!r} needs gamma in (0, 1), got {self.gamma}")
        if self.schedule == "train_acc" and not self.decay_train_acc:
            raise ValueError("schedule='train_acc' needs decay_train_acc: the training accuracies to decay at")
        if not isinstance(self.snapshot_epochs, list):
            raise TypeError(f"snapshot_epochs must be a list of epochs, got {type(self.snapshot_epochs).__name__}")
        for i, e in enumerate(self.snapshot_epochs):
            _int(f"snapshot_epochs[{i}]", e, 1)
        _int("seed", self.seed, 0)
        if self.seed >= 2**63:
            raise ValueError(f"seed must be in [0, 2**63), got {self.seed}")
        _str("device", self.device)
        if not (self.device in ("auto", "cpu", "cuda") or (self.device.startswith("cuda:") and self.device[5:].isdigit())):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        _bool("cuda_graph", self.cuda_graph)
        _bool("ledger", self.ledger)
        _int("eval_every", self.eval_every, 1)
        _bool("eval_train", self.eval_train)
        _int("checkpoint_every", self.checkpoint_every, 0)
        _bool("plots", self.plots)
        _bool("progress", self.progress)
        self._validate_images()

    def _validate_images(self) -> None:
        from lrdecay.data.augment import AUGMENTS
        from lrdecay.data.load import IMAGE_DATASETS

        if self.data is not None:
            _str("data", self.data)
            if self.data not in IMAGE_DATASETS:
                raise ValueError(f"data must be None (the pattern preset) or one of {list(IMAGE_DATASETS)}, got {self.data!r}")
            if self.data in ("cifar10", "cifar100", "folder") and self.data_dir is None:
                raise ValueError(f"data={self.data!r} needs data_dir: the folder holding it (nothing is downloaded)")
            if self.probe_groups:
                raise ValueError(f"probe_groups needs the pattern groups of a synthetic preset; data={self.data!r} "
                                 f"has none (set probe_groups=False)")
        if self.data_dir is not None:
            _str("data_dir", self.data_dir)
            if self.data in (None, "digits"):
                raise ValueError(f"data_dir is only used with data = 'cifar10', 'cifar100', 'folder', 'mnist', "
                                 f"'fashion-mnist' or 'kmnist', got data={self.data!r}")
        _int("image_size", self.image_size, 1)
        if self.classes is not None:
            if self.data is None:
                raise ValueError("classes selects classes of real images; it needs data (cifar10, cifar100, digits "
                                 "or folder), got data=None")
            if not isinstance(self.classes, list):
                raise TypeError(f"classes must be a list of class indices, got {type(self.classes).__name__}")
            self.classes = [_int(f"classes[{i}]", c, 0) for i, c in enumerate(self.classes)]  # Python ints: JSON
            if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
                raise ValueError(f"classes must list at least 2 distinct class indices, got {self.classes}")
        if self.train_subset is not None:
            _int("train_subset", self.train_subset, 1)
        _str("augment", self.augment)
        if self.augment not in ("auto", *AUGMENTS):
            raise ValueError(f"augment must be one of {['auto', *AUGMENTS]}, got {self.augment!r}")
        _int("crop_padding", self.crop_padding, 0)
        _bool("channels_last", self.channels_last)
        _bool("amp", self.amp)

    # ------------------------------------------------------------------ derived values
    def decay_epochs(self) -> list[int]:
        """Epoch boundaries (number of completed epochs) after which the LR changes: stage ends.

        For ``multistep`` the milestones below ``epochs``; for ``step`` every ``step_size``; continuous
        schedules (exponential, cosine) and constant have none. Host-side schedules (``auto``,
        ``plateau``, ``train_acc``) decide during the run: read the decays from the run's history
        (:func:`lrdecay.trainer.decays_in`). (Derived from :class:`lrdecay.trainer.schedule.RunSchedule`.)
        """
        return self.run_schedule().decay_epochs()

    def run_schedule(self) -> RunSchedule:
        """This config's schedule: device form, torch scheduler, host-side decider, per-epoch LR."""
        return RunSchedule(self)

    @property
    def host_schedule(self) -> bool:
        """True when the LR is decided on the host at epoch ends (``auto``, ``plateau``, ``train_acc``)."""
        return self.schedule in HOST_SCHEDULES

    def lr_at_epoch(self, epoch: int) -> float:
        """The LR used during 0-based ``epoch`` by the schedule's one definition
        (:data:`lrdecay.trainer.schedule.FIXED`); for a host-side schedule the LR before any decay (the
        run's records hold the LRs it used)."""
        return self.run_schedule().lr_at_epoch(epoch)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (JSON-serializable)."""
        return dataclasses.asdict(self)

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """JSON text of the config; also written to ``path`` when given (atomically)."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            from lrdecay._atomic import atomic_write

            with atomic_write(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Build from a dict; unknown keys raise ValueError naming them."""
        if not isinstance(d, dict):
            raise TypeError(f"config must be a JSON object / dict, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; accepted fields: {sorted(names)}")
        return cls(**d)

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> "TrainConfig":
        """Parse JSON text, or read a ``.json`` file when given a path."""
        from lrdecay._validate import loads_json

        s = os.fspath(text_or_path)
        what = "config"
        if not s.lstrip().startswith("{"):
            if os.path.isdir(s):
                raise ValueError(f"config {s!r} is a folder, not a JSON file")
            what = f"config file {s!r}"
            with open(s, "rb") as f:
                raw = f.read()
            try:
                s = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{what} is not UTF-8 text: {exc}") from None
        d = loads_json(s, what)
        if not isinstance(d, dict):
            raise ValueError(f"{what} must hold a JSON object of TrainConfig fields, got {type(d).__name__}")
        return cls.from_dict(d)

    def replace(self, **changes: Any) -> "TrainConfig":
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def default_identity(cls) -> dict[str, Any]:
        """:meth:`identity` of a config with every field at its default (without validation)."""
        out = {}
        for f in dataclasses.fields(cls):
            if f.name in OBSERVATION_FIELDS:
                continue
            out[f.name] = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        return out

    def identity(self) -> dict[str, Any]:
        """The fields that determine a run's numbers (used to match a checkpoint to a config)."""
        return {k: v for k, v in self.to_dict().items() if k not in OBSERVATION_FIELDS}


check_roles(TrainConfig)

_LIST_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if str(f.type).startswith("list["))
#: Fields left out of a run's id (:func:`lrdecay.sweep.run_id`): how a run is watched or where it runs.
UNHASHED_FIELDS = frozenset(fields_with(TrainConfig, UNHASHED))
#: Fields a checkpoint may be resumed under a different value of (how a run is observed, not its numbers).
OBSERVATION_FIELDS = frozenset(fields_with(TrainConfig, OBSERVATION))
#: Fields the trainer's data build reads: runs equal in these train on the same data.
DATA_FIELDS = fields_with(TrainConfig, DATA)
#: Fields that may differ between the members of one stacked model.
PER_MEMBER_FIELDS = frozenset(fields_with(TrainConfig, PER_MEMBER))
#: ``{schedule: the config fields it reads}`` (schedule parameters only; every schedule also reads ``lr``).
SCHEDULE_FIELDS = schedule_fields(TrainConfig)
