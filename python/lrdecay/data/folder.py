"""Class-per-subfolder image trees (:func:`image_folder`): decoded once with Pillow, cached by content."""

from __future__ import annotations

import hashlib
import os
import warnings
from typing import Sequence

import numpy as np

from lrdecay._validate import check_int
from lrdecay.data.image_dataset import DatasetNotFoundError, ImageDataset, _check_root

__all__ = ["image_folder", "IMAGE_EXTENSIONS"]

#: File endings :func:`image_folder` decodes (case-insensitive).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

_FOLDER_CACHE_FORMAT = 1


def _default_cache_dir() -> str:
    env = os.environ.get("LRDECAY_CACHE")
    if env:
        return os.path.join(env, "image_folder")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lrdecay", "image_folder")


def _check_size(size) -> tuple[int, int]:
    if isinstance(size, (list, tuple)) and len(size) == 2:
        h, w = (check_int(f"size[{i}]", s, 1, 65536) for i, s in enumerate(size))
        return h, w
    s = check_int("size", size, 1, 65536) if not isinstance(size, (list, tuple)) else None
    if s is None:
        raise ValueError(f"size must be an int or a pair (height, width), got {size!r}")
    return s, s


def _class_folders(root: str) -> list[str]:
    return sorted(e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=True) and not e.name.startswith("."))


def _scan_folder(root: str, extensions: tuple[str, ...]) -> tuple[list[str], list[str], list[int]]:
    """(class names, relative file paths, labels) of a class-per-subfolder tree, in sorted order."""
    layout = (f"one subfolder per class holding its images (root/<class>/<image>, any depth below the class "
              f"folder; endings {', '.join(extensions)})")
    classes = _class_folders(root)
    if not classes:
        raise DatasetNotFoundError(f"image_folder: no class subfolders in {root}; expected {layout}")
    files, labels, empty = [], [], []
    for k, cls in enumerate(classes):
        found = []
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, cls), followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fn in sorted(filenames):
                if not fn.startswith(".") and fn.lower().endswith(extensions):
                    found.append(os.path.relpath(os.path.join(dirpath, fn), root))
        if not found:
            empty.append(cls)
        files.extend(found)
        labels.extend([k] * len(found))
    if empty:
        raise DatasetNotFoundError(
            f"image_folder: class folder(s) {empty} in {root} hold no images; expected {layout}"
        )
    return classes, files, labels


