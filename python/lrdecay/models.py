"""Models the experiments train: an MLP with optional BatchNorm, a small CNN for 28 x 28 images on a CPU,
CIFAR-style ResNets (20/56 layers) and a ResNet-18 for 32 x 32 images.

Every model here has the same shape: ``features(x)`` returns the penultimate activations and ``head`` is
the final ``nn.Linear``, so ``forward(x) == head(features(x))``. The transfer experiment relies on that
split (linear probes on frozen features, fine-tuning the last layer).

``make_model(name, in_features=..., n_classes=...)`` builds one by name; the trainer calls it with the
dataset's input width and class count.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lrdecay._validate import check_int

__all__ = ["MLP", "SmallCNN", "CifarResNet", "ResNet18", "make_model", "MODEL_NAMES", "ACTIVATIONS"]

ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}

MODEL_NAMES = ("mlp", "resnet20", "resnet56", "resnet18", "cnn")


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    return check_int(name, value, minimum)


def _activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except (KeyError, TypeError):
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}") from None


class MLP(nn.Module):
    """Multi-layer perceptron: ``depth`` hidden layers of ``width`` units, then a linear head.

    With ``batchnorm=True`` each hidden linear layer is followed by ``BatchNorm1d`` before the activation.
    That makes the network scale-invariant in its hidden weights, which (with weight decay and a large
    learning rate) is what keeps SGD noise high enough to show the paper's effects on pattern datasets
    (see docs/PROTOTYPE.md: without it, the large LR memorized noisy labels *more*).

    Args:
        in_features: input width D (inputs are flattened to N × D).
        n_classes: output width.
        width: hidden units per layer (>= 1).
        depth: number of hidden layers (>= 1).
        activation: one of ``relu``, ``gelu``, ``tanh``, ``silu``.
        batchnorm: insert BatchNorm1d after each hidden linear layer.
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        *,
        width: int = 512,
        depth: int = 3,
        activation: str = "relu",
        batchnorm: bool = True,
    ) -> None:
        super().__init__()
        _check_positive_int("in_features", in_features)
        _check_positive_int("n_classes", n_classes, 2)
        _check_positive_int("width", width)
        _check_positive_int("depth", depth)
        _activation(activation)
        layers: list[nn.Module] = []
        d = in_features
        for _ in range(depth):
            # The bias is redundant right before BatchNorm (BN subtracts the mean).
            layers.append(nn.Linear(d, width, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(_activation(activation))
            d = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(d, n_classes)
        self.in_features = in_features
        self.n_classes = n_classes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (N × width)."""
        return self.body(x.reshape(x.shape[0], -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class SmallCNN(nn.Module):
    """Three 3 x 3 conv stages (``width``, ``2 width``, ``4 width`` channels, each conv → BatchNorm → ReLU,
    the first two followed by 2 x 2 max-pooling), global average pooling, a linear head.

    Why this shape: it is sized for MNIST-like 28 x 28 images on a 2-core CPU. At ``width=16`` it costs about
    2 M multiply-adds per image (28² x 16 x 9 + 14² x 32 x 16 x 9 + 7² x 64 x 32 x 9), an order of magnitude
    fewer than a ResNet-20's 41 M, so an epoch of 60,000 images takes seconds, and it reaches the 0.90-0.92
    test accuracy small CNNs get on Fashion-MNIST. Pooling early (28 → 14 → 7) is where the saving comes
    from; BatchNorm after every conv makes the conv weights scale-invariant, which with weight decay keeps the
    effective learning rate (and so SGD's noise) large, as in the MLP and the ResNets: the regime the paper's
    effects live in. No residual connections: at three conv layers they buy nothing.

    Args:
        n_classes: output width.
        input_shape: (C, H, W) of one image; any H, W >= 1 (pooling floors odd sizes, at least 1).
        width: channels of the first stage (>= 1).
    """

    def __init__(self, n_classes: int, *, input_shape: Sequence[int] = (1, 28, 28), width: int = 16) -> None:
        super().__init__()
        _check_positive_int("n_classes", n_classes, 2)
        _check_positive_int("width", width)
        self.input_shape = _check_image_shape(input_shape)
        c, h, w = self.input_shape
        chans = (width, 2 * width, 4 * width)
        layers: list[nn.Module] = []
        c_in = c
        for i, c_out in enumerate(chans):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            if i < 2 and min(h, w) >= 2:  # keep at least one pixel on tiny inputs
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, n_classes)
        self.n_classes = n_classes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (N × 4 width), globally average-pooled."""
        x = x.reshape(x.shape[0], *self.input_shape)
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _BasicBlock(nn.Module):
    """3×3 conv–BN–ReLU–3×3 conv–BN plus shortcut (He et al. 2016, CIFAR option A)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride = stride
        self.pad = c_out - c_in

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        # Option A: parameter-free subsampling + zero channel padding, as in the paper's CIFAR ResNets
        # (keeps ResNet-56 at 0.85 M parameters in 167 tensors).
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self._shortcut(x))


class CifarResNet(nn.Module):
    """CIFAR-style ResNet of depth 6n+2 (ResNet-20: n=3, ResNet-56: n=9), widths 16/32/64.

    Flat inputs (N × D) are reshaped to ``input_shape`` = (C, H, W); image inputs (N × C × H × W) pass
    through unchanged.

    Args:
        depth: 6n + 2 for some n >= 1 (20, 32, 44, 56, 110, ...).
        n_classes: output width.
        input_shape: (C, H, W) of one sample.
        width: channels of the first stage (16 in He et al.); stages use width, 2·width, 4·width.
    """

    def __init__(
        self,
        depth: int,
        n_classes: int,
        *,
        input_shape: Sequence[int] = (3, 32, 32),
        width: int = 16,
    ) -> None:
        super().__init__()
        _check_positive_int("depth", depth, 8)
        if (depth - 2) % 6 != 0:
            raise ValueError(f"depth must be 6n+2 for an int n >= 1 (20, 32, 44, 56, ...), got {depth}")
        _check_positive_int("n_classes", n_classes, 2)
        _check_positive_int("width", width)
        input_shape = _check_image_shape(input_shape)
        n = (depth - 2) // 6
        self.input_shape = input_shape
        self.conv = nn.Conv2d(input_shape[0], width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        blocks: list[nn.Module] = []
        c = width
        for stage, c_out in enumerate((width, 2 * width, 4 * width)):
            for i in range(n):
                stride = 2 if (stage > 0 and i == 0) else 1
                blocks.append(_BasicBlock(c, c_out, stride))
                c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c, n_classes)
        self.n_classes = n_classes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled activations of the last stage (N × 4·width)."""
        if x.dim() == 2:
            x = x.reshape(x.shape[0], *self.input_shape)
        out = F.relu(self.bn(self.conv(x)))
        out = self.blocks(out)
        return out.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _ProjectionBlock(nn.Module):
    """ResNet basic block with a 1×1 conv + BN projection shortcut when the shape changes (option B)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for small images (the common CIFAR variant): a 3×3 stride-1 stem without max-pooling,
    four stages of two basic blocks with widths w, 2w, 4w, 8w (w = 64: 11.17 M parameters for 10
    classes), strides 1, 2, 2, 2, projection shortcuts, global average pooling, a linear head.

    Flat inputs (N × D) are reshaped to ``input_shape`` = (C, H, W); any H, W >= 1 works (the pooling is
    global), 32 × 32 is what it is sized for.

    Args:
        n_classes: output width.
        input_shape: (C, H, W) of one sample.
        width: channels of the first stage (64).
    """

    def __init__(self, n_classes: int, *, input_shape: Sequence[int] = (3, 32, 32), width: int = 64) -> None:
        super().__init__()
        _check_positive_int("n_classes", n_classes, 2)
        _check_positive_int("width", width)
        input_shape = _check_image_shape(input_shape)
        self.input_shape = input_shape
        self.conv = nn.Conv2d(input_shape[0], width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        blocks: list[nn.Module] = []
        c = width
        for stage in range(4):
            c_out = width * 2**stage
            for i in range(2):
                blocks.append(_ProjectionBlock(c, c_out, 2 if (stage > 0 and i == 0) else 1))
                c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c, n_classes)
        self.n_classes = n_classes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Globally average-pooled activations of the last stage (N × 8·width)."""
        if x.dim() == 2:
            x = x.reshape(x.shape[0], *self.input_shape)
        out = F.relu(self.bn(self.conv(x)))
        return self.blocks(out).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _check_image_shape(input_shape) -> tuple[int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 3 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise ValueError(f"input_shape must be three positive ints (C, H, W), got {shape!r}")
    return shape  # type: ignore[return-value]


def default_image_shape(in_features: int) -> tuple[int, int, int]:
    """Pick (C, H, W) for a flat input of width D: the largest square side s in 32, 16, ..., 1 with
    s² dividing D, and C = D / s². 3072 → (3, 32, 32); 128 → (2, 8, 8); 512 → (2, 16, 16)."""
    _check_positive_int("in_features", in_features)
    for s in (32, 16, 8, 4, 2, 1):
        if in_features % (s * s) == 0:
            return (in_features // (s * s), s, s)
    raise AssertionError("unreachable: s = 1 always divides")  # pragma: no cover


def make_model(
    name: str,
    *,
    in_features: int,
    n_classes: int,
    width: int | None = None,
    depth: int | None = None,
    activation: str = "relu",
    batchnorm: bool = True,
    input_shape: Sequence[int] | None = None,
) -> nn.Module:
    """Build a model by name.

    Args:
        name: ``mlp``, ``cnn`` (:class:`SmallCNN`), ``resnet20``, ``resnet56`` or ``resnet18``.
        in_features: flat input width D.
        n_classes: number of classes (output width).
        width: MLP hidden width (default 512) or CNN / ResNet first-stage channels (default 16; 64 for
            ResNet-18).
        depth: MLP hidden layers (default 3); ignored by the ResNets, whose depth is in the name.
        activation: MLP activation (``relu``, ``gelu``, ``tanh``, ``silu``).
        batchnorm: MLP BatchNorm after each hidden layer (ResNets always use BatchNorm).
        input_shape: CNN / ResNet (C, H, W); by default :func:`default_image_shape` of ``in_features``.
    """
    if name == "mlp":
        return MLP(
            in_features,
            n_classes,
            width=512 if width is None else width,
            depth=3 if depth is None else depth,
            activation=activation,
            batchnorm=batchnorm,
        )
    if name in ("cnn", "resnet20", "resnet56", "resnet18"):
        shape = default_image_shape(in_features) if input_shape is None else tuple(input_shape)
        if math.prod(shape) != in_features:
            raise ValueError(
                f"input_shape {shape} has {math.prod(shape)} elements but in_features is {in_features}"
            )
        if name == "cnn":
            return SmallCNN(n_classes, input_shape=shape, width=16 if width is None else width)
        if name == "resnet18":
            return ResNet18(n_classes, input_shape=shape, width=64 if width is None else width)
        return CifarResNet(int(name[6:]), n_classes, input_shape=shape, width=16 if width is None else width)
    raise ValueError(f"model must be one of {list(MODEL_NAMES)} (or pass an nn.Module), got {name!r}")
