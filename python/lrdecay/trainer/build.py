"""What a run is built from, before its first step: the device, the default datasets of a config, the
seeded initial model, a check that the model fits the data, and the optimizer with its schedule.

:class:`~lrdecay.trainer.Trainer` calls these while it is constructed; they live apart from its epoch loop
because each is one decision about the run's ingredients, read and tested on its own.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from lrdecay.trainer.config import TrainConfig
from lrdecay.trainer.inputs import DeviceData
from lrdecay.trainer.schedule import RunSchedule
from lrdecay.trainer.steps import subseed

__all__ = ["resolve_device", "default_datasets", "initial_model", "check_model", "build_optimizer"]


def resolve_device(name: str) -> torch.device:
    """The torch device of a config's ``device`` (``"auto"``: CUDA when available, else the CPU);
    ValueError for CUDA without a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but CUDA is not available (use 'cpu' or 'auto')")
    return dev


def default_datasets(cfg: TrainConfig) -> tuple[Any, dict[str, Any]]:
    """The training set and the ``{name: test set}`` a run of ``cfg`` builds when given no dataset: the
    image data of ``cfg.data``, else the preset's pattern data (test split, per-group probes). It reads only
    the config's data fields (``DATA_FIELDS``)."""
    if cfg.data is not None:
        from lrdecay.trainer.image_inputs import build_image_datasets

        return build_image_datasets(cfg)
    from lrdecay.data import pattern_dataset

    train_ds = pattern_dataset(cfg.n_train, preset=cfg.preset, split="train", seed=cfg.seed, label_noise=cfg.label_noise)
    tests: dict[str, Any] = {}
    if cfg.n_test > 0:
        tests["test"] = pattern_dataset(cfg.n_test, preset=cfg.preset, split="test", seed=cfg.seed)
        if cfg.probe_groups:
            for g in train_ds.group_names:
                tests[f"probe_{g}"] = pattern_dataset(cfg.n_test, preset=cfg.preset, split="test", seed=cfg.seed,
                                                      groups=[g])
    return train_ds, tests


def initial_model(cfg: TrainConfig, data: DeviceData) -> nn.Module:
    """The config's model for ``data``, initialized on the CPU from the run's init seed (the same weights
    on every device), without touching the global random state."""
    from lrdecay.models import make_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(subseed(cfg.seed, "init"))
        return make_model(
            cfg.model,
            in_features=data.in_features,
            n_classes=data.n_classes,
            width=cfg.width,
            depth=cfg.depth,
            activation=cfg.activation,
            batchnorm=cfg.batchnorm,
            input_shape=tuple(data.x.shape[1:]) if data.x.dim() == 4 else None,
        )


def check_model(model: nn.Module, data: DeviceData, *, prepare: Callable[[torch.Tensor], torch.Tensor],
                autocast: Callable[[], Any], batch_size: int, tail: int) -> None:
    """ValueError, before any training, when ``model`` fails on two samples of ``data``, does not give
    ``(batch, n_classes)`` logits, or has BatchNorm while a batch of one sample would occur."""
    k = data.n_classes
    was_training = model.training
    model.eval()  # a probe forward must not touch BatchNorm running statistics
    try:
        with torch.no_grad(), autocast():
            out = model(prepare(data.x[: min(2, data.n)]))
    except Exception as exc:
        raise ValueError(f"model failed on a batch of the dataset (x shape {tuple(data.x.shape[1:])}): {exc}") from exc
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] != k:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"model output must be (batch, n_classes={k}) logits, got {shape}: "
            f"its output width differs from the dataset's number of classes"
        )
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if has_bn and (tail == 1 or batch_size == 1):
        raise ValueError(
            f"batch_size={batch_size} leaves a batch of 1 sample (n_train={data.n}), which "
            f"BatchNorm cannot train on: pick another batch_size or set drop_last=True"
        )


def build_optimizer(cfg: TrainConfig, model: nn.Module, schedule: RunSchedule, steps_per_epoch: int):
    """The optimizer, the torch LR scheduler stepped per epoch (``optimizer="torch"`` with a fixed
    schedule) or None, and the host-side decay stepped with each epoch's numbers (or None), all from the
    config's one schedule definition (:mod:`lrdecay.trainer.schedule`)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    hyper = dict(lr=cfg.lr, momentum=cfg.momentum, dampening=cfg.dampening, weight_decay=cfg.weight_decay,
                 nesterov=cfg.nesterov)
    if cfg.optimizer == "fused":
        # imported here: lrdecay.optim pulls in torch._dynamo (seconds), which a torch-optimizer run skips
        from lrdecay.optim import FusedSGD

        # a host-side schedule sets group['lr'] itself: no device-side schedule then (device() is None)
        opt = FusedSGD(params, **hyper, schedule=schedule.device(steps_per_epoch))
        return opt, None, schedule.host_decay(opt)
    # torch's single-pass fused kernel: same update as the default foreach path, ~3x faster per step
    # on CPU (measured 0.49 vs 1.65 ms for the 3x512 MLP); fall back where it is not supported.
    fused_ok = all(p.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16) for p in params)
    fused_ok = fused_ok and all(p.device.type in ("cpu", "cuda") for p in params)
    try:
        opt = torch.optim.SGD(params, **hyper, fused=True if fused_ok else None)
    except (RuntimeError, ValueError, TypeError):
        opt = torch.optim.SGD(params, **hyper)
    return opt, schedule.torch_scheduler(opt), schedule.host_decay(opt)
