"""Class-per-subfolder image trees (:func:`image_folder`): decoded once with Pillow, cached by content."""

from __future__ import annotations

import hashlib
import os
import stat
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


def _is_dir(entry: os.DirEntry) -> bool:
    """Whether ``entry`` is a folder or a link to one (a link loop is not: scandir raises ELOOP for it)."""
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def _class_folders(root: str) -> list[str]:
    return sorted(e.name for e in os.scandir(root) if not e.name.startswith(".") and _is_dir(e))


def _inside(path: str, folder: str) -> bool:
    """Whether the resolved ``path`` is ``folder`` or lies below it (both resolved)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _check_class_overlap(root: str, classes: list[str]) -> None:
    """Refuse class folders that resolve (through links) to the root, an ancestor of it, the same folder
    as another class, or a folder inside another class: their images would get two labels."""
    real_root = os.path.realpath(root)
    real = {cls: os.path.realpath(os.path.join(root, cls)) for cls in classes}
    for cls, path in real.items():
        if _inside(real_root, path):
            raise ValueError(f"image_folder: class folder {cls!r} in {root} resolves to {path}, which holds the "
                             f"root itself: its images would include every class's")
        for other, other_path in real.items():
            if other != cls and _inside(path, other_path):
                raise ValueError(f"image_folder: class folders {cls!r} and {other!r} in {root} resolve to "
                                 f"{path} and {other_path}: one lies inside the other, so images would get two labels")


def _scan_class(root: str, cls: str, extensions: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(image paths relative to ``root``, refused entries as "path: reason") of one class folder.

    Depth-first in sorted order (a folder's files, then its subfolders). Links are followed, but every
    resolved folder and file must lie inside the class folder's resolved path and is visited once, under
    the first path that reaches it; only regular files are images. A link to a folder already visited
    (``x -> .``, ``sub/up -> ..``) is passed over; other entries that break the rule are refused.
    """
    base = os.path.realpath(os.path.join(root, cls))
    seen_dirs: set[str] = set()
    seen_files: set[str] = set()
    found: list[str] = []
    refused: list[str] = []
    stack = [os.path.join(root, cls)]
    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in seen_dirs:
            continue
        seen_dirs.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            refused.append(f"{os.path.relpath(folder, root)}: cannot list it ({exc.strerror or exc})")
            continue
        subdirs = []
        for e in entries:
            if e.name.startswith("."):
                continue
            rel = os.path.relpath(e.path, root)
            if _is_dir(e):
                target = os.path.realpath(e.path)
                if not _inside(target, base):
                    refused.append(f"{rel}: a link to {target}, outside its class folder")
                elif target not in seen_dirs:
                    subdirs.append(e.path)
                continue
            if not e.name.lower().endswith(extensions):
                continue
            try:
                st = os.stat(e.path)
            except OSError as exc:  # a dangling link, a link loop, no permission
                refused.append(f"{rel}: cannot be read ({exc.strerror or exc})")
                continue
            if not stat.S_ISREG(st.st_mode):
                refused.append(f"{rel}: not a regular file (a pipe, device or socket)")
                continue
            target = os.path.realpath(e.path)
            if not _inside(target, base):
                refused.append(f"{rel}: a link to {target}, outside its class folder")
            elif target not in seen_files:
                seen_files.add(target)
                found.append(rel)
        stack.extend(reversed(subdirs))
    return found, refused


def _scan_folder(root: str, extensions: tuple[str, ...], on_error: str = "raise") -> tuple[list[str], list[str], list[int]]:
    """(class names, relative file paths, labels) of a class-per-subfolder tree, in sorted order.

    Entries that break :func:`_scan_class`'s rule raise ValueError (``on_error="raise"``) or are left out
    with a warning naming them (``"skip"``)."""
    layout = (f"one subfolder per class holding its images (root/<class>/<image>, any depth below the class "
              f"folder; endings {', '.join(extensions)})")
    classes = _class_folders(root)
    if not classes:
        raise DatasetNotFoundError(f"image_folder: no class subfolders in {root}; expected {layout}")
    _check_class_overlap(root, classes)
    files, labels, empty, refused = [], [], [], []
    for k, cls in enumerate(classes):
        found, bad = _scan_class(root, cls, extensions)
        refused.extend(bad)
        if not found:
            empty.append(cls)
        files.extend(found)
        labels.extend([k] * len(found))
    if refused:
        shown = "; ".join(refused[:5]) + (" ..." if len(refused) > 5 else "")
        if on_error == "raise":
            raise ValueError(f"image_folder: {len(refused)} entr{'y' if len(refused) == 1 else 'ies'} in {root} "
                             f"cannot be used as images: {shown} (on_error='skip' leaves them out)")
        warnings.warn(f"image_folder: skipped {len(refused)} entr{'y' if len(refused) == 1 else 'ies'} in {root} "
                      f"that cannot be used as images: {shown}", stacklevel=3)
    if empty:
        raise DatasetNotFoundError(
            f"image_folder: class folder(s) {empty} in {root} hold no images; expected {layout}"
        )
    return classes, files, labels


