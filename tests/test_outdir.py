"""Output folders: an existing run folder needs resume or overwrite; one writer per folder;
nothing of an old run mixed into a new one; a bad argument leaves no folder behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from lrdecay._outdir import MARKER, OutputDir, OutputDirBusy, OutputDirError
from lrdecay.trainer import Trainer, TrainConfig, read_jsonl, train

from support import strip

pytestmark = pytest.mark.usefixtures("one_torch_thread")

posix_only = pytest.mark.skipif(os.name != "posix", reason="the folder lock is flock (POSIX)")


def _snapshot(folder):
    """name -> bytes of every file in a folder (the marker's content aside: it names its last holder)."""
    return {n: open(os.path.join(folder, n), "rb").read() for n in sorted(os.listdir(folder)) if n != MARKER}


# ---------------------------------------------------------------------------------------- the rule


def test_new_or_empty_folder_is_claimed_and_marked(tmp_path):
    (tmp_path / "empty").mkdir()
    for path in (tmp_path / "new" / "deep", tmp_path / "empty"):
        with OutputDir(path, kind="test") as out:
            assert out.held and os.path.isfile(os.path.join(path, MARKER))
            (path / "result.txt").write_text("x")
        assert not out.held
        assert (path / "result.txt").read_text() == "x" and os.path.isfile(os.path.join(path, MARKER))
        os.unlink(path / "result.txt")


def test_folder_created_and_left_empty_is_removed(tmp_path):
    OutputDir(tmp_path / "unused", kind="test").release()
    assert not (tmp_path / "unused").exists()
    with OutputDir(tmp_path, kind="test"):
        pass
    assert tmp_path.exists()  # it existed before: never removed


def test_existing_content_needs_resume_or_overwrite(tmp_path):
    (tmp_path / "log.jsonl").write_text("old run\n")
    before = _snapshot(tmp_path)
    with pytest.raises(OutputDirError, match=r"already holds .*log\.jsonl.*--resume.*--overwrite"):
        OutputDir(tmp_path, kind="test")
    assert _snapshot(tmp_path) == before
    with OutputDir(tmp_path, kind="test", resume=True):
        assert _snapshot(tmp_path) == before  # resume keeps everything
    with pytest.raises(OutputDirError, match="exclude each other"):
        OutputDir(tmp_path, kind="test", resume=True, overwrite=True)
    with pytest.raises(OutputDirError, match="does not write"):  # only declared outputs are deleted
        OutputDir(tmp_path, kind="test", overwrite=True)
    with OutputDir(tmp_path, kind="test", overwrite=True, outputs=["*.jsonl"]):
        assert _snapshot(tmp_path) == {}


def test_overwrite_never_deletes_what_lrdecay_did_not_write(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    (tmp_path / "log.jsonl").write_text("x")
    before = sorted(os.listdir(tmp_path))
    # a refused claim leaves no marker behind: the folder does not become "lrdecay's" by being refused
    for _ in range(2):
        with pytest.raises(OutputDirError):
            OutputDir(tmp_path, kind="test")
        with pytest.raises(OutputDirError, match="does not write.*thesis.tex"):
            OutputDir(tmp_path, kind="test", overwrite=True, outputs=["log.jsonl", "*.png"])
        assert sorted(os.listdir(tmp_path)) == before
    # nor after it held the folder (resume): overwrite still only deletes the declared outputs
    OutputDir(tmp_path, kind="test", resume=True).release()
    with pytest.raises(OutputDirError, match="thesis.tex"):
        OutputDir(tmp_path, kind="test", overwrite=True, outputs=["log.jsonl", "*.png"])
    assert (tmp_path / "thesis.tex").read_text() == "precious"
    # a folder from before folders were marked, holding only the declared outputs, may be replaced
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "log.jsonl").write_text("x")
    (legacy / "loss.png").write_bytes(b"png")
    with OutputDir(legacy, kind="test", overwrite=True, outputs=["log.jsonl", "*.png"]):
        assert _snapshot(legacy) == {}


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputDirError, match="is a file"):
        OutputDir(tmp_path / "f", kind="test")


@posix_only
def test_one_writer_per_folder_in_this_process(tmp_path):
    first = OutputDir(tmp_path, kind="train")
    with pytest.raises(OutputDirBusy, match=rf"another lrdecay process \(train, pid {os.getpid()} on"):
        OutputDir(tmp_path, kind="train", resume=True)
    first.release()
    OutputDir(tmp_path, kind="train", resume=True).release()


_HOLDER = """
import sys, time
from lrdecay._outdir import OutputDir
out = OutputDir(sys.argv[1], kind="holder")
print("holding", flush=True)
time.sleep(600)
"""


