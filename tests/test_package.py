"""The installed package is whole and names one version.

CI runs the whole suite against the wheel installed in a fresh virtual environment (``.ci/run`` sets
``LRDECAY_TEST_INSTALLED=1``; tests/conftest.py then refuses to run against a source tree), so a file
left out of the wheel fails here, and in the tests that use it."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

import lrdecay

REPO = Path(__file__).resolve().parents[1]


def _cargo_version() -> str:
    """The workspace version in Cargo.toml: the one place the version is written."""
    text = (REPO / "Cargo.toml").read_text()
    section = text.split("[workspace.package]", 1)[1].split("\n[", 1)[0]
    return re.search(r'^version\s*=\s*"([^"]+)"', section, re.M).group(1)


@pytest.mark.slow
def test_version_comes_from_cargo_everywhere():
    version = _cargo_version()
    assert lrdecay.__version__ == version
    assert importlib.metadata.version("lrdecay") == version
    out = subprocess.run([sys.executable, "-m", "lrdecay.cli", "--version"], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == f"lrdecay {version}"


@pytest.mark.slow
def test_console_script_reports_the_version():
    scripts = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "lrdecay"]
    assert [e.value for e in scripts] == ["lrdecay.cli:main"]
    script = Path(sys.executable).with_name("lrdecay")
    if script.exists():  # the environment's own script (absent when run with another interpreter)
        out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True).stdout
        assert out.strip() == f"lrdecay {lrdecay.__version__}"


def test_package_files_ship_beside_the_code():
    pkg = resources.files("lrdecay")
    for name in ["py.typed", "_native.pyi", "kernels/__init__.py", "kernels/sgd_step.py",
                 "experiments/preregistered/patterns.toml"]:
        assert pkg.joinpath(name).is_file(), f"lrdecay/{name} is missing from the installed package"
    native = Path(lrdecay._native.__file__)
    assert native.parent == Path(lrdecay.__file__).parent and native.name.startswith("_native.")
    # The kernels are namespaced: importing them gives lrdecay.kernels, not a top-level 'kernels'.
    import lrdecay.kernels.sgd_step as k

    assert Path(k.__file__).parent.parent == Path(lrdecay.__file__).parent


def test_distribution_lists_its_files():
    dist = importlib.metadata.distribution("lrdecay")
    files = {str(f).replace("\\", "/") for f in dist.files or []}
    if any(f.startswith("lrdecay/") for f in files):  # a wheel install (an editable one lists a .pth)
        for name in ["py.typed", "_native.pyi", "kernels/sgd_step.py", "__init__.py",
                     "experiments/preregistered/patterns.toml"]:
            assert f"lrdecay/{name}" in files
