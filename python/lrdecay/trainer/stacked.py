"""Stacked training: K runs of one architecture trained as one stacked model.

Each member is backed by an ordinary :class:`~lrdecay.trainer.Trainer` (its *member trainer*: the run's
data, test sets, ledger, logs, checkpoints, callbacks), which never runs a step itself; what the engine
asks of it is :class:`MemberTrainer`. The engine owns the stacked model
(:class:`~lrdecay.trainer.stacked_model.StackedMLP`), one :class:`~lrdecay.optim.StackedSGD`
and the per-sample buffers, and runs every member's step at once: member k's batch is drawn from its own
data in its own order, its loss and gradients involve only its own parameters, and its optimizer applies
its own hyperparameters and schedule. At each epoch end it hands each member trainer that member's
predictions, losses and weights, and the member trainer does what a solo run does at an epoch end
(statistics, ledger, evaluation, log, checkpoint) with the very same code. So:

- a member's numbers equal its solo run's: bitwise on the CPU with one torch thread (the tests check
  it), and within float32 rounding otherwise (batched matrix products may block their sums differently
  from the solo ones on other thread counts and devices; a run's later epochs then drift like any two
  float orderings of SGD do);
- a member's checkpoint is an ordinary trainer checkpoint: a stacked run resumes stacked or alone.

On CUDA (every member with ``cuda_graph=True``) the stacked step is captured in a CUDA graph and
replayed, the schedules advancing on the device.

The sweep plans which runs stack and builds, groups and records them (:mod:`lrdecay.sweep.tasks`); this
module knows nothing of sweeps.
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Protocol, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lrdecay.models import MLP
from lrdecay.trainer.config import TrainConfig
from lrdecay.trainer.inputs import DeviceData
from lrdecay.trainer.schedule import RunSchedule
from lrdecay.trainer.stacked_model import StackedMLP
from lrdecay.trainer.steps import StepLoop, ctrl_c_requests_stop, epoch_permutation

__all__ = ["StackedEngine", "MemberTrainer"]


class MemberTrainer(Protocol):
    """What the stacked engine reads and calls on each member's trainer (:class:`~lrdecay.trainer.Trainer`
    provides it): the run's settings, data, model, optimizer and schedule, its position, its epoch buffers,
    and the epoch end and run end it does itself."""

    config: TrainConfig
    device: torch.device
    data: DeviceData
    model: nn.Module
    optimizer: Any
    schedule: RunSchedule
    batch_size: int
    n_full: int
    tail: int
    steps_per_epoch: int
    epoch: int
    batch: int
    step_count: int
    epoch_time_done: float

    @property
    def pred_buf(self) -> torch.Tensor: ...

    @property
    def loss_buf(self) -> torch.Tensor: ...

    def current_lr(self) -> float: ...

    def close_epoch(self, lr: float, started: float) -> dict: ...

    def finish(self) -> None: ...


class StackedEngine(StepLoop):
    """Trains member trainers (same architecture, data shapes, batch size, epochs, position) stacked.

    Args:
        trainers: the member :class:`~lrdecay.trainer.Trainer` s (built with their data, resumed if
            needed); each must hold an :class:`lrdecay.models.MLP` and stand at the same epoch and step.
    """

    def __init__(self, trainers: Sequence[MemberTrainer]) -> None:
        # imported here, as the trainer does: lrdecay.optim pulls in torch._dynamo (seconds), which a sweep
        # that is refused, or plans and exits, should not wait for
        from lrdecay.optim import StackedSGD

        self.members = list(trainers)
        K = self.K = len(self.members)
        if K < 1:
            raise ValueError("StackedEngine needs at least one member trainer")
        first = self.members[0]
        for i, t in enumerate(self.members):
            if not isinstance(t.model, MLP):
                raise ValueError(f"member {i}: only lrdecay.models.MLP models can be stacked, got {type(t.model).__name__}")
            for attr in ("device", "batch_size", "n_full", "tail", "steps_per_epoch", "epoch", "batch"):
                if getattr(t, attr) != getattr(first, attr):
                    raise ValueError(f"member {i}: {attr} {getattr(t, attr)!r} differs from member 0's {getattr(first, attr)!r}")
            if t.config.epochs != first.config.epochs:
                raise ValueError(f"member {i}: epochs differ from member 0's")
            if tuple(t.data.x.shape) != tuple(first.data.x.shape) or t.data.n_classes != first.data.n_classes:
                raise ValueError(f"member {i}: data shape differs from member 0's")
        self.device = first.device
        self.epochs = first.config.epochs
        N = self.N = first.data.n

        # ---- data: one (K, N, ...) tensor; each member trainer's x becomes a view of it (no copy kept)
        self.X = torch.stack([t.data.x for t in self.members])
        self.Y = torch.stack([t.data.y for t in self.members])
        for k, t in enumerate(self.members):
            t.data.x = self.X[k]
            t.data.y = self.Y[k]
        self.row_offset = (torch.arange(K, device=self.device, dtype=torch.int64) * N).view(K, 1)

        # ---- model and optimizer (each member starts from its trainer's model and optimizer state)
        self.model = StackedMLP.from_models([t.model for t in self.members]).to(self.device)
        cfgs = [t.config for t in self.members]
        self.optimizer = StackedSGD(
            list(self.model.parameters()), K,
            lr=[c.lr for c in cfgs], momentum=[c.momentum for c in cfgs], dampening=[c.dampening for c in cfgs],
            weight_decay=[c.weight_decay for c in cfgs], nesterov=[c.nesterov for c in cfgs],
            schedules=[self._member_schedule(t) for t in self.members],
        )
        self._load_optimizer_state()
        # a resumed member whose decider had lowered its LR goes on at that LR, not at the config's
        for k in range(K):
            self._apply_host_lr(k)

        # ---- per-epoch device buffers
        self.pred = torch.full((K, N), -1, dtype=torch.int64, device=self.device)
        self.loss = torch.zeros((K, N), dtype=torch.float32, device=self.device)
        if first.batch:  # resumed mid-epoch: the member trainers restored their partial buffers
            for k, t in enumerate(self.members):
                self.pred[k].copy_(t.pred_buf)
                self.loss[k].copy_(t.loss_buf)
        # a graph bakes the host-set LRs in as of capture: members with a host-side schedule run eagerly
        use_graph = (self.device.type == "cuda" and all(c.cuda_graph for c in cfgs)
                     and not any(c.host_schedule for c in cfgs))
        super().__init__(n=N, batch_size=first.batch_size, drop_last=first.config.drop_last, device=self.device,
                         lead=(K,), use_graph=use_graph)
        self.epoch, self.batch = first.epoch, first.batch
        self.step_count = first.step_count
        self._stop = False

    # ------------------------------------------------------------------ setup helpers
    def _member_schedule(self, t):
        """A member's device schedule: its config's one schedule definition, counted in steps (None for a
        host-side schedule: its trainer's decider sets the member's LR at epoch ends)."""
        return t.schedule.device(t.steps_per_epoch)

    def _load_optimizer_state(self) -> None:
        """Momentum buffers and the step count from the member trainers (a resumed run)."""
        first = self.members[0]
        step = int(first.step_count)
        if step == 0:
            return
        self.optimizer.set_step_count(step, momentum_initialized=True)
        for k, t in enumerate(self.members):
            bufs = self.optimizer.member_momentum(k)
            if bufs is None:
                continue
            params = [p for p in t.model.parameters() if p.requires_grad]
            with torch.no_grad():
                for view, p in zip(bufs, params):
                    src = t.optimizer.state.get(p, {}).get("momentum_buffer")
                    if src is None:
                        raise ValueError(f"member {k}: its checkpoint has no momentum buffer after {step} steps")
                    view.copy_(src)

    # ------------------------------------------------------------------ handing state to the member trainers
    def _sync_model(self, k: int) -> None:
        self.model.store_member(k, self.members[k].model)

    def _sync_optimizer(self, k: int) -> None:
        """The member's momentum buffers and step position into its trainer's optimizer (for its checkpoint
        and its logged LR), in the format that optimizer itself writes."""
        t = self.members[k]
        opt = t.optimizer
        sd = opt.state_dict()
        bufs = self.optimizer.member_momentum(k)
        params = [p for p in t.model.parameters() if p.requires_grad]
        state = {}
        if bufs is not None:
            for i, (view, _p) in enumerate(zip(bufs, params)):
                state[i] = {"momentum_buffer": view.detach().clone()}
        sd = {"state": state, "param_groups": sd["param_groups"]}
        if "step_count" in sd["param_groups"][0]:
            for g in sd["param_groups"]:
                g["step_count"] = self.step_count
        opt.load_state_dict(sd)

    def _sync_member(self, k: int, *, optimizer: bool) -> None:
        t = self.members[k]
        self._sync_model(k)
        if optimizer:
            self._sync_optimizer(k)
        t.step_count = self.step_count
        t.batch = self.batch

    # ------------------------------------------------------------------ the step
    def _step(self, idx: torch.Tensor) -> None:
        """One step of every member on its samples ``idx[k]`` (K × b); records predictions and losses."""
        K = self.K
        b = idx.shape[1]
        flat = (idx + self.row_offset).view(-1)
        xb = self.X.view(K * self.N, *self.X.shape[2:]).index_select(0, flat).view(K, b, *self.X.shape[2:])
        yb = self.Y.view(-1).index_select(0, flat)
        out = self.model(xb)
        losses = F.cross_entropy(out.reshape(K * b, -1), yb, reduction="none")
        self.optimizer.zero_grad()
        # each member's loss is its own batch mean; the sum keeps the members' gradients apart
        losses.view(K, b).mean(1).sum().backward()
        self.optimizer.step()
        with torch.no_grad():
            self.pred.view(-1).index_copy_(0, flat, out.reshape(K * b, -1).argmax(1))
            self.loss.view(-1).index_copy_(0, flat, losses.detach())

    def request_stop(self) -> None:
        """Stop at the next step boundary (Ctrl-C)."""
        self._stop = True

    def _run_steps(self) -> bool:
        if self.batch == 0:
            self.pred.fill_(-1)
            self.loss.zero_()
        for k, t in enumerate(self.members):
            self.perm[k].copy_(epoch_permutation(t.config.seed, self.epoch, self.N, self.device))
        self.model.train()
        done = self.run(self.batch, lambda: self._stop)
        self.step_count += done - self.batch
        self.batch = done
        if self.use_graph:
            self.optimizer.sync_step_count()
        return done == self.steps_per_epoch

    # ------------------------------------------------------------------ epochs
    def run_epoch(self) -> bool:
        """Train one epoch of every member and close it in each member trainer; False if stopped."""
        t0 = time.perf_counter()
        lrs = [t.current_lr() for t in self.members]  # read from each member trainer's (synced) optimizer
        if not self._run_steps():
            spent = time.perf_counter() - t0
            for t in self.members:
                t.epoch_time_done += spent
            return False
        for k, t in enumerate(self.members):
            t.pred_buf.copy_(self.pred[k])
            t.loss_buf.copy_(self.loss[k])
            self._sync_member(k, optimizer=True)
            with warnings.catch_warnings():  # its torch scheduler steps an optimizer that never stepped itself
                warnings.filterwarnings("ignore", message="Detected call of")
                t.close_epoch(lrs[k], t0)
            self._apply_host_lr(k)
        self.epoch += 1
        self.batch = 0
        return True

    def _apply_host_lr(self, k: int) -> None:
        """A member whose LR its trainer sets on the host (no device schedule) follows that LR."""
        if self.optimizer.schedules[k] is None:
            lr = float(self.members[k].optimizer.param_groups[0]["lr"])
            if lr != self.optimizer.lr_of(k):
                self.optimizer.set_lr(k, lr)

    def fit(self) -> bool:
        """Run the remaining epochs; True when finished, False when stopped (Ctrl-C or
        :meth:`request_stop`), in which case every member trainer has written a checkpoint at the exact
        step where it stopped."""
        with ctrl_c_requests_stop(self.request_stop):
            while self.epoch < self.epochs:
                if not self.run_epoch():
                    break
        stopped = self.epoch < self.epochs
        for k, t in enumerate(self.members):
            if stopped:
                t.pred_buf.copy_(self.pred[k])
                t.loss_buf.copy_(self.loss[k])
            self._sync_member(k, optimizer=True)
            t.finish()
        return not stopped
