"""Turn whatever the caller passes as a dataset into validated tensors on the device, once.

Accepted: a :class:`lrdecay.data.PatternDataset` (or any object with ``x``/``y`` attributes and optional
``group``, ``flipped``, ``y_clean``, ``group_names``, ``n_classes``), a dict with those keys, or an
``(x, y)`` tuple. Arrays may be numpy arrays or torch tensors.

Images: a uint8 ``x`` of shape (n, C, H, W) (an :class:`lrdecay.images.ImageDataset`, or any such array)
stays uint8 on the device; the trainer normalizes and augments batches inside the step. Its per-channel
``mean``/``std`` (of ``x / 255``) come from the object when it has them, else from the pixels.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lrdecay.data.limits import MAX_CLASSES, MAX_GROUPS

__all__ = ["DeviceData", "as_device_data"]


@dataclass
class DeviceData:
    """A dataset resident on one device. ``x`` is float32 (N × ...) or, for images, uint8 (N, C, H, W);
    labels int64, ``group`` int64. Images carry per-channel ``mean``/``std`` of ``x / 255`` and the
    augmentation their source suggests (``default_augment``)."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    y_clean: torch.Tensor | None
    group: torch.Tensor | None
    flipped: torch.Tensor | None
    group_names: tuple[str, ...]
    n_classes: int
    fingerprint: str
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    default_augment: str = "none"

    @property
    def is_image(self) -> bool:
        """uint8 images (N, C, H, W), normalized and augmented inside the step."""
        return self.x.dtype == torch.uint8

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    @property
    def in_features(self) -> int:
        return int(np.prod(self.x.shape[1:]))

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    # Host copies for the ledger and the per-epoch statistics (kept once, not per epoch).
    def host(self, attr: str) -> np.ndarray | None:
        cache = self.__dict__.setdefault("_host", {})
        if attr not in cache:
            t = getattr(self, attr)
            cache[attr] = None if t is None else t.detach().cpu().numpy()
        return cache[attr]


def _get(obj: Any, key: str):
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _array(name: str, field: str, value: Any) -> np.ndarray | torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    raise TypeError(f"{name}.{field} must be a numpy array or torch tensor, got {type(value).__name__}")


def _to_tensor(a, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))
    return t.to(device=device, dtype=dtype).contiguous()


def as_device_data(
    obj: Any, device: torch.device | str, *, name: str = "dataset", n_classes: int | None = None
) -> DeviceData:
    """Validate ``obj`` and move it to ``device`` once.

    Raises ValueError/TypeError naming ``name`` and the offending field when arrays disagree in length,
    labels are out of range, or dtypes are unusable.

    A :class:`DeviceData` already on ``device`` (validated when it was made) comes back as a shallow copy
    under ``name``: no copy of its arrays, no second hash (runs sharing one dataset, as in a sweep).
    """
    device = torch.device(device)
    if isinstance(obj, DeviceData) and obj.x.device == device and (n_classes is None or n_classes == obj.n_classes):
        return dataclasses.replace(obj, name=name)
    if isinstance(obj, (tuple, list)) and len(obj) == 2:
        obj = {"x": obj[0], "y": obj[1]}
    x, y = _get(obj, "x"), _get(obj, "y")
    if x is None or y is None:
        raise TypeError(
            f"{name} must be a PatternDataset, a dict with 'x' and 'y', or an (x, y) tuple; "
            f"got {type(obj).__name__}"
        )
    x = _array(name, "x", x)
    y = _array(name, "y", y)
    if x.ndim < 2:
        raise ValueError(f"{name}.x must have shape (n, features...), got shape {tuple(x.shape)}")
    n = int(x.shape[0])
    if n < 1:
        raise ValueError(f"{name} must have at least 1 sample, got 0")
    if tuple(y.shape) != (n,):
        raise ValueError(f"{name}.y must have shape ({n},) to match {name}.x, got {tuple(y.shape)}")
    is_image = x.dtype == (torch.uint8 if isinstance(x, torch.Tensor) else np.uint8)
    if is_image and x.ndim != 4:
        raise ValueError(f"{name}.x: uint8 images must have shape (n, C, H, W), got {tuple(x.shape)}")
    if isinstance(x, np.ndarray) and not (is_image or np.issubdtype(x.dtype, np.floating)):
        raise TypeError(f"{name}.x must be floating point, or uint8 images (n, C, H, W), got {x.dtype}")
    if isinstance(x, torch.Tensor) and not (is_image or x.is_floating_point()):
        raise TypeError(f"{name}.x must be floating point, or uint8 images (n, C, H, W), got {x.dtype}")
    y_np = y.cpu().numpy() if isinstance(y, torch.Tensor) else y
    if not np.issubdtype(y_np.dtype, np.integer):
        raise TypeError(f"{name}.y must be integer class labels, got {y_np.dtype}")
    # Sizes the data declares are capped before anything is sized by them (the model head, the counts).
    k = n_classes if n_classes is not None else _get(obj, "n_classes")
    if k is None:
        if int(y_np.max()) >= MAX_CLASSES:
            raise ValueError(f"{name}.y: labels must be in [0, {MAX_CLASSES}) (at most {MAX_CLASSES} classes), "
                             f"found {int(y_np.max())}")
        k = int(y_np.max()) + 1
    k = int(k)
    if not 2 <= k <= MAX_CLASSES:
        raise ValueError(f"{name}: n_classes must be in [2, {MAX_CLASSES}], got {k}")
    if y_np.min() < 0 or y_np.max() >= k:
        raise ValueError(f"{name}.y labels must be in [0, {k}), got range [{y_np.min()}, {y_np.max()}]")

    extras: dict[str, np.ndarray | None] = {}
    for field in ("y_clean", "group", "flipped"):
        v = _get(obj, field)
        if v is None:
            extras[field] = None
            continue
        v = _array(name, field, v)
        v = v.cpu().numpy() if isinstance(v, torch.Tensor) else v
        if tuple(v.shape) != (n,):
            raise ValueError(f"{name}.{field} must have shape ({n},) to match {name}.x, got {tuple(v.shape)}")
        extras[field] = v
    if extras["y_clean"] is not None:
        yc = extras["y_clean"]
        if not np.issubdtype(yc.dtype, np.integer) or yc.min() < 0 or yc.max() >= k:
            raise ValueError(f"{name}.y_clean must be integer labels in [0, {k})")
    if extras["flipped"] is not None and extras["flipped"].dtype != np.bool_:
        f = extras["flipped"]
        if not np.issubdtype(f.dtype, np.integer) or f.min() < 0 or f.max() > 1:
            raise TypeError(f"{name}.flipped must be a bool mask")
        extras["flipped"] = f.astype(bool)
    if extras["flipped"] is None and extras["y_clean"] is not None:
        extras["flipped"] = extras["y_clean"] != y_np

    names = _get(obj, "group_names")
    g = extras["group"]
    if g is not None:
        if not np.issubdtype(g.dtype, np.integer) or g.min() < 0:
            raise ValueError(f"{name}.group must be non-negative integer group ids")
        if int(g.max()) >= MAX_GROUPS:
            raise ValueError(f"{name}.group: ids must be in [0, {MAX_GROUPS}) (at most {MAX_GROUPS} groups), "
                             f"found {int(g.max())}")
        n_groups = int(g.max()) + 1
        if names is None:
            names = tuple(f"group{i}" for i in range(n_groups))
        if len(names) > MAX_GROUPS:
            raise ValueError(f"{name}.group_names: at most {MAX_GROUPS} groups, got {len(names)} names")
        names = tuple(str(s) for s in names)
        if n_groups > len(names):
            raise ValueError(f"{name}.group has ids up to {n_groups - 1} but only {len(names)} group_names")
    else:
        names = ()

    h = hashlib.sha1()
    for a in (x, y_np, extras["group"], extras["flipped"], extras["y_clean"]):
        if a is None:
            h.update(b"-")
            continue
        a_np = a.cpu().numpy() if isinstance(a, torch.Tensor) else a
        h.update(str((a_np.dtype.str, a_np.shape)).encode())
        h.update(np.ascontiguousarray(a_np).data)
    image: dict[str, Any] = {}
    if is_image:
        image = _image_info(name, obj, x)
    return DeviceData(
        name=name,
        x=_to_tensor(x, torch.uint8 if is_image else torch.float32, device),
        y=_to_tensor(y_np, torch.int64, device),
        y_clean=None if extras["y_clean"] is None else _to_tensor(extras["y_clean"], torch.int64, device),
        group=None if g is None else _to_tensor(g, torch.int64, device),
        flipped=None if extras["flipped"] is None else _to_tensor(extras["flipped"], torch.bool, device),
        group_names=names,
        n_classes=k,
        fingerprint=h.hexdigest(),
        **image,
    )


