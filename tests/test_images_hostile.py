"""image_folder on hostile trees: link loops, links out of the class folder, pipes, devices and dangling
links named like images. Each case runs under a deadline, so a regression fails instead of hanging."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import warnings

import numpy as np
import pytest

from lrdecay.data import folder as folder_reader
from lrdecay.data import image_folder

from support.image_files import make_tree

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer") or os.name != "posix",
                                reason="needs POSIX links, pipes and timers")

DEADLINE_S = 30


@contextlib.contextmanager
def deadline(seconds: float = DEADLINE_S):
    """Raise TimeoutError in the main thread after ``seconds`` (interrupts a blocking open or read)."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: image_folder hangs on this tree")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def load(root, tmp_path, **kw):
    kw.setdefault("cache_dir", tmp_path / "cache")
    with deadline():
        return image_folder(root, size=(6, 5), workers=1, progress=False, **kw)


@pytest.fixture
def tree(tmp_path):
    """A small clean tree and what image_folder reads from it (without cache)."""
    root = tmp_path / "tree"
    make_tree(root, per_class=(6, 7, 5), size=(6, 5), seed=int.from_bytes(os.urandom(2), "little"))
    clean = load(root, tmp_path, cache=False)
    return root, clean


def same(a, b) -> None:
    assert a.class_names == b.class_names and a.files == b.files
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)


@pytest.mark.parametrize("links", [["x"], ["x", "y"]])
def test_links_to_the_class_folder_itself_read_each_image_once(tree, tmp_path, links):
    root, clean = tree
    for name in links:
        os.symlink(".", root / "cat" / name)
    os.symlink("..", root / "cat" / "more" / "up")  # back to the class folder: inside it, already visited
    for cache in (False, True):
        same(load(root, tmp_path, cache=cache), clean)


def test_link_out_of_the_class_folder_is_refused_not_mislabelled(tree, tmp_path):
    root, clean = tree
    os.symlink("..", root / "cat" / "up")  # would bring dog's and eel's images in as cats
    with pytest.raises(ValueError, match=r"cat/up: a link to .* outside its class folder"):
        load(root, tmp_path)
    with pytest.warns(UserWarning, match=r"skipped 1 entry .*cat/up"):
        same(load(root, tmp_path, on_error="skip"), clean)


def test_link_to_another_class_s_image_is_refused(tree, tmp_path):
    root, clean = tree
    os.symlink(os.path.join("..", "dog", "img001.png"), root / "cat" / "stolen.png")
    with pytest.raises(ValueError, match=r"cat/stolen.png: a link to .*dog/img001.png, outside"):
        load(root, tmp_path)
    with pytest.warns(UserWarning, match="stolen.png"):
        same(load(root, tmp_path, on_error="skip"), clean)


def test_link_to_an_image_of_the_same_class_is_read_once(tree, tmp_path):
    root, clean = tree
    os.symlink("img001.png", root / "cat" / "img001_again.png")  # sorts after img001.png: that path is kept
    same(load(root, tmp_path), clean)


def test_fifo_named_like_an_image_is_refused_without_blocking(tree, tmp_path):
    root, clean = tree
    os.mkfifo(root / "dog" / "x.png")
    for cache in (True, False):
        with pytest.raises(ValueError, match=r"dog/x.png: not a regular file"):
            load(root, tmp_path, cache=cache)
        with pytest.warns(UserWarning, match="dog/x.png"):
            same(load(root, tmp_path, cache=cache, on_error="skip"), clean)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_link_to_dev_zero_is_refused_with_the_cache_on(tree, tmp_path):
    root, clean = tree
    os.symlink("/dev/zero", root / "eel" / "z.png")
    with pytest.raises(ValueError, match=r"eel/z.png: not a regular file"):
        load(root, tmp_path, cache=True)
    with pytest.warns(UserWarning, match="eel/z.png"):
        same(load(root, tmp_path, cache=True, on_error="skip"), clean)


