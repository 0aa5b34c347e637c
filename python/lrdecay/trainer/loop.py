"""The training loop: ``Trainer`` (epoch by epoch) and ``train`` (a whole run).

Data lives on the device for the whole run; each epoch draws a seeded permutation on the device and a
batch is an index gather from it. The step writes each sample's prediction and loss into per-epoch device
buffers (no host sync inside the step); once per epoch those buffers are copied to the host, turned into
the epoch's statistics and fed to the ledger. On CUDA with the fused optimizer the whole step is captured
in a CUDA graph and replayed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lrdecay._outdir import OutputDir
from lrdecay.trainer.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from lrdecay.trainer.config import TrainConfig
from lrdecay.trainer.graphs import GraphedStep
from lrdecay.trainer.image_inputs import check_image_sets, make_pipeline
from lrdecay.trainer.inputs import DeviceData, as_device_data
from lrdecay.trainer.logs import JsonlWriter, write_csv

__all__ = ["Trainer", "train", "RunResult", "subseed", "decays_in"]

_FORMAT = 1
#: What a run writes into its out_dir (glob patterns): a folder from before output folders were marked
#: may be overwritten if it holds only these.
RUN_OUTPUTS = ("config.json", "log.jsonl", "log.csv", "*.pt", "ledger.npz", "*.png", ".*.tmp")
EpochCallback = Callable[["Trainer", dict], None]


def subseed(seed: int, stream: str, k: int = 0) -> int:
    """A 63-bit seed for one random stream of a run (``"init"``, ``"order"`` + epoch), derived from the
    run's seed so that streams are independent and stable across versions."""
    digest = hashlib.blake2b(f"lrdecay:{seed}:{stream}:{k}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def decays_in(history: list[dict]) -> list[int]:
    """The epochs after which the LR dropped, read from a run's records (their ``lr``: the LR each epoch
    used): stage ends, for any schedule, including the host-side ones decided during the run."""
    return [a["epoch"] for a, b in zip(history, history[1:]) if b["lr"] < a["lr"]]


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but CUDA is not available (use 'cpu' or 'auto')")
    return dev


@dataclass
class RunResult:
    """What a run produced.

    Attributes:
        config: the run's :class:`TrainConfig`.
        history: one record per completed epoch (the JSONL lines, as dicts).
        model: the trained model (on the run's device).
        ledger: the :class:`lrdecay.Ledger` with per-sample history, or None (``ledger=False``).
        out_dir: where logs, plots and checkpoints went (None: nothing written).
        files: name → path of each file written (``config``, ``log``, ``csv``, ``checkpoint``, ``ledger``,
            ``loss_png``, ``accuracy_png``).
        wall_time: seconds spent in this call (training, evaluation, logging).
        snapshots: epoch → CPU state dict of the model at the end of that epoch (``config.snapshot_epochs``).
    """

    config: TrainConfig
    history: list[dict]
    model: nn.Module
    ledger: Any
    out_dir: str | None
    files: dict[str, str] = field(default_factory=dict)
    wall_time: float = 0.0
    snapshots: dict[int, dict] = field(default_factory=dict)

    @property
    def final(self) -> dict:
        """The last epoch's record."""
        return self.history[-1] if self.history else {}

    def summary(self) -> dict:
        """The ledger's per-epoch summary (dict of numpy arrays), or {} without a ledger."""
        return {} if self.ledger is None else self.ledger.summary()


class Trainer:
    """A training run you can step through: ``run_epoch()``, ``evaluate()``, ``save_checkpoint(path)``.

    Args:
        config: the run's settings (validated again here).
        dataset: training data (PatternDataset, dict of arrays, or ``(x, y)``); None: built from
            ``config.preset`` / ``n_train`` / ``label_noise`` / ``seed``.
        test_sets: ``{name: dataset}`` evaluated every ``config.eval_every`` epochs; None with
            ``dataset=None``: the preset's test split (and per-group probes with ``probe_groups``);
            None with a given dataset: no test sets.
        model: an ``nn.Module`` mapping a batch of ``x`` to ``n_classes`` logits; None: built from the
            config (``make_model``) with the run's init seed.
        out_dir: folder for ``log.jsonl``, ``log.csv``, PNGs and ``checkpoint.pt``; None writes nothing.
            One writer per folder, and a folder that already holds something needs ``resume`` or
            ``overwrite`` (:mod:`lrdecay._outdir`); it is held from construction until :meth:`fit`
            returns or :meth:`close` is called.
        resume: a checkpoint file, or a run folder holding ``checkpoint.pt``; the run continues exactly
            where it stopped (must match this config, data and model, else ValueError before anything
            runs), writing into ``out_dir``.
        overwrite: delete what ``out_dir`` holds first (only an lrdecay output folder).
        callbacks: functions ``f(trainer, record)`` called at each epoch end, after the record is complete
            and before it is logged (they may add keys, save checkpoints, extract features).
    """

    eval_batch_size = 4096

    def __init__(
        self,
        config: TrainConfig,
        *,
        dataset: Any = None,
        test_sets: Mapping[str, Any] | None = None,
        model: nn.Module | None = None,
        out_dir: str | os.PathLike | None = None,
        resume: str | os.PathLike | None = None,
        overwrite: bool = False,
        callbacks: Iterable[EpochCallback] = (),
    ) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        config.validate()
        cfg = self.config = config
        self.device = _resolve_device(cfg.device)
        self.callbacks = list(callbacks)
        if model is not None and not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module or None, got {type(model).__name__}")
        if test_sets is not None and not isinstance(test_sets, Mapping):
            raise TypeError(f"test_sets must be a dict {{name: dataset}} or None, got {type(test_sets).__name__}")
        if not isinstance(overwrite, bool):
            raise TypeError(f"overwrite must be a bool, got {type(overwrite).__name__}")
        if resume is not None and overwrite:
            raise ValueError("resume and overwrite exclude each other: continue the run or replace it")
        if resume is not None:
            resume = checkpoint_path(resume)
        ckpt = load_checkpoint(resume) if resume is not None else None  # corrupt → error before any work

        # ---- data, once on the device
        if dataset is None:
            dataset, default_tests = self._build_datasets(cfg)
            if test_sets is None:
                test_sets = default_tests
        self.data: DeviceData = as_device_data(dataset, self.device, name="dataset")
        self.test_data: dict[str, DeviceData] = {}
        for name, ds in (test_sets or {}).items():
            self.test_data[str(name)] = as_device_data(
                ds, self.device, name=f"test_sets[{name!r}]", n_classes=self.data.n_classes
            )
        check_image_sets(self.data, self.test_data)
        # uint8 images: normalized (and augmented, seeded per epoch) on the device inside the step
        self.pipeline = make_pipeline(cfg, self.data, self.device)
        n = self.data.n
        self.batch_size = n if cfg.batch_size is None else cfg.batch_size
        if self.batch_size > n:
            raise ValueError(
                f"batch_size must be in [1, n_train={n}] (or None for full-batch GD), got {self.batch_size}"
            )
        self.n_full = n // self.batch_size
        self.tail = 0 if cfg.drop_last else n - self.n_full * self.batch_size
        self.steps_per_epoch = self.n_full + (1 if self.tail else 0)

        # ---- model (seeded init on the CPU, then moved: same init on every device)
        if model is None:
            from lrdecay.models import make_model

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(subseed(cfg.seed, "init"))
                model = make_model(
                    cfg.model,
                    in_features=self.data.in_features,
                    n_classes=self.data.n_classes,
                    width=cfg.width,
                    depth=cfg.depth,
                    activation=cfg.activation,
                    batchnorm=cfg.batchnorm,
                    input_shape=tuple(self.data.x.shape[1:]) if self.data.x.dim() == 4 else None,
                )
        self.model = model.to(self.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._check_model()

        # ---- optimizer + schedule
        self.optimizer, self.scheduler, self.host_decay = self._build_optimizer()
        # a graph bakes the LR in: host-side schedules change it from the host, so they run eagerly
        self.use_graph = (self.device.type == "cuda" and cfg.cuda_graph and cfg.optimizer == "fused"
                          and not cfg.host_schedule)

        # ---- per-epoch device buffers (written inside the step, read once per epoch)
        self.pred_buf = torch.zeros(n, dtype=torch.int64, device=self.device)
        self.loss_buf = torch.zeros(n, dtype=torch.float32, device=self.device)
        self.perm = torch.zeros(n, dtype=torch.int64, device=self.device)
        self.batch_counter = torch.zeros(1, dtype=torch.int64, device=self.device)
        self._full_step = self._tail_step = None
        if self.use_graph:
            pool = torch.cuda.graph_pool_handle()
            self._full_step = GraphedStep(self._graph_full_step, pool=pool)
            self._tail_step = GraphedStep(self._graph_tail_step, warmup=1, pool=pool)

        # ---- ledger
        self.ledger = self._build_ledger() if cfg.ledger else None

        # ---- run state
        self.epoch = 0  # completed epochs
        self.batch = 0  # steps done in the current (unfinished) epoch
        self.step_count = 0
        self.history: list[dict] = []
        self.snapshots: dict[int, dict] = {}
        self._epoch_time_done = 0.0  # seconds spent on the unfinished epoch before a resume
        self._stop = False
        self.out_dir = None if out_dir is None else os.fspath(out_dir)
        self.files: dict[str, str] = {}
        self._log: JsonlWriter | None = None
        self._out: OutputDir | None = None
        if ckpt is not None:
            self._load_state(ckpt, os.fspath(resume))
        if self.out_dir is not None:
            # Last, after every check: a bad argument never leaves a folder behind.
            self._out = OutputDir(
                self.out_dir, kind="train", resume=ckpt is not None, overwrite=overwrite, outputs=RUN_OUTPUTS
            )
            self.files["config"] = os.path.join(self.out_dir, "config.json")
            cfg.to_json(self.files["config"])
            self.files["log"] = os.path.join(self.out_dir, "log.jsonl")
            self._log = JsonlWriter(self.files["log"], self.history)

    # ================================================================== construction helpers
    @staticmethod
    def _build_datasets(cfg: TrainConfig):
        if cfg.data is not None:
            from lrdecay.trainer.image_inputs import build_image_datasets

            return build_image_datasets(cfg)
        from lrdecay.data import pattern_dataset

        train_ds = pattern_dataset(
            cfg.n_train, preset=cfg.preset, split="train", seed=cfg.seed, label_noise=cfg.label_noise
        )
        tests: dict[str, Any] = {}
        if cfg.n_test > 0:
            tests["test"] = pattern_dataset(cfg.n_test, preset=cfg.preset, split="test", seed=cfg.seed)
            if cfg.probe_groups:
                for g in train_ds.group_names:
                    tests[f"probe_{g}"] = pattern_dataset(
                        cfg.n_test, preset=cfg.preset, split="test", seed=cfg.seed, groups=[g]
                    )
        return train_ds, tests

    def _check_model(self) -> None:
        k = self.data.n_classes
        was_training = self.model.training
        self.model.eval()  # a probe forward must not touch BatchNorm running statistics
        try:
            with torch.no_grad(), self._autocast():
                out = self.model(self._input(self.data.x[: min(2, self.data.n)]))
        except Exception as exc:
            raise ValueError(
                f"model failed on a batch of the dataset (x shape {tuple(self.data.x.shape[1:])}): {exc}"
            ) from exc
        finally:
            self.model.train(was_training)
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] != k:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"model output must be (batch, n_classes={k}) logits, got {shape}: "
                f"its output width differs from the dataset's number of classes"
            )
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.model.modules())
        if has_bn and (self.tail == 1 or self.batch_size == 1):
            raise ValueError(
                f"batch_size={self.batch_size} leaves a batch of 1 sample (n_train={self.data.n}), which "
                f"BatchNorm cannot train on: pick another batch_size or set drop_last=True"
            )

    def _build_optimizer(self):
        """The optimizer, the torch LR scheduler stepped per epoch (``optimizer="torch"`` with a fixed
        schedule) or None, and the host-side decay stepped with each epoch's numbers (or None)."""
        cfg = self.config
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("model has no trainable parameters")
        hyper = dict(
            lr=cfg.lr,
            momentum=cfg.momentum,
            dampening=cfg.dampening,
            weight_decay=cfg.weight_decay,
            nesterov=cfg.nesterov,
        )
        if cfg.optimizer == "fused":
            from lrdecay.optim import FusedSGD

            # a host-side schedule sets group['lr'] itself: no device-side schedule then
            opt = FusedSGD(params, **hyper, schedule=None if cfg.host_schedule else self._fused_schedule())
            return opt, None, self._host_decay(opt)
        # torch's single-pass fused kernel: same update as the default foreach path, ~3x faster per step
        # on CPU (measured 0.49 vs 1.65 ms for the 3x512 MLP); fall back where it is not supported.
        fused_ok = all(p.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16) for p in params)
        fused_ok = fused_ok and all(p.device.type in ("cpu", "cuda") for p in params)
        try:
            opt = torch.optim.SGD(params, **hyper, fused=True if fused_ok else None)
        except (RuntimeError, ValueError, TypeError):
            opt = torch.optim.SGD(params, **hyper)
        if cfg.host_schedule:
            return opt, None, self._host_decay(opt)
        sched = {
            "constant": lambda: None,
            "multistep": lambda: torch.optim.lr_scheduler.MultiStepLR(opt, cfg.milestones, cfg.gamma),
            "step": lambda: torch.optim.lr_scheduler.StepLR(opt, cfg.step_size, cfg.gamma),
            "exponential": lambda: torch.optim.lr_scheduler.ExponentialLR(opt, cfg.gamma),
            "cosine": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs, cfg.eta_min),
        }[cfg.schedule]()
        return opt, sched, None

    def _host_decay(self, opt):
        """The host-side decay of a ``auto`` / ``plateau`` / ``train_acc`` schedule, or None."""
        from lrdecay import schedules

        cfg = self.config
        min_lr = 0.0 if cfg.max_decays is None else cfg.lr * cfg.gamma**cfg.max_decays * (1 - 1e-9)
        if cfg.schedule == "auto":
            return schedules.AutoDecay(opt, gamma=cfg.gamma, window=cfg.auto_window, fraction=cfg.auto_fraction,
                                       min_stage=cfg.auto_min_stage, max_decays=cfg.max_decays)
        if cfg.schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode="min", factor=cfg.gamma, patience=cfg.plateau_patience, threshold=cfg.plateau_threshold,
                threshold_mode="rel", min_lr=min_lr,
            )
        if cfg.schedule == "train_acc":
            return schedules.AccuracyMilestones(opt, cfg.decay_train_acc, gamma=cfg.gamma)
        return None

    def _step_host_decay(self, record: dict) -> None:
        """Feed the epoch's numbers to the host-side decay (its LR holds from the next epoch on)."""
        if self.config.schedule == "train_acc":
            self.host_decay.step(record["train_acc"])
        else:
            self.host_decay.step(record["train_loss"])

    def _fused_schedule(self):
        """The config's per-epoch LR sequence as a device-side step schedule (LR changes only at epoch
        boundaries, exactly like a torch scheduler stepped once per epoch)."""
        from lrdecay import schedules

        cfg = self.config
        spe = self.steps_per_epoch
        if cfg.schedule == "constant":
            return schedules.Constant(base_lr=cfg.lr)
        if cfg.schedule == "multistep":
            return schedules.MultiStep.from_epochs(
                cfg.milestones, cfg.gamma, steps_per_epoch=spe, base_lr=cfg.lr
            )
        if cfg.schedule == "step":
            return schedules.Step.from_epochs(cfg.step_size, cfg.gamma, steps_per_epoch=spe, base_lr=cfg.lr)
        # Continuous schedules: the per-epoch values as a piecewise-constant sequence of steps.
        values = [cfg.lr_at_epoch(e) for e in range(cfg.epochs)]
        return schedules.Piecewise([e * spe for e in range(1, cfg.epochs)], values)

    def _build_ledger(self):
        from lrdecay.ledger import Ledger

        d = self.data
        group = d.host("group")
        flipped = d.host("flipped")
        ledger = Ledger(
            d.n,
            groups=None if group is None else group.astype(np.int32),
            group_names=list(d.group_names) if group is not None else None,
            flipped=flipped,
        )
        if d.y_clean is not None:
            ledger.set_clean_labels(d.host("y_clean"))
        return ledger

    # ================================================================== the step
    def _input(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """The model's input for a batch of data: uint8 images normalized, and augmented when ``idx`` (the
        batch's sample indices, which seed each image's draws with the epoch) is given; float features
        as they are."""
        if self.pipeline is None:
            return x
        return self.pipeline.normalize(x) if idx is None else self.pipeline.train_batch(x, idx)

    def _autocast(self):
        """bfloat16 autocast with ``amp=True`` (no weight-cast cache, so CUDA graph capture stays valid)."""
        if not self.config.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16, cache_enabled=False)

    def _step(self, idx: torch.Tensor) -> None:
        """One SGD step on the samples ``idx``; records their predictions and losses in place."""
        xb = self._input(self.data.x.index_select(0, idx), idx)
        yb = self.data.y.index_select(0, idx)
        with self._autocast():
            out = self.model(xb)
            losses = F.cross_entropy(out, yb, reduction="none")
        self.optimizer.zero_grad()
        losses.mean().backward()
        self.optimizer.step()
        with torch.no_grad():
            self.pred_buf.index_copy_(0, idx, out.argmax(1))
            self.loss_buf.index_copy_(0, idx, losses.detach())

    def _graph_full_step(self) -> None:
        # The batch is read through a device counter so the same captured graph serves every batch.
        rows = self.perm[: self.n_full * self.batch_size].view(self.n_full, self.batch_size)
        self._step(rows.index_select(0, self.batch_counter).view(-1))
        self.batch_counter.add_(1)

    def _graph_tail_step(self) -> None:
        self._step(self.perm[self.n_full * self.batch_size :])

    def epoch_permutation(self, epoch: int) -> torch.Tensor:
        """The order in which 0-based ``epoch`` visits the training samples (on the device).

        Seeded by ``(config.seed, epoch)`` alone, so any epoch's order can be regenerated (resume,
        tests) without replaying the ones before it.
        """
        gen = torch.Generator(device=self.device)
        gen.manual_seed(subseed(self.config.seed, "order", epoch))
        return torch.randperm(self.data.n, generator=gen, device=self.device)

    def current_lr(self) -> float:
        """The LR the next step uses (host value; no device sync)."""
        if self.config.optimizer == "fused" and not self.config.host_schedule:
            return self.config.lr_at_epoch(self.epoch)
        return float(self.optimizer.param_groups[0]["lr"])

    # ================================================================== epochs
    def request_stop(self) -> None:
        """Ask the running epoch to stop at the next step boundary (what Ctrl-C does)."""
        self._stop = True

    def _run_steps(self) -> bool:
        """Run the rest of the current epoch's steps; False if stopped early by :meth:`request_stop`."""
        B, n_full = self.batch_size, self.n_full
        if self.batch == 0:
            self.pred_buf.fill_(-1)
            self.loss_buf.zero_()
        self.perm.copy_(self.epoch_permutation(self.epoch))
        if self.pipeline is not None:
            self.pipeline.set_epoch(subseed(self.config.seed, "augment", self.epoch))
        self.model.train()
        if self.use_graph:
            self.batch_counter.fill_(min(self.batch, n_full))
        while self.batch < self.steps_per_epoch:
            if self._stop:
                return False
            b = self.batch
            if self.use_graph:
                (self._full_step if b < n_full else self._tail_step)()
            else:
                self._step(self.perm[b * B : (b + 1) * B] if b < n_full else self.perm[n_full * B :])
            self.batch += 1
            self.step_count += 1
        return True

    def run_epoch(self) -> dict | None:
        """Train one epoch (or the rest of an interrupted one), evaluate if due, log; returns the
        epoch's record, or None if :meth:`request_stop` stopped it mid-epoch (state stays consistent:
        :meth:`save_checkpoint` then resumes from that exact step)."""
        if self.epoch >= self.config.epochs:
            raise RuntimeError(f"the run is complete ({self.config.epochs} epochs)")
        t0 = time.perf_counter()
        lr = self.current_lr()
        if not self._run_steps():
            self._epoch_time_done += time.perf_counter() - t0
            return None
        record = {"epoch": self.epoch + 1, "step": self.step_count, "lr": lr}
        record.update(self._epoch_statistics())
        if self.scheduler is not None:
            self.scheduler.step()
        if self.host_decay is not None:
            self._step_host_decay(record)
        self.epoch += 1
        self.batch = 0
        cfg = self.config
        if self.epoch % cfg.eval_every == 0 or self.epoch == cfg.epochs:
            if self.test_data:
                record["test"] = self.evaluate()
            if cfg.eval_train:
                record["train_eval"] = self.evaluate_train()
        record["time"] = self._epoch_time_done + (time.perf_counter() - t0)
        self._epoch_time_done = 0.0
        record["elapsed"] = (self.history[-1]["elapsed"] if self.history else 0.0) + record["time"]
        self.history.append(record)
        if self.epoch in cfg.snapshot_epochs:
            self._take_snapshot()
        for cb in self.callbacks:
            cb(self, record)
        if self._log is not None:
            self._log.write(record)
        if self.out_dir is not None and cfg.checkpoint_every and self.epoch % cfg.checkpoint_every == 0:
            self.save_checkpoint()
        return record

    def _epoch_statistics(self) -> dict:
        """Copy the epoch's device buffers to the host once; statistics + ledger ingest."""
        pred = self.pred_buf.cpu().numpy()
        loss = self.loss_buf.cpu().numpy()
        presented = pred >= 0
        correct = pred == self.data.host("y")
        stats: dict[str, Any] = {"presented": int(presented.sum())}
        stats["train_loss"] = float(loss[presented].astype(np.float64).mean())
        stats.update(self._label_statistics(pred, presented, prefix="train_"))
        if self.ledger is not None:
            if bool(presented.all()):
                self.ledger.record_epoch(correct, pred=pred)
            else:
                idx = np.flatnonzero(presented).astype(np.int64)
                self.ledger.record_batch(idx, correct[idx], pred=pred[idx])
                self.ledger.end_epoch()
        return stats

    def _label_statistics(self, pred: np.ndarray, presented: np.ndarray, *, prefix: str) -> dict:
        """Accuracy of host predictions ``pred`` against the training labels, over the ``presented``
        samples: overall (``{prefix}acc``), per group (``{prefix}acc_group``), on clean samples
        (``{prefix}acc_clean``), and on label-flipped samples against their noisy label (``memorized``)
        and their clean label (``predicted_clean``)."""
        d = self.data
        correct = pred == d.host("y")
        p = presented
        stats: dict[str, Any] = {f"{prefix}acc": float(correct[p].mean())}
        group = d.host("group")
        if group is not None:
            tot = np.bincount(group[p], minlength=d.n_groups)
            hit = np.bincount(group[p & correct], minlength=d.n_groups)
            stats[f"{prefix}acc_group"] = {
                name: (float(hit[i] / tot[i]) if tot[i] else None) for i, name in enumerate(d.group_names)
            }
        flipped = d.host("flipped")
        if flipped is not None:
            f = p & flipped
            c = p & ~flipped
            stats[f"{prefix}acc_clean"] = float(correct[c].mean()) if c.any() else None
            # memorized = flipped samples predicted as their (noisy) observed label
            stats["memorized"] = float(correct[f].mean()) if f.any() else None
            y_clean = d.host("y_clean")
            if y_clean is not None:
                stats["predicted_clean"] = float((pred[f] == y_clean[f]).mean()) if f.any() else None
        return stats

    @torch.no_grad()
    def evaluate_train(self) -> dict:
        """The current model (eval mode: BatchNorm running statistics, no parameter change) on the whole
        training set, against its observed labels.

        Unlike the epoch's own statistics, which come from predictions made during the epoch in training
        mode while the weights move, this is one fixed model: the memorization measure to read at a stage
        end. Returns ``{"acc", "loss", "acc_group", "acc_clean", "memorized", "predicted_clean"}`` (keys
        present as the dataset allows).
        """
        d = self.data
        was_training = self.model.training
        self.model.eval()
        try:
            pred = torch.empty(d.n, dtype=torch.int64, device=self.device)
            loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
            for s in range(0, d.n, self.eval_batch_size):
                with self._autocast():
                    logits = self.model(self._input(d.x[s : s + self.eval_batch_size]))
                    loss = F.cross_entropy(logits, d.y[s : s + self.eval_batch_size], reduction="sum")
                loss_sum += loss.double()
                pred[s : s + self.eval_batch_size] = logits.argmax(1)
        finally:
            self.model.train(was_training)
        out: dict[str, Any] = {"loss": float(loss_sum.item()) / d.n}
        out.update(self._label_statistics(pred.cpu().numpy(), np.ones(d.n, dtype=bool), prefix=""))
        return out

    @torch.no_grad()
    def evaluate(self, test_sets: Mapping[str, Any] | None = None) -> dict[str, dict]:
        """Accuracy and loss of the current model (eval mode) on each test set, overall and per group.

        Args:
            test_sets: ``{name: dataset}``; None evaluates the trainer's own test sets.
        Returns ``{name: {"acc", "loss", "acc_group": {group: acc}}}``.
        """
        sets = self.test_data if test_sets is None else {
            str(k): v if isinstance(v, DeviceData) else as_device_data(v, self.device, name=f"test_sets[{k!r}]", n_classes=self.data.n_classes)
            for k, v in test_sets.items()
        }
        check_image_sets(self.data, sets)
        was_training = self.model.training
        self.model.eval()
        out: dict[str, dict] = {}
        try:
            for name, d in sets.items():
                hits = torch.zeros((), dtype=torch.int64, device=self.device)
                loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
                correct = torch.empty(d.n, dtype=torch.bool, device=self.device)
                for s in range(0, d.n, self.eval_batch_size):
                    yb = d.y[s : s + self.eval_batch_size]
                    with self._autocast():
                        logits = self.model(self._input(d.x[s : s + self.eval_batch_size]))
                        loss = F.cross_entropy(logits, yb, reduction="sum")
                    loss_sum += loss.double()
                    correct[s : s + self.eval_batch_size] = logits.argmax(1) == yb
                hits = correct.sum()
                res = {"acc": None, "loss": None}
                if d.group is not None:
                    # integer counts: deterministic on every device
                    tot = torch.bincount(d.group, minlength=d.n_groups)
                    hit = torch.bincount(d.group[correct], minlength=d.n_groups)
                    tot_h, hit_h = tot.cpu().numpy(), hit.cpu().numpy()
                    # only the groups this set has samples of (a probe set holds one group)
                    res["acc_group"] = {
                        g: float(hit_h[i] / tot_h[i]) for i, g in enumerate(d.group_names) if tot_h[i]
                    }
                res["acc"] = float(hits.item()) / d.n
                res["loss"] = float(loss_sum.item()) / d.n
                out[name] = res
        finally:
            self.model.train(was_training)
        return out

    @torch.no_grad()
    def features(self, x: Any, *, batch_size: int = 4096) -> torch.Tensor:
        """Penultimate activations of the model (eval mode) for ``x`` (array, tensor or dataset).

        Uses ``model.features`` (every :mod:`lrdecay.models` model has it); for a custom model without
        one, the input of its last ``nn.Linear`` is captured with a forward hook.
        """
        if not isinstance(x, (torch.Tensor, np.ndarray)):
            x = as_device_data(x, self.device, name="x", n_classes=self.data.n_classes).x
        if self.pipeline is not None:  # images: uint8 in, normalized like the training data
            x = torch.as_tensor(x, device=self.device)
            if x.dtype != torch.uint8 or tuple(x.shape[1:]) != tuple(self.data.x.shape[1:]):
                raise TypeError(f"x must be uint8 images of shape (n, {', '.join(map(str, self.data.x.shape[1:]))}) "
                                f"like the training data, got {x.dtype} {tuple(x.shape)}")
        else:
            x = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        was_training = self.model.training
        self.model.eval()
        try:
            chunks = []
            feat = getattr(self.model, "features", None)
            for s in range(0, x.shape[0], batch_size):
                xb = self._input(x[s : s + batch_size])
                with self._autocast():
                    chunks.append((feat(xb) if callable(feat) else _last_linear_input(self.model, xb)).float())
            return torch.cat(chunks)
        finally:
            self.model.train(was_training)

    def _take_snapshot(self) -> None:
        """Keep a CPU copy of the model's state dict at this epoch (and write it to the out_dir)."""
        state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        self.snapshots[self.epoch] = state
        if self.out_dir is not None:
            path = os.path.join(self.out_dir, "snapshots", f"epoch_{self.epoch:04d}.pt")
            self.files[f"snapshot_{self.epoch}"] = save_checkpoint({"epoch": self.epoch, "model": state}, path)

    # ================================================================== checkpoints
    def _signature(self) -> dict:
        return {
            "format": _FORMAT,
            "identity": self.config.identity(),
            "data": self.data.fingerprint,
            "tests": {k: v.fingerprint for k, v in self.test_data.items()},
            "model": [[k, list(v.shape), str(v.dtype)] for k, v in self.model.state_dict().items()],
            "optimizer": type(self.optimizer).__name__,
        }

    def state_dict(self) -> dict:
        """Everything needed to continue the run exactly (see :meth:`save_checkpoint`)."""
        st: dict[str, Any] = {
            "signature": self._signature(),
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step_count,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": _to_cpu(self.optimizer.state_dict()),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "host_decay": None if self.host_decay is None else self.host_decay.state_dict(),
            "snapshots": self.snapshots,
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
            "history": json.loads(json.dumps(self.history)),
            "ledger": None if self.ledger is None else self.ledger.state_dict(),
        }
        if self.batch:
            st["partial"] = {
                "pred": self.pred_buf.cpu(),
                "loss": self.loss_buf.cpu(),
                "time": self._epoch_time_done,
            }
        return st

    def save_checkpoint(self, path: str | os.PathLike | None = None) -> str:
        """Write the run's state atomically to ``path`` (default ``out_dir/checkpoint.pt``); returns it."""
        if path is None:
            if self.out_dir is None:
                raise ValueError("save_checkpoint needs a path when the trainer has no out_dir")
            path = os.path.join(self.out_dir, "checkpoint.pt")
        path = save_checkpoint(self.state_dict(), path)
        if self.out_dir is not None and os.path.dirname(os.path.abspath(path)) == os.path.abspath(self.out_dir):
            self.files["checkpoint"] = path
        return path

    def _load_state(self, st: dict, path: str) -> None:
        sig, mine = st.get("signature"), self._signature()
        if not isinstance(sig, dict) or sig.get("format") != _FORMAT:
            raise ValueError(f"resume: {path!r} is not a checkpoint of this lrdecay version")
        # a field added after the checkpoint was written compares as its default
        theirs = {**TrainConfig.default_identity(), **sig["identity"]}
        if theirs != mine["identity"]:
            diff = sorted(
                k for k in set(theirs) | set(mine["identity"])
                if theirs.get(k) != mine["identity"].get(k)
            )
            detail = ", ".join(f"{k}: {theirs.get(k)!r} vs {mine['identity'].get(k)!r}" for k in diff)
            raise ValueError(f"resume: {path!r} was written by another config ({detail})")
        for key, what in (("data", "training data"), ("tests", "test sets"), ("model", "model architecture"),
                          ("optimizer", "optimizer")):
            if sig[key] != mine[key]:
                raise ValueError(f"resume: {path!r} was written with a different {what}")
        self.model.load_state_dict(st["model"])
        self.optimizer.load_state_dict(st["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(st["scheduler"])
        if self.host_decay is not None:
            self.host_decay.load_state_dict(st["host_decay"])
        self.snapshots = dict(st.get("snapshots") or {})
        torch.set_rng_state(st["rng_cpu"])
        if self.device.type == "cuda" and st.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(st["rng_cuda"], self.device)
        self.epoch, self.batch, self.step_count = int(st["epoch"]), int(st["batch"]), int(st["step"])
        self.history = list(st["history"])
        if self.ledger is not None:
            self.ledger.load_state_dict(st["ledger"])
        if self.batch:
            self.pred_buf.copy_(st["partial"]["pred"])
            self.loss_buf.copy_(st["partial"]["loss"])
            self._epoch_time_done = float(st["partial"]["time"])

    # ================================================================== whole run
    def fit(self) -> RunResult:
        """Run the remaining epochs; write the final checkpoint, CSV and plots. On Ctrl-C: stop at the
        next step boundary, write a checkpoint (``resume=`` continues exactly), flush logs, re-raise."""
        t0 = time.perf_counter()
        cfg = self.config
        restore = None
        if threading.current_thread() is threading.main_thread():
            def on_sigint(signum, frame):
                self.request_stop()
                signal.signal(signal.SIGINT, restore)  # a second Ctrl-C interrupts at once
            restore = signal.signal(signal.SIGINT, on_sigint)
        bar = None
        try:
            if cfg.progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=cfg.epochs, initial=self.epoch, desc="train", unit="epoch", disable=None)
            while self.epoch < cfg.epochs:
                record = self.run_epoch()
                if record is None:
                    break
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{record['train_loss']:.3f}", acc=f"{record['train_acc']:.3f}")
        finally:
            if restore is not None:
                signal.signal(signal.SIGINT, restore)
            if bar is not None:
                bar.close()
        interrupted = self._stop
        self._stop = False
        try:
            self._finish()
        finally:
            self.close()
        if interrupted:
            raise KeyboardInterrupt(
                f"training stopped at epoch {self.epoch} step {self.batch}"
                + (f"; resume from {self.files['checkpoint']}" if "checkpoint" in self.files else "")
            )
        return RunResult(
            config=cfg,
            history=self.history,
            model=self.model,
            ledger=self.ledger,
            out_dir=self.out_dir,
            files=dict(self.files),
            wall_time=time.perf_counter() - t0,
            snapshots=dict(self.snapshots),
        )

    def close(self) -> None:
        """Close the log and give the output folder up to other writers (:meth:`fit` does this when it
        returns; call it when driving the run with :meth:`run_epoch` yourself)."""
        if self._log is not None:
            self._log.close()
        if self._out is not None:
            self._out.release()

    def _finish(self) -> None:
        if self.out_dir is None:
            return
        self.save_checkpoint()
        if self._log is not None:
            self._log.close()
        if self.history:
            self.files["csv"] = write_csv(self.history, os.path.join(self.out_dir, "log.csv"))
        if self.ledger is not None:
            path = os.path.join(self.out_dir, "ledger.npz")
            self.ledger.save(path)
            self.files["ledger"] = path
        if self.config.plots and self.history:
            from lrdecay.trainer.plots import plot_history

            paths = plot_history(self.history, self.out_dir, decay_epochs=decays_in(self.history))
            self.files["loss_png"], self.files["accuracy_png"] = paths


def train(
    config: TrainConfig,
    *,
    dataset: Any = None,
    test_sets: Mapping[str, Any] | None = None,
    model: nn.Module | None = None,
    out_dir: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    overwrite: bool = False,
    callbacks: Iterable[EpochCallback] = (),
) -> RunResult:
    """Train a model as ``config`` says and return a :class:`RunResult`. Arguments as for :class:`Trainer`.

    Every bad input (config values, datasets whose arrays disagree, a model whose output width is not the
    number of classes, a checkpoint from another config or a corrupt one) raises before training starts.
    """
    return Trainer(
        config,
        dataset=dataset,
        test_sets=test_sets,
        model=model,
        out_dir=out_dir,
        resume=resume,
        overwrite=overwrite,
        callbacks=callbacks,
    ).fit()


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj


def _last_linear_input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError("model has no features() method and no nn.Linear layer to take features from")
    box: list[torch.Tensor] = []
    handle = linears[-1].register_forward_hook(lambda m, inp, out: box.append(inp[0]))
    try:
        model(x)
    finally:
        handle.remove()
    return box[0]