def _image_info(name: str, obj: Any, x) -> dict[str, Any]:
    """mean/std/default_augment of uint8 images: the object's own, else computed from the pixels."""
    from lrdecay.data.augment import AUGMENTS
    from lrdecay.data.image_dataset import channel_stats

    c = int(x.shape[1])
    mean, std = _get(obj, "mean"), _get(obj, "std")
    if mean is None or std is None or not len(mean) or not len(std):
        mean, std = channel_stats(x.cpu().numpy() if isinstance(x, torch.Tensor) else x)
    mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    if len(mean) != c or len(std) != c:
        raise ValueError(f"{name}: mean and std must have one value per channel ({c}), got {mean} and {std}")
    aug = _get(obj, "default_augment") or "none"
    if aug not in AUGMENTS:
        raise ValueError(f"{name}.default_augment must be one of {list(AUGMENTS)}, got {aug!r}")
    return {"mean": mean, "std": std, "default_augment": aug}


def split_validation(data: DeviceData, fraction: float, seed: int) -> tuple[DeviceData, DeviceData]:
    """``data`` split into a training part and a validation part of ``round(fraction · n)`` samples
    (at least 1, at most n − 1), drawn by a permutation seeded with ``seed``; both keep the original order
    and the observed (possibly noisy) labels, so the validation error measures the same task the model
    trains on. Raises ValueError when ``data`` is too small to split."""
    n = data.n
    k = min(max(1, round(fraction * n)), n - 1)
    if n < 2 or not 0 < fraction < 1:
        raise ValueError(f"val_fraction={fraction} cannot split a training set of {n} samples")
    gen = torch.Generator()
    gen.manual_seed(seed)
    in_val = torch.zeros(n, dtype=torch.bool)
    in_val[torch.randperm(n, generator=gen)[:k]] = True

    def part(mask: torch.Tensor, suffix: str) -> DeviceData:
        idx = mask.nonzero().squeeze(1).to(data.y.device)
        fields = {f: None if getattr(data, f) is None else getattr(data, f)[idx]
                  for f in ("x", "y", "y_clean", "group", "flipped")}
        digest = hashlib.sha1(f"{data.fingerprint}:{suffix}:{fraction!r}:{seed}".encode()).hexdigest()
        return dataclasses.replace(data, name=f"{data.name}[{suffix}]", fingerprint=digest, **fields)

    return part(~in_val, "train"), part(in_val, "val")