def _open_regular(path: str):
    """``path`` opened for binary reading, refusing anything but a regular file without blocking on it
    (a file swapped for a pipe after the scan would hang a plain open)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _content_key(root: str, files: list[str], labels: list[int], params: dict) -> str:
    """Hash of every image's bytes, path and class, plus the decoding parameters and Pillow's version."""
    import PIL

    h = hashlib.blake2b(digest_size=20)
    h.update(repr(sorted(params.items())).encode())
    h.update(f"format={_FOLDER_CACHE_FORMAT};pillow={PIL.__version__}".encode())
    for rel, k in zip(files, labels):
        h.update(f"\0{rel}\0{k}\0".encode())
        with _open_regular(os.path.join(root, rel)) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


class _WrongSize(ValueError):
    pass


# The most pixels an image file may declare, checked from its header before any pixel is decoded (a
# 17 KB PNG can declare 144 megapixels): Pillow's MAX_IMAGE_PIXELS as an error (Pillow itself only warns
# below twice that), and no more than a _MAX_SHRINK-fold reduction per side down to the requested size,
# with any image up to _MIN_PIXEL_BOUND pixels (a large camera's photo) accepted whatever the size.
_MAX_SHRINK = 64
_MIN_PIXEL_BOUND = 40_000_000


class _TooLarge(ValueError):
    pass


def _check_pixels(image_size: tuple[int, int], size: tuple[int, int]) -> None:
    """Refuse an image of ``image_size`` (width, height) with more pixels than decoding to ``size``
    (height, width) may take."""
    from PIL import Image

    w, h = image_size
    bound, why = max(_MIN_PIXEL_BOUND, _MAX_SHRINK**2 * size[0] * size[1]), (
        f"more than {_MAX_SHRINK}x the requested {size[1]} x {size[0]} per side")
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < bound:
        bound, why = int(Image.MAX_IMAGE_PIXELS), "PIL.Image.MAX_IMAGE_PIXELS (a decompression bomb?)"
    if w * h > bound:
        raise _TooLarge(f"declares {w} x {h} = {w * h} pixels, more than the {bound} allowed ({why})")


# Formats Pillow hands to an outside program: never chosen, whatever the extensions say (EPS runs
# Ghostscript on the file's PostScript).
_REFUSED_FORMATS = {"EPS": "it interprets the file's PostScript with Ghostscript"}


def _pillow_formats(extensions: tuple[str, ...]) -> tuple[str, ...]:
    """The Pillow formats the file endings promise (``.jpg`` -> JPEG, ...): the only decoders
    :func:`_decode` lets Pillow choose, so a file's content cannot pick another (e.g. EPS named x.png)."""
    from PIL import Image

    registered = Image.registered_extensions()
    formats: list[str] = []
    for ext in extensions:
        fmt = registered.get(os.path.splitext("x" + ext)[1])
        if fmt is None:
            raise ValueError(f"extensions: Pillow reads no format from files ending {ext!r}; accepted endings: "
                             f"{', '.join(sorted(e for e, f in registered.items() if f not in _REFUSED_FORMATS))}")
        if fmt in _REFUSED_FORMATS:
            raise ValueError(f"extensions: {ext!r} ({fmt}) is not accepted: {_REFUSED_FORMATS[fmt]}")
        if fmt not in formats:
            formats.append(fmt)
    return tuple(formats)


def _decode(path: str, size: tuple[int, int], resize: str, mode: str,
            formats: tuple[str, ...] | None = None) -> np.ndarray:
    """One image as uint8 (C, H, W), decoded only by one of Pillow's ``formats`` (default: those of
    :data:`IMAGE_EXTENSIONS`)."""
    from PIL import Image, ImageOps

    if formats is None:
        formats = _pillow_formats(IMAGE_EXTENSIONS)
    h, w = size
    with _open_regular(path) as f, Image.open(f, formats=list(formats)) as im:
        _check_pixels(im.size, size)  # from the header: before any pixel is decoded
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
    found at any depth below its folder, in sorted order (a folder's files, then its subfolders).

    Links are followed under one rule, so a hostile or careless tree can neither hang the scan nor give
    an image the wrong label: only *regular files* are images (a pipe, device or socket with an image
    ending is refused, never opened for reading); every resolved file and folder must lie *inside its
    class folder's resolved path* (a link out of it, e.g. ``up -> ..``, is refused); each resolved file
    and folder is *visited once*, under the first path that reaches it (a link back to a folder already
    visited, e.g. ``x -> .``, is passed over). A class folder may itself be a link, but class folders
    must not resolve to the root, to one another or into one another (ValueError). Refused entries
    (these, dangling links and link loops) follow ``on_error``.

    Every image is decoded with Pillow, converted
    to RGB (``channels=3``) or grayscale (``channels=1``) and brought to ``size``. The result is saved as
    a uint8 array file ``<cache_dir>/<key>.npz``, where ``key`` hashes every file's bytes and path, the
    decoding parameters and Pillow's version; the next call with the same files reads that file instead of
    decoding (changing, adding or removing any image makes a new key).

    An image whose header declares more pixels than Pillow's ``MAX_IMAGE_PIXELS``, or more than 64 times
    ``size`` per side (any image up to 40 megapixels is accepted), is refused before it is decoded, like
    an undecodable one (see ``on_error``).

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
        File endings to read (case-insensitive); other files are ignored. They also fix the decoders: a
        file is decoded only by a Pillow format one of these endings names (``.png`` -> PNG,
        ``.jpg``/``.jpeg`` -> JPEG, ...), whatever its content looks like, so an EPS file named ``x.png``
        is refused, never handed to Ghostscript. An ending Pillow reads no format from, or one of a
        format that runs an outside program (``.eps``), raises ValueError.
    cache, cache_dir:
        Read/write the decoded array there (default ``$LRDECAY_CACHE/image_folder``, else
        ``~/.cache/lrdecay/image_folder``). ``cache=False`` always decodes and writes nothing.
    on_error:
        ``"raise"``: an image Pillow cannot decode, or an entry the rule above refuses, raises ValueError
        naming it. ``"skip"``: such entries are left out, with a warning naming them (classes keep their
        ids).
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
    classes, files, labels = _scan_folder(root, exts, on_error)
    formats = _pillow_formats(exts)
    params = {"size": hw, "resize": resize, "channels": channels, "on_error": on_error, "formats": formats}

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
            x[i] = _decode(path, hw, resize, mode, formats)
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
