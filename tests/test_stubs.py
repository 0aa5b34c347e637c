"""The checked-in stubs ``_native.pyi`` must describe the compiled module: ``mypy.stubtest`` compares
every name, signature (parameter names, kinds, defaults), class and constant against the built module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

pytestmark = pytest.mark.slow  # mypy.stubtest: tens of seconds

import lrdecay  # noqa: E402

STUB = Path(lrdecay.__file__).with_name("_native.pyi")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One working folder (and so one .mypy_cache) for both runs: the second reuses numpy's analysis."""
    return tmp_path_factory.mktemp("stubtest")


def _stubtest(cwd: Path, mypypath: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if mypypath is not None:
        env["MYPYPATH"] = str(mypypath)
    return subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "lrdecay._native", "--mypy-config-file", os.devnull],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def test_stubs_match_the_compiled_module(workdir):
    r = _stubtest(workdir)
    assert r.returncode == 0, r.stdout + r.stderr


def test_stubtest_catches_a_stale_stub(workdir, tmp_path):
    # The check above can fail: the same stub with one parameter renamed and one function missing.
    pkg = tmp_path / "stubs" / "lrdecay"
    pkg.mkdir(parents=True)
    (pkg / "__init__.pyi").write_text("")
    text = STUB.read_text()
    assert "def group_sizes(weights: list[float], n: int)" in text
    text = text.replace("def group_sizes(weights: list[float], n: int)", "def group_sizes(weights: list[float], count: int)")
    text = text.replace("    def end_epoch(self) -> None: ...\n", "")
    (pkg / "_native.pyi").write_text(text)
    r = _stubtest(workdir, tmp_path / "stubs")
    assert r.returncode != 0
    assert "group_sizes" in r.stdout and "end_epoch" in r.stdout, r.stdout
