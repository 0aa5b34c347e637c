"""The training loop: ``Trainer`` (epoch by epoch) and ``train`` (a whole run).

Data lives on the device for the whole run; each epoch draws a seeded permutation on the device and a
batch is an index gather from it. The step writes each sample's prediction and loss into per-epoch device
buffers (no host sync inside the step); once per epoch those buffers are copied to the host, turned into
the epoch's statistics and fed to the ledger. On CUDA with the fused optimizer the whole step is captured
in a CUDA graph and replayed.

The trainer orchestrates pieces that live one module each: its construction (device, default data,
initial model, optimizer: :mod:`~lrdecay.trainer.build`), the step engine (:mod:`~lrdecay.trainer.steps`),
the epoch statistics and ledger ingest (:mod:`~lrdecay.trainer.stats`), evaluation
(:mod:`~lrdecay.trainer.evaluation`), the checkpoint state (:mod:`~lrdecay.trainer.state`) and the
schedule (:mod:`~lrdecay.trainer.schedule`). :meth:`Trainer.close_epoch` is the end of an epoch whose
steps ran, here or elsewhere (the stacked engine, :mod:`~lrdecay.trainer.stacked`, runs its members'
steps together, then closes each member's epoch in its own trainer).
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from lrdecay._outdir import OutputDir, OutputDirBusy, OutputDirError
from lrdecay.trainer import evaluation, state
from lrdecay.trainer.build import build_optimizer, check_model, default_datasets, initial_model, resolve_device
from lrdecay.trainer.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint, snapshot_path
from lrdecay.trainer.config import DATA_FIELDS, TrainConfig
from lrdecay.trainer.image_inputs import check_image_sets, make_pipeline
from lrdecay.trainer.inputs import DeviceData, as_device_data, split_validation
from lrdecay.trainer.logs import JsonlWriter, write_csv
from lrdecay.trainer.record import EpochRecord, RunResult, decays_in, diverged_at
from lrdecay.trainer.stats import build_ledger, epoch_statistics
from lrdecay.trainer.steps import TrainStep, amp_autocast, ctrl_c_requests_stop, epoch_permutation, subseed

__all__ = ["Trainer", "train", "RunResult", "subseed", "decays_in", "diverged_at", "DivergedWarning"]

#: What a run writes into its out_dir (glob patterns): a folder from before output folders were marked
#: may be overwritten if it holds only these.
RUN_OUTPUTS = ("config.json", "log.jsonl", "log.csv", "*.pt", "*.pt.unreadable", "ledger.npz", "*.png", ".*.tmp",
               "snapshots")
EpochCallback = Callable[["Trainer", EpochRecord], None]


class DivergedWarning(RuntimeWarning):
    """A run's training loss turned non-finite (NaN or inf): it diverged, usually from too large an LR.
    The run trains on to its last epoch and writes all its files; the numbers after that epoch are noise."""


@contextlib.contextmanager
def _model_fits(cfg: TrainConfig):
    """A model too large for memory is a bad width / depth: ValueError naming them, not an allocator
    traceback."""
    try:
        yield
    except (MemoryError, RuntimeError) as exc:
        if isinstance(exc, RuntimeError) and "alloc" not in str(exc).lower():
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"the model ({cfg.model}, width {cfg.width}, depth {cfg.depth}) does not fit in "
                         f"memory: {first}") from None


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

    Its run state is public: ``epoch`` (completed epochs), ``batch`` (steps done in the current one),
    ``step_count``, ``history``, ``resumed_from`` (the epoch it resumed from; 0 when fresh),
    ``epoch_time_done`` (seconds already spent on the unfinished epoch). Another step engine may run the
    steps and then hand the epoch to :meth:`close_epoch` and the run's end to :meth:`finish`: the stacked
    engine does (:class:`~lrdecay.trainer.stacked.MemberTrainer` is what it uses).
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
        self.device = resolve_device(cfg.device)
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
        # resuming into the checkpoint's own folder continues the run there; into another folder it starts a
        # new run there, so that folder must be new or empty (a run in it is never silently replaced)
        in_place = resume is not None and out_dir is not None and \
            os.path.realpath(os.path.dirname(os.path.abspath(resume))) == os.path.realpath(os.fspath(out_dir))
        ckpt = load_checkpoint(resume) if resume is not None else None  # corrupt → error before any work

        # ---- data, once on the device
        if dataset is None:
            dataset, default_tests = self.build_datasets(cfg)
            if test_sets is None:
                test_sets = default_tests
        self.data: DeviceData = as_device_data(dataset, self.device, name="dataset")
        #: the device data as built or given, before the validation split (what another run of the same
        #: data key may share: it splits it again, the same way)
        self.built_data: DeviceData = self.data
        # the validation split is carved before anything reads the training set (steps, ledger, model check)
        self.val_data: DeviceData | None = None
        if cfg.val_fraction > 0:
            self.data, self.val_data = split_validation(self.data, cfg.val_fraction, subseed(cfg.seed, "val"))
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
        self.schedule = cfg.run_schedule()

        # ---- model (seeded init on the CPU, then moved: same init on every device)
        if model is None:
            with _model_fits(cfg):
                model = initial_model(cfg, self.data)
        self.model = model.to(self.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        check_model(self.model, self.data, prepare=self._prepare, autocast=self._autocast,
                    batch_size=self.batch_size, tail=self.tail)

        # ---- optimizer + schedule
        self.optimizer, self.scheduler, self.host_decay = build_optimizer(cfg, self.model, self.schedule,
                                                                          self.steps_per_epoch)
        # a graph bakes the LR in: host-side schedules change it from the host, so they run eagerly
        self.use_graph = (self.device.type == "cuda" and cfg.cuda_graph and cfg.optimizer == "fused"
                          and not cfg.host_schedule)

        # ---- the step engine, with its per-epoch device buffers (written inside the step, read once per epoch)
        self.steps = TrainStep(self.model, self.optimizer, self.data, pipeline=self.pipeline, amp=cfg.amp,
                               batch_size=self.batch_size, drop_last=cfg.drop_last, device=self.device,
                               use_graph=self.use_graph)

        # ---- ledger
        self.ledger = build_ledger(self.data) if cfg.ledger else None

        # ---- run state
        self.epoch = 0  # completed epochs
        self.batch = 0  # steps done in the current (unfinished) epoch
        self.step_count = 0
        self.history: list[EpochRecord] = []
        self.snapshots: dict[int, dict] = {}
        self.epoch_time_done = 0.0  # seconds spent on the unfinished epoch so far (before a stop or resume)
        self._stop = False
        self._saved_at: tuple[int, int] | None = None  # (epoch, batch) of the last out_dir checkpoint
        self.out_dir = None if out_dir is None else os.fspath(out_dir)
        self.files: dict[str, str] = {}
        self._log: JsonlWriter | None = None
        self._out: OutputDir | None = None
        if ckpt is not None:
            self._load_state(ckpt, os.fspath(resume))
        self.resumed_from = self.epoch  # the completed epochs this trainer started from (0: a fresh run)
        if self.out_dir is not None:
            # Last, after every check: a bad argument never leaves a folder behind.
            try:
                self._out = OutputDir(self.out_dir, kind="train", resume=in_place, overwrite=overwrite,
                                      outputs=RUN_OUTPUTS)
            except OutputDirError as exc:
                if ckpt is None or in_place or isinstance(exc, OutputDirBusy):
                    raise
                raise OutputDirError(f"{exc} (resuming {resume} into another folder starts a new run there: "
                                     f"give an empty or new folder)") from None
            self.files["config"] = os.path.join(self.out_dir, "config.json")
            cfg.to_json(self.files["config"])
            self.files["log"] = os.path.join(self.out_dir, "log.jsonl")
            self._log = JsonlWriter(self.files["log"], self.history)

    # ================================================================== construction helpers
    #: The config fields :meth:`build_datasets` reads (declared on TrainConfig's fields): runs equal in
    #: these train on the same data.
    DATA_FIELDS = DATA_FIELDS

    @staticmethod
    def data_key(cfg: TrainConfig) -> tuple:
        """Equal for configs whose :meth:`build_datasets` builds the same data (one build can serve both)."""
        return tuple(repr(getattr(cfg, f)) for f in Trainer.DATA_FIELDS)

    @staticmethod
    def build_datasets(cfg: TrainConfig) -> tuple[Any, dict[str, Any]]:
        """The training set and the ``{name: test set}`` a run of ``cfg`` builds when given no dataset
        (:func:`~lrdecay.trainer.build.default_datasets`)."""
        return default_datasets(cfg)

    # ================================================================== the step
    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of data as the model's input outside training steps (images normalized)."""
        return x if self.pipeline is None else self.pipeline.normalize(x)

    def _autocast(self):
        """The run's autocast context (bfloat16 with ``amp=True``)."""
        return amp_autocast(self.config.amp, self.device)

    @property
    def pred_buf(self) -> torch.Tensor:
        """Per-sample predictions of the current epoch (-1: not presented yet), on the device."""
        return self.steps.pred_buf

    @property
    def loss_buf(self) -> torch.Tensor:
        """Per-sample losses of the current epoch, on the device."""
        return self.steps.loss_buf

    def _step(self, idx: torch.Tensor) -> None:
        """One SGD step on the samples ``idx`` (see :class:`~lrdecay.trainer.steps.TrainStep`)."""
        self.steps._step(idx)

    def epoch_permutation(self, epoch: int) -> torch.Tensor:
        """The order in which 0-based ``epoch`` visits the training samples (on the device).

        Seeded by ``(config.seed, epoch)`` alone, so any epoch's order can be regenerated (resume,
        tests) without replaying the ones before it.
        """
        return epoch_permutation(self.config.seed, epoch, self.data.n, self.device)

    def current_lr(self) -> float:
        """The LR the next step uses, read from the optimizer (after graph replays its device step counter
        is read first: one host sync)."""
        if self.use_graph and hasattr(self.optimizer, "sync_step_count"):
            self.optimizer.sync_step_count()
        return float(self.optimizer.param_groups[0]["lr"])

    # ================================================================== epochs
    def request_stop(self) -> None:
        """Ask the running epoch to stop at the next step boundary (what Ctrl-C does)."""
        self._stop = True

    def _run_steps(self) -> bool:
        """Run the rest of the current epoch's steps; False if stopped early by :meth:`request_stop`."""
        self.steps.start_epoch(self.config.seed, self.epoch, self.batch,
                               subseed(self.config.seed, "augment", self.epoch))
        done = self.steps.run(self.batch, lambda: self._stop)
        self.step_count += done - self.batch
        self.batch = done
        return done == self.steps_per_epoch

    def run_epoch(self) -> EpochRecord | None:
        """Train one epoch (or the rest of an interrupted one), evaluate if due, log; returns the
        epoch's record, or None if :meth:`request_stop` stopped it mid-epoch (state stays consistent:
        :meth:`save_checkpoint` then resumes from that exact step)."""
        if self.epoch >= self.config.epochs:
            raise RuntimeError(f"the run is complete ({self.config.epochs} epochs)")
        t0 = time.perf_counter()
        lr = self.current_lr()
        if not self._run_steps():
            self.epoch_time_done += time.perf_counter() - t0
            return None
        return self.close_epoch(lr, t0)

    def close_epoch(self, lr: float, started: float) -> EpochRecord:
        """End the epoch whose steps ran (``pred_buf`` / ``loss_buf`` hold its predictions and losses; the
        model and optimizer its result): statistics and ledger, schedulers, evaluation when due, the record,
        snapshot, callbacks, log and checkpoint. ``lr`` is the LR the epoch used; ``started`` the
        ``time.perf_counter()`` at its start. Returns the record."""
        record: EpochRecord = {"epoch": self.epoch + 1, "step": self.step_count, "lr": lr}
        record.update(self._epoch_statistics())
        if self.val_data is not None:  # every epoch: a host-side schedule may read it at this epoch's end
            record["val"] = self.evaluate({"val": self.val_data})["val"]
            record["val_error"] = 1.0 - record["val"]["acc"]
        if not np.isfinite(record["train_loss"]) and diverged_at(self.history) is None:
            warnings.warn(f"the training loss turned non-finite ({record['train_loss']}) in epoch {record['epoch']}: "
                          f"the run diverged (lr {lr:g} too large?); it trains on and writes its files, but its "
                          f"numbers from this epoch on are meaningless", DivergedWarning, stacklevel=2)
        if self.scheduler is not None:
            self.scheduler.step()
        if self.host_decay is not None:
            self.schedule.step_host_decay(self.host_decay, record)
        self.epoch += 1
        self.batch = 0
        cfg = self.config
        if self.epoch % cfg.eval_every == 0 or self.epoch == cfg.epochs:
            if self.test_data:
                record["test"] = self.evaluate()
            if cfg.eval_train:
                record["train_eval"] = self.evaluate_train()
        record["time"] = self.epoch_time_done + (time.perf_counter() - started)
        self.epoch_time_done = 0.0
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
        return epoch_statistics(self.data, self.pred_buf, self.loss_buf, self.ledger)

    def evaluate_train(self) -> dict:
        """The current model (eval mode: BatchNorm running statistics, no parameter change) on the whole
        training set, against its observed labels.

        Unlike the epoch's own statistics, which come from predictions made during the epoch in training
        mode while the weights move, this is one fixed model: the memorization measure to read at a stage
        end. Returns ``{"acc", "loss", "acc_group", "acc_clean", "memorized", "predicted_clean"}`` (keys
        present as the dataset allows).
        """
        return evaluation.evaluate_train(self.model, self.data, prepare=self._prepare, autocast=self._autocast,
                                         batch_size=self.eval_batch_size)

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
        return evaluation.evaluate_sets(self.model, sets, prepare=self._prepare, autocast=self._autocast,
                                        batch_size=self.eval_batch_size)

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
        return evaluation.extract_features(self.model, x, prepare=self._prepare, autocast=self._autocast,
                                           batch_size=batch_size)

    def _take_snapshot(self) -> None:
        """Keep a CPU copy of the model's state dict at this epoch (and write it to the out_dir)."""
        state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        self.snapshots[self.epoch] = state
        if self.out_dir is not None:
            path = snapshot_path(self.out_dir, self.epoch)
            self.files[f"snapshot_{self.epoch}"] = save_checkpoint({"epoch": self.epoch, "model": state}, path)

    # ================================================================== checkpoints
    def state_dict(self) -> dict:
        """Everything needed to continue the run exactly (see :meth:`save_checkpoint`)."""
        return state.state_dict(self)

    def save_checkpoint(self, path: str | os.PathLike | None = None) -> str:
        """Write the run's state atomically to ``path`` (default ``out_dir/checkpoint.pt``); returns it."""
        if path is None:
            if self.out_dir is None:
                raise ValueError("save_checkpoint needs a path when the trainer has no out_dir")
            path = os.path.join(self.out_dir, "checkpoint.pt")
        path = save_checkpoint(self.state_dict(), path)
        if self.out_dir is not None and os.path.abspath(path) == os.path.abspath(os.path.join(self.out_dir, "checkpoint.pt")):
            self._saved_at = (self.epoch, self.batch)
        if self.out_dir is not None and os.path.dirname(os.path.abspath(path)) == os.path.abspath(self.out_dir):
            self.files["checkpoint"] = path
        return path

    def _load_state(self, st: dict, path: str) -> None:
        state.load_state(self, st, path)

    # ================================================================== whole run
    def fit(self) -> RunResult:
        """Run the remaining epochs; write the final checkpoint, CSV and plots. On Ctrl-C: stop at the
        next step boundary, write a checkpoint (``resume=`` continues exactly), flush logs, re-raise."""
        t0 = time.perf_counter()
        cfg = self.config
        bar = None
        try:
            if cfg.progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=cfg.epochs, initial=self.epoch, desc="train", unit="epoch", disable=None)
            with ctrl_c_requests_stop(self.request_stop):
                while self.epoch < cfg.epochs:
                    record = self.run_epoch()
                    if record is None:
                        break
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{record['train_loss']:.3f}", acc=f"{record['train_acc']:.3f}")
        finally:
            if bar is not None:
                bar.close()
        interrupted = self._stop
        self._stop = False
        try:
            self.finish()
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

    def finish(self) -> None:
        """Write what ends a run into its out_dir: the checkpoint at the current position (unless written
        there already), the CSV log, the ledger and the plots (:meth:`fit` calls it; the stacked engine
        calls it for its member trainers)."""
        if self.out_dir is None:
            return
        # the state only moves with (epoch, batch): a checkpoint written there already (checkpoint_every
        # dividing the epochs, a sweep's time-based one) is this one
        if self._saved_at != (self.epoch, self.batch):
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