def _content_key(root: str, files: list[str], labels: list[int], params: dict) -> str:
    """Hash of every image's bytes, path and class, plus the decoding parameters and Pillow's version."""
    import PIL

    h = hashlib.blake2b(digest_size=20)
    h.update(repr(sorted(params.items())).encode())
    h.update(f"format={_FOLDER_CACHE_FORMAT};pillow={PIL.__version__}".encode())
    for rel, k in zip(files, labels):
        h.update(f"\0{rel}\0{k}\0".encode())
        with open(os.path.join(root, rel), "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


class _WrongSize(ValueError):
    pass


def _decode(path: str, size: tuple[int, int], resize: str, mode: str) -> np.ndarray:
    """One image as uint8 (C, H, W)."""
    from PIL import Image, ImageOps

    h, w = size
    with Image.open(path) as im:
        im.load()
        im = im.convert(mode)
        if resize == "crop":
            if im.size != (w, h):
                im = ImageOps.fit(im, (w, h), method=Image.Resampling.BILINEAR, centering=(0.5, 0.5))
        elif resize == "stretch":
            if im.size != (w, h):
                im = im.resize((w, h), Image.Resampling.BILINEAR)
        elif im.size != (w, h):
            raise _WrongSize(f"is {im.size[0]} x {im.size[1]} (width x height), but resize='none' needs every "
                             f"image to be {w} x {h}")
        a = np.asarray(im, dtype=np.uint8)
    return a[None] if a.ndim == 2 else np.ascontiguousarray(a.transpose(2, 0, 1))


def image_folder(
    root: str | os.PathLike,
    *,
    size: int | tuple[int, int] = 32,
    resize: str = "crop",
    channels: int = 3,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    on_error: str = "raise",
    workers: int | None = None,
    progress: bool = True,
) -> ImageDataset:
    """A class-per-subfolder image tree (``root/<class>/<image>``), decoded once and cached.

    Classes are the subfolders of ``root`` in sorted order (hidden ones skipped); each class's images are
    found at any depth below its folder, in sorted order. Every image is decoded with Pillow, converted
    to RGB (``channels=3``) or grayscale (``channels=1``) and brought to ``size``. The result is saved as
    a uint8 array file ``<cache_dir>/<key>.npz``, where ``key`` hashes every file's bytes and path, the
    decoding parameters and Pillow's version; the next call with the same files reads that file instead of
    decoding (changing, adding or removing any image makes a new key).

    Parameters
    ----------
    size:
        Output size: an int (square) or ``(height, width)``.
    resize:
        ``"crop"`` (scale the shorter side to fit, then centre-crop: keeps the aspect ratio),
        ``"stretch"`` (resize to ``size`` ignoring the aspect ratio) or ``"none"`` (every image must
        already have that size). Resampling is bilinear (antialiased when shrinking).
    channels:
        3 (RGB) or 1 (grayscale).
    extensions:
        File endings to read (case-insensitive); other files are ignored.
    cache, cache_dir:
        Read/write the decoded array there (default ``$LRDECAY_CACHE/image_folder``, else
        ``~/.cache/lrdecay/image_folder``). ``cache=False`` always decodes and writes nothing.
    on_error:
        ``"raise"``: an image Pillow cannot decode raises ValueError naming it. ``"skip"``: such images
        are left out, with a warning naming them (classes keep their ids).
    workers:
        Decoding threads (Pillow releases the GIL while decoding); default ``min(8, CPU count)``. The
        result does not depend on it.
    progress:
        A tqdm bar while decoding (quiet when stderr is not a terminal).

    Raises
    ------
    DatasetNotFoundError
        When ``root`` is missing, has no class subfolders, or a class folder holds no image.
    ValueError
        For an undecodable image (with ``on_error="raise"``) or a bad argument.
    """
    if not isinstance(resize, str) or resize not in ("crop", "stretch", "none"):
        raise ValueError(f"resize must be 'crop', 'stretch' or 'none', got {resize!r}")
    if isinstance(channels, bool) or channels not in (1, 3):
        raise ValueError(f"channels must be 3 (RGB) or 1 (grayscale), got {channels!r}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if isinstance(extensions, str) or not extensions or not all(isinstance(e, str) and e for e in extensions):
        raise TypeError(f"extensions must be a non-empty list of file endings like '.png', got {extensions!r}")
    exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
    hw = _check_size(size)
    if workers is not None:
        workers = check_int("workers", workers, 1, 1024)
    root = _check_root(root, "a class-per-subfolder image tree (root/<class>/<image>)")
    classes, files, labels = _scan_folder(root, exts)
    params = {"size": hw, "resize": resize, "channels": channels, "on_error": on_error}

    cache_path = None
    if cache:
        key = _content_key(root, files, labels, params)
        folder = os.fspath(cache_dir) if cache_dir is not None else _default_cache_dir()
        cache_path = os.path.join(folder, f"{key}.npz")
        hit = _read_folder_cache(cache_path, len(classes), hw, channels)
        if hit is not None:
            x, y, kept = hit
            return _folder_dataset(x, y, classes, kept, root)

    mode = "RGB" if channels == 3 else "L"
    n = len(files)
    x = np.empty((n, channels, *hw), dtype=np.uint8)
    ok = np.ones(n, dtype=bool)
    errors: list[str] = []

    def work(i: int) -> None:
        path = os.path.join(root, files[i])
        try:
            x[i] = _decode(path, hw, resize, mode)
        except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError...
            if on_error == "raise" or isinstance(exc, _WrongSize):  # a wrong size is a setting, not damage
                raise ValueError(f"image_folder: cannot use {path}: {type(exc).__name__}: {exc}") from None
            ok[i] = False
            errors.append(f"{files[i]} ({type(exc).__name__}: {exc})")

    from concurrent.futures import ThreadPoolExecutor

    from tqdm.auto import tqdm

    n_workers = workers or min(8, os.cpu_count() or 1)
    with tqdm(total=n, desc="decode images", unit="img", disable=None if progress else True) as bar:
        if n_workers == 1:
            for i in range(n):
                work(i)
                bar.update(1)
        else:
            with ThreadPoolExecutor(n_workers) as pool:
                for _ in pool.map(work, range(n)):
                    bar.update(1)
    if errors:
        errors.sort()
        warnings.warn(f"image_folder: skipped {len(errors)} image(s) Pillow could not decode: "
                      + "; ".join(errors[:5]) + (" ..." if len(errors) > 5 else ""), stacklevel=2)
        if not ok.any():
            raise ValueError(f"image_folder: no image in {root} could be decoded")
        x = np.ascontiguousarray(x[ok])
    y = np.asarray(labels, dtype=np.int64)[ok]
    kept = [f for f, keep in zip(files, ok) if keep]
    if cache_path is not None:
        _write_folder_cache(cache_path, x, y, classes, kept)
    return _folder_dataset(x, y, classes, kept, root)


def _folder_dataset(x, y, classes, files, root) -> ImageDataset:
    return ImageDataset(x=x, y=y, class_names=tuple(classes), name=f"folder:{root}", split="all",
                        default_augment="crop+flip", files=tuple(files))


def _write_folder_cache(path: str, x, y, classes, files) -> None:
    from lrdecay._atomic import atomic_write

    try:
        with atomic_write(path) as f:
            np.savez(f, x=x, y=y, classes=np.array(classes, dtype=str), files=np.array(files, dtype=str))
    except OSError as exc:  # a read-only cache folder costs a decode next time, not the run
        warnings.warn(f"image_folder: could not write the cache {path}: {exc}", stacklevel=3)


def _read_folder_cache(path: str, n_classes: int, hw, channels: int):
    """(x, y, files) from a cache file, or None when there is none or it is unusable (then rebuilt)."""
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            x, y, files = z["x"], z["y"], [str(s) for s in z["files"]]
            classes = [str(s) for s in z["classes"]]
        if (x.dtype != np.uint8 or x.shape[1:] != (channels, *hw) or y.shape != (x.shape[0],)
                or len(files) != x.shape[0] or len(classes) != n_classes
                or (y.size and (y.min() < 0 or y.max() >= n_classes))):
            raise ValueError("unexpected shapes")
    except Exception as exc:
        warnings.warn(f"image_folder: ignoring the damaged cache file {path} ({exc}); decoding again",
                      stacklevel=3)
        return None
    return np.ascontiguousarray(x), y.astype(np.int64), files
