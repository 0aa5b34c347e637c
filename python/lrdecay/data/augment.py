"""The device-side input pipeline for uint8 images: random crop with zero padding, horizontal flip, and
normalization, inside the training step.

Images stay on the device as uint8 for the whole run; a step gathers its batch, augments it and turns it
into normalized float32 there, with no host work and no host sync, so the step can be captured in a CUDA
graph and replayed.

Randomness is counter-based, not a generator's state: image ``i`` in an epoch with key ``k`` gets its
crop offsets and flip from a 32-bit integer hash of ``(k, i)``. So an image's augmentation in an epoch
depends only on the run's seed, the epoch and the image, not on the batch size, the order of the batches,
the device, eager vs graph, or whether the run was stopped and resumed mid-epoch; and it is the same on
CPU and CUDA. The hash works on int64 tensors holding 32-bit values with multipliers below 2**27, so no
product overflows and every device computes the same bits.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["ImagePipeline", "AUGMENTS", "mix32", "augment_draws"]

#: ``"none"``, ``"crop"`` (random crop of the zero-padded image), ``"flip"`` (horizontal, p = 1/2),
#: ``"crop+flip"`` (the standard CIFAR augmentation).
AUGMENTS = ("none", "crop", "flip", "crop+flip")

_M32 = 0xFFFFFFFF
_MUL = 0x45D9F3B  # < 2**27: (x < 2**32) * _MUL < 2**59 fits int64
_GOLD = 0x9E3779B9


def mix32(x: torch.Tensor) -> torch.Tensor:
    """A bijective 32-bit integer hash of int64 ``x`` holding values in ``[0, 2**32)`` (same range out)."""
    x = ((x >> 16) ^ x) * _MUL & _M32
    x = ((x >> 16) ^ x) * _MUL & _M32
    return (x >> 16) ^ x


def augment_draws(idx: torch.Tensor, key: torch.Tensor, n: int) -> list[torch.Tensor]:
    """``n`` independent 32-bit random values per sample index in ``idx`` (int64), for the epoch ``key``
    (an int64 tensor of two 32-bit halves). Value j of sample i is
    ``mix32(mix32((i mod 2**32) ^ key[0]) ^ mix32((key[1] + j * 0x9E3779B9) mod 2**32))``."""
    base = mix32((idx & _M32) ^ key[0])
    return [mix32(base ^ mix32((key[1] + j * _GOLD) & _M32)) for j in range(n)]


class ImagePipeline:
    """Turn uint8 image batches (B, C, H, W) on the device into the model's float32 input.

    Training batches: ``train_batch(x_u8, idx)`` = augment (per-image crop offsets and flip drawn from
    ``idx`` and the epoch key set by :meth:`set_epoch`) then normalize. Evaluation batches:
    ``normalize(x_u8)``.

    Normalization is ``x * scale + shift`` in float32 with ``scale = 1 / (255 std)`` and
    ``shift = -mean / std`` per channel, i.e. ``(x / 255 - mean) / std`` up to rounding.

    Crop: the image is padded with ``padding`` zero pixels on each side (black, as torchvision's
    ``RandomCrop(size, padding)`` pads before ``ToTensor``) and an H x W window is taken at offsets
    ``dy, dx`` uniform in ``[0, 2 * padding]``; flip: the window is mirrored left-right with
    probability 1/2. Offsets ``dy = r0 mod (2p + 1)``, ``dx = r1 mod (2p + 1)``, flip ``= bit 16 of r2``,
    with ``r0, r1, r2`` from :func:`augment_draws`.

    Args:
        mean, std: per-channel statistics of ``x / 255`` (the training set's; every split uses them).
        augment: one of :data:`AUGMENTS`.
        padding: crop padding in pixels (>= 0; used by ``crop`` and ``crop+flip``).
        channels_last: return the float batch in ``torch.channels_last`` memory format.
        device: where the batches live.
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        augment: str = "none",
        padding: int = 4,
        channels_last: bool = False,
        device: torch.device | str = "cpu",
    ) -> None:
        if not isinstance(augment, str) or augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {list(AUGMENTS)}, got {augment!r}")
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding must be an int >= 0, got {padding!r}")
        mean_t = torch.as_tensor(list(mean), dtype=torch.float64)
        std_t = torch.as_tensor(list(std), dtype=torch.float64)
        if mean_t.dim() != 1 or mean_t.numel() < 1 or std_t.shape != mean_t.shape:
            raise ValueError(f"mean and std must be equal-length per-channel sequences, got {list(mean)} and {list(std)}")
        if not bool((std_t > 0).all()) or not bool(torch.isfinite(mean_t).all() & torch.isfinite(std_t).all()):
            raise ValueError(f"std must be finite and > 0 per channel (and mean finite), got {list(std)}")
        self.device = torch.device(device)
        self.augment = augment
        self.crop = augment in ("crop", "crop+flip")
        self.flip = augment in ("flip", "crop+flip")
        self.padding = padding if self.crop else 0
        self.channels_last = bool(channels_last)
        c = mean_t.numel()
        self.scale = (1.0 / (255.0 * std_t)).to(torch.float32).view(1, c, 1, 1).to(self.device)
        self.shift = (-mean_t / std_t).to(torch.float32).view(1, c, 1, 1).to(self.device)
        # the epoch's key, read inside the step (a fixed address: graph replays see the new key)
        self.key = torch.zeros(2, dtype=torch.int64, device=self.device)

    @property
    def augments(self) -> bool:
        """Whether training batches are augmented at all."""
        return self.crop or self.flip

    def set_epoch(self, seed: int) -> None:
        """Set the key of the next training batches (a 64-bit seed; the trainer derives it from the run's
        seed and the epoch). Call outside a captured step: it copies two integers to the device."""
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
        self.key.copy_(torch.tensor([seed & _M32, (seed >> 32) & _M32], dtype=torch.int64))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) → float32 ``x * scale + shift`` (channels_last if configured)."""
        if x.dtype != torch.uint8:
            raise TypeError(f"ImagePipeline takes uint8 images, got {x.dtype}")
        out = x.to(torch.float32).mul_(self.scale).add_(self.shift)
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def augment_batch(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """The augmented uint8 batch: image ``b`` cropped/flipped as drawn for sample index ``idx[b]``."""
        if not self.augments:
            return x
        b, c, h, w = x.shape
        p = self.padding
        r = augment_draws(idx, self.key, 3)
        span = 2 * p + 1
        dy, dx = r[0] % span, r[1] % span
        cols = torch.arange(w, device=x.device)
        if self.flip:
            flip = ((r[2] >> 16) & 1).bool()
            cols = torch.where(flip[:, None], (w - 1) - cols, cols)  # (B, W)
        else:
            cols = cols.expand(b, w)
        rows = dy[:, None] + torch.arange(h, device=x.device)  # (B, H), in padded coordinates
        cols = dx[:, None] + cols
        src = F.pad(x, (p, p, p, p)) if p else x
        hp, wp = h + 2 * p, w + 2 * p
        index = (rows[:, :, None] * wp + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
        return src.reshape(b, c, hp * wp).gather(2, index).view(b, c, h, w)

    def train_batch(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Augment (per :meth:`augment_batch`) then normalize a uint8 training batch."""
        return self.normalize(self.augment_batch(x, idx))