@posix_only
def test_one_writer_per_folder_across_processes_and_no_stale_lock(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "holding"
        with pytest.raises(OutputDirBusy, match=rf"\(holder, pid {proc.pid} on"):
            OutputDir(tmp_path, kind="test", resume=True)
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # a killed writer ...
        proc.wait()
    OutputDir(tmp_path, kind="test", resume=True).release()  # ... leaves no lock behind


# ---------------------------------------------------------------------------------------- the trainer


def _data(n=96):
    rng = np.random.default_rng(0)
    return {"x": rng.normal(size=(n, 6)).astype(np.float32), "y": rng.integers(0, 3, n), "n_classes": 3}


def _config(**kw):
    base = dict(epochs=2, batch_size=32, optimizer="torch", ledger=True, width=8, depth=1, milestones=[1],
                device="cpu", progress=False, plots=True)
    return TrainConfig(**{**base, **kw})


@pytest.mark.slow
def test_training_into_a_finished_run_is_refused_and_changes_nothing(tmp_path):
    # Regression: a second `train --out DIR` emptied log.jsonl at once and mixed the two runs' files.
    train(_config(), dataset=_data(), out_dir=tmp_path)
    before = _snapshot(tmp_path)
    assert {"config.json", "log.jsonl", "log.csv", "checkpoint.pt", "ledger.npz", "loss.png"} <= set(before)
    with pytest.raises(OutputDirError, match="already holds a run"):
        train(_config(seed=1), dataset=_data(), out_dir=tmp_path)
    assert _snapshot(tmp_path) == before


@pytest.mark.slow
def test_overwrite_leaves_only_the_new_run(tmp_path):
    train(_config(epochs=3, checkpoint_every=1), dataset=_data(), out_dir=tmp_path / "a")
    (tmp_path / "a" / "stage1.pt").write_bytes(b"an extra checkpoint a callback wrote")
    r = train(_config(ledger=False, plots=False), dataset=_data(), out_dir=tmp_path / "a", overwrite=True)
    train(_config(ledger=False, plots=False), dataset=_data(), out_dir=tmp_path / "b")
    assert sorted(_snapshot(tmp_path / "a")) == sorted(_snapshot(tmp_path / "b")) == [
        "checkpoint.pt", "config.json", "log.csv", "log.jsonl"]
    assert strip(read_jsonl(tmp_path / "a" / "log.jsonl")) == strip(read_jsonl(tmp_path / "b" / "log.jsonl"))
    assert len(r.history) == 2


@pytest.mark.slow
def test_two_trainers_on_one_folder(tmp_path):
    # Regression: two `lrdecay train` into one folder both exited 0 with their files mixed.
    first = Trainer(_config(), dataset=_data(), out_dir=tmp_path)
    with pytest.raises(OutputDirBusy, match="one writer per output folder"):
        Trainer(_config(seed=3), dataset=_data(), out_dir=tmp_path, overwrite=True)
    first.fit()
    assert TrainConfig.from_json(str(tmp_path / "config.json")) == _config()


@pytest.mark.slow
def test_resume_from_a_run_folder(tmp_path):
    full = train(_config(epochs=3), dataset=_data(), out_dir=tmp_path / "full")
    part = Trainer(_config(epochs=3), dataset=_data(), out_dir=tmp_path / "part")
    part.run_epoch()
    part.save_checkpoint()
    part.close()
    resumed = train(_config(epochs=3), dataset=_data(), out_dir=tmp_path / "part", resume=tmp_path / "part")
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]
    with pytest.raises(ValueError, match=r"holds no checkpoint\.pt .*Ctrl-C"):
        train(_config(), dataset=_data(), resume=tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        train(_config(), dataset=_data(), resume=tmp_path / "nope")


def test_a_bad_argument_leaves_no_folder(tmp_path):
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            train(_config(device="cuda"), dataset=_data(), out_dir=tmp_path / "run")
    with pytest.raises(ValueError):
        train(_config(batch_size=1000), dataset=_data(), out_dir=tmp_path / "run")
    with pytest.raises(ValueError, match="exclude each other"):
        train(_config(), dataset=_data(), out_dir=tmp_path / "run", resume=tmp_path, overwrite=True)
    assert not (tmp_path / "run").exists()


@posix_only
@pytest.mark.slow
def test_a_second_cli_writer_gets_a_clear_error(tmp_path):
    holder = textwrap.dedent(
        f"""
        import time
        import numpy as np
        from lrdecay.trainer import Trainer, TrainConfig
        rng = np.random.default_rng(0)
        data = {{"x": rng.normal(size=(64, 6)).astype(np.float32), "y": rng.integers(0, 3, 64), "n_classes": 3}}
        t = Trainer(TrainConfig(epochs=1, batch_size=32, device="cpu", width=8, depth=1, progress=False), dataset=data,
                    out_dir={str(tmp_path)!r})
        print("holding", flush=True)
        time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "holding"
        r = subprocess.run(
            [sys.executable, "-m", "lrdecay.cli", "train", "--epochs", "1", "--n-train", "64", "--n-test", "0", "--batch-size", "32",
             "--width", "8", "--device", "cpu", "--out", str(tmp_path), "--overwrite"],
            capture_output=True, text=True, timeout=120,
        )
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert r.returncode == 2
    assert f"being written by another lrdecay process (train, pid {proc.pid}" in r.stderr


_RACER = """
import os, sys, time
from lrdecay._outdir import OutputDir, OutputDirBusy, OutputDirError
folder, go, done = sys.argv[1:4]
while not os.path.exists(go):
    time.sleep(0.001)
try:
    out = OutputDir(folder, kind="racer")
except OutputDirBusy:
    print("busy", flush=True)
    sys.exit()
print("held", flush=True)
while not os.path.exists(done):
    time.sleep(0.01)
"""


@posix_only
@pytest.mark.slow
def test_racing_writers_one_wins(tmp_path):
    # Several processes claim one new folder at the same moment: exactly one holds it.
    folder, go, done = tmp_path / "out", tmp_path / "go", tmp_path / "done"
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(folder), str(go), str(done)],
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        time.sleep(0.5)
        go.write_text("")
        results = sorted(p.stdout.readline().strip() for p in procs)
    finally:
        done.write_text("")
        for p in procs:
            p.wait(timeout=60)
    assert results == ["busy", "busy", "busy", "held"]