def test_dangling_link_and_link_loop_follow_on_error(tree, tmp_path):
    root, clean = tree
    os.symlink(tmp_path / "gone.png", root / "dog" / "gone.png")
    os.symlink("loop.png", root / "eel" / "loop.png")  # a link to itself
    with pytest.raises(ValueError, match=r"2 entries .*dog/gone.png: cannot be read"):
        load(root, tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        same(load(root, tmp_path, on_error="skip"), clean)
    text = " ".join(str(w.message) for w in caught)
    assert "dog/gone.png" in text and "eel/loop.png" in text


@pytest.mark.parametrize("target", ["cat", ".", ".."])
def test_class_folders_that_overlap_are_refused(tree, tmp_path, target):
    root, _ = tree
    os.symlink(target, root / "zzz")  # another name for cat, for the root, for the root's parent
    with pytest.raises(ValueError, match="zzz"):
        load(root, tmp_path, on_error="skip")


def test_class_folder_may_be_a_link_to_a_folder_elsewhere(tree, tmp_path):
    root, clean = tree
    os.rename(root / "eel", tmp_path / "eel-elsewhere")
    os.symlink(tmp_path / "eel-elsewhere", root / "eel")
    same(load(root, tmp_path), clean)


def test_file_swapped_for_a_pipe_after_the_scan_is_not_opened_blocking(tmp_path):
    fifo = tmp_path / "late.png"
    os.mkfifo(fifo)
    with deadline(), pytest.raises(OSError, match="not a regular file"):
        folder_reader._open_regular(str(fifo))
    with deadline(), pytest.raises(OSError, match="not a regular file"):
        folder_reader._decode(str(fifo), (6, 5), "crop", "RGB")


def test_link_loop_beside_the_class_folders_is_not_a_class(tree, tmp_path):
    root, clean = tree
    os.symlink("knot", root / "knot")
    same(load(root, tmp_path), clean)


# ------------------------------------------------------------------ decoders chosen by the extensions
EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 6 5\n%%EndComments\n"
       b"0 0 moveto 6 5 lineto stroke\nshowpage\n%%EOF\n")


@pytest.fixture
def eps_spy(monkeypatch):
    """Records every time Pillow's EPS plugin starts reading a file (it would run Ghostscript on load)."""
    from PIL import EpsImagePlugin, Image, UnidentifiedImageError

    calls = []

    def spy(self):
        calls.append(getattr(self.fp, "name", self.fp))
        raise SyntaxError("EPS refused by the test")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", spy)
    # sanity: without a format list, Pillow does pick EPS for this content
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(EPS))
    assert len(calls) == 1
    calls.clear()
    return calls


def test_eps_content_named_png_is_never_handed_to_the_eps_plugin(tree, tmp_path, eps_spy):
    root, clean = tree
    (root / "cat" / "x.png").write_bytes(EPS)
    with pytest.raises(ValueError, match=r"cat/x.png"):
        load(root, tmp_path, cache=False)
    with pytest.warns(UserWarning, match=r"cat/x.png"):
        same(load(root, tmp_path, cache=False, on_error="skip"), clean)
    assert eps_spy == []


def test_content_of_another_listed_format_still_decodes(tree, tmp_path):
    root, clean = tree
    os.rename(root / "dog" / "img002.png", root / "dog" / "img002.jpg")  # PNG bytes, .jpg ending: PNG is listed
    ds = load(root, tmp_path, cache=False)
    i = list(ds.files).index(os.path.join("dog", "img002.jpg"))
    assert np.array_equal(ds.x[i], clean.x[list(clean.files).index(os.path.join("dog", "img002.png"))])
    # with only .jpg listed, PNG is not promised: the same file is refused
    from PIL import UnidentifiedImageError

    formats = folder_reader._pillow_formats((".jpg",))
    assert formats == ("JPEG",)
    with pytest.raises(UnidentifiedImageError):
        folder_reader._decode(str(root / "dog" / "img002.jpg"), (6, 5), "crop", "RGB", formats)


@pytest.mark.parametrize("ext,match", [(".eps", "Ghostscript"), (".ps", "Ghostscript"), (".xyz", "no format")])
def test_extensions_that_promise_no_safe_format_are_refused(tree, tmp_path, ext, match):
    root, _ = tree
    with pytest.raises(ValueError, match=f"extensions: .*{match}"):
        load(root, tmp_path, extensions=[".png", ext])
