"""The step engine: an epoch's batches, each an index gather from a seeded device permutation.

:class:`StepLoop` walks an epoch's batches (full batches, then the tail unless ``drop_last``), from any
position (a resumed epoch starts mid-way), stopping at a step boundary when asked. On CUDA it captures
the step in a CUDA graph: the batch is read through a device counter, so one graph serves every full
batch. Subclasses give the step itself, ``_step(idx)`` for sample indices ``idx`` of shape
``(*lead, b)``: :class:`TrainStep` (one model, ``lead = ()``) here, and the sweep's stacked step
(K members, ``lead = (K,)``).

A step writes its samples' predictions and losses into per-epoch device buffers (no host sync inside a
step); the epoch's statistics read them once at its end (:mod:`lrdecay.trainer.stats`).
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import threading
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from lrdecay.trainer.graphs import GraphedStep

__all__ = ["StepLoop", "TrainStep", "subseed", "epoch_permutation", "amp_autocast"]


def amp_autocast(amp: bool, device: torch.device):
    """bfloat16 autocast when ``amp`` (no weight-cast cache, so CUDA graph capture stays valid), else a
    no-op context."""
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)


def subseed(seed: int, stream: str, k: int = 0) -> int:
    """A 63-bit seed for one random stream of a run (``"init"``, ``"order"`` + epoch), derived from the
    run's seed so that streams are independent and stable across versions."""
    digest = hashlib.blake2b(f"lrdecay:{seed}:{stream}:{k}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def epoch_permutation(seed: int, epoch: int, n: int, device: torch.device) -> torch.Tensor:
    """The order in which 0-based ``epoch`` of a run seeded ``seed`` visits its ``n`` samples (on the
    device). Seeded by ``(seed, epoch)`` alone: any epoch's order can be regenerated without the others."""
    gen = torch.Generator(device=device)
    gen.manual_seed(subseed(seed, "order", epoch))
    return torch.randperm(n, generator=gen, device=device)


class StepLoop:
    """The batches of an epoch over ``n`` samples (see the module docstring).

    Args:
        n: samples per epoch; batch_size: samples per full batch; drop_last: skip the tail batch.
        device: where the permutation and the batch counter live.
        lead: leading dims of the permutation buffer (``()`` for one run, ``(K,)`` for K stacked members).
        use_graph: capture the step in a CUDA graph (CUDA only).
    """

    def __init__(self, *, n: int, batch_size: int, drop_last: bool, device: torch.device,
                 lead: tuple[int, ...] = (), use_graph: bool = False) -> None:
        self.batch_size = batch_size
        self.n_full = n // batch_size
        self.tail = 0 if drop_last else n - self.n_full * batch_size
        self.steps_per_epoch = self.n_full + (1 if self.tail else 0)
        self.perm = torch.zeros(*lead, n, dtype=torch.int64, device=device)
        self.batch_counter = torch.zeros(1, dtype=torch.int64, device=device)
        self.use_graph = use_graph
        self._full_step = self._tail_step = None
        if use_graph:
            pool = torch.cuda.graph_pool_handle()
            self._full_step = GraphedStep(self._graph_full_step, pool=pool)
            self._tail_step = GraphedStep(self._graph_tail_step, warmup=1, pool=pool)

    def _step(self, idx: torch.Tensor) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _graph_full_step(self) -> None:
        # The batch is read through a device counter so the same captured graph serves every batch.
        B = self.batch_size
        rows = self.perm[..., : self.n_full * B].unflatten(-1, (self.n_full, B))
        self._step(rows.index_select(-2, self.batch_counter).flatten(-2))
        self.batch_counter.add_(1)

    def _graph_tail_step(self) -> None:
        self._step(self.perm[..., self.n_full * self.batch_size :])

    def run(self, batch: int, should_stop: Callable[[], bool]) -> int:
        """Run the epoch's steps from position ``batch`` to its end, or until ``should_stop()`` is true
        at a step boundary; returns the new position (steps done this epoch)."""
        B, n_full = self.batch_size, self.n_full
        if self.use_graph:
            self.batch_counter.fill_(min(batch, n_full))
        while batch < self.steps_per_epoch:
            if should_stop():
                break
            if self.use_graph:
                (self._full_step if batch < n_full else self._tail_step)()
            else:
                self._step(self.perm[..., batch * B : (batch + 1) * B] if batch < n_full else self.perm[..., n_full * B :])
            batch += 1
        return batch


class TrainStep(StepLoop):
    """The step of one model: forward, per-sample loss, backward, optimizer step, bookkeeping.

    Args:
        model, optimizer: the run's.
        data: the training set on the device (:class:`~lrdecay.trainer.inputs.DeviceData`).
        pipeline: the image pipeline for uint8 data (None for float features).
        amp: bfloat16 autocast for forward and loss.
        Others as for :class:`StepLoop`.
    """

    def __init__(self, model, optimizer, data, *, pipeline=None, amp: bool = False, batch_size: int,
                 drop_last: bool, device: torch.device, use_graph: bool = False) -> None:
        self.model, self.optimizer, self.data = model, optimizer, data
        self.pipeline, self.amp, self.device = pipeline, amp, device
        n = data.n
        self.pred_buf = torch.zeros(n, dtype=torch.int64, device=device)
        self.loss_buf = torch.zeros(n, dtype=torch.float32, device=device)
        super().__init__(n=n, batch_size=batch_size, drop_last=drop_last, device=device, use_graph=use_graph)

    def input(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """The model's input for a batch of data: uint8 images normalized, and augmented when ``idx`` (the
        batch's sample indices, which seed each image's draws with the epoch) is given; float features
        as they are."""
        if self.pipeline is None:
            return x
        return self.pipeline.normalize(x) if idx is None else self.pipeline.train_batch(x, idx)

    def autocast(self):
        """The run's autocast context (:func:`amp_autocast`)."""
        return amp_autocast(self.amp, self.device)

    def _step(self, idx: torch.Tensor) -> None:
        """One SGD step on the samples ``idx``; records their predictions and losses in place."""
        xb = self.input(self.data.x.index_select(0, idx), idx)
        yb = self.data.y.index_select(0, idx)
        with self.autocast():
            out = self.model(xb)
            losses = F.cross_entropy(out, yb, reduction="none")
        self.optimizer.zero_grad()
        losses.mean().backward()
        self.optimizer.step()
        with torch.no_grad():
            self.pred_buf.index_copy_(0, idx, out.argmax(1))
            self.loss_buf.index_copy_(0, idx, losses.detach())

    def start_epoch(self, seed: int, epoch: int, batch: int, augment_seed: Any = None) -> None:
        """Prepare 0-based ``epoch`` (resumed at step ``batch``): clear the buffers if it starts fresh,
        load its permutation, seed the augmentation, train mode."""
        if batch == 0:
            self.pred_buf.fill_(-1)
            self.loss_buf.zero_()
        self.perm.copy_(epoch_permutation(seed, epoch, self.data.n, self.device))
        if self.pipeline is not None:
            self.pipeline.set_epoch(augment_seed)
        self.model.train()


@contextlib.contextmanager
def ctrl_c_requests_stop(request_stop: Callable[[], None]) -> Iterator[None]:
    """While active (in the main thread): the first Ctrl-C calls ``request_stop()``, so a training loop
    stops at its next step boundary and can checkpoint; a second Ctrl-C interrupts at once. The previous
    SIGINT handler is restored on exit. Elsewhere (worker threads) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    restore = None

    def on_sigint(signum, frame):
        request_stop()
        signal.signal(signal.SIGINT, restore)

    restore = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, restore)
