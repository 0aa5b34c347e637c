"""`pytest` runs the test suite and not the benchmarks; `pytest --benchmark-only` runs every benchmark and
nothing else; `pytest benches` runs the benchmarks (a regression: plain `pytest` once ran the timed benchmarks).

Checked on a miniature copy of the repository's layout, with the repository's own conftest.py and pytest
settings, so each pytest run takes a second instead of importing the whole suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11 (the settings are read from pyproject.toml)

pytestmark = pytest.mark.slow  # pytest in pytest: seconds per run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("layout")
    shutil.copy(ROOT / "conftest.py", root / "conftest.py")
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]

    def toml_value(v):
        return "[" + ", ".join(f'"{x}"' for x in v) + "]" if isinstance(v, list) else f'"{v}"'

    (root / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in settings.items())
    )
    (root / "tests").mkdir()
    (root / "tests" / "test_unit.py").write_text("def test_unit():\n    pass\n")
    (root / "benches").mkdir()
    (root / "benches" / "bench_speed.py").write_text("def test_speed(benchmark):\n    benchmark(sum, [1, 2])\n")
    return root


def _collected(repo, *args):
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                       cwd=repo, capture_output=True, text=True, timeout=120)
    return sorted(line.split("::")[0] for line in r.stdout.splitlines() if "::" in line)


def test_plain_pytest_is_the_test_suite(repo):
    assert _collected(repo) == ["tests/test_unit.py"]


def test_benchmark_only_is_every_benchmark(repo):
    assert _collected(repo, "--benchmark-only") == ["benches/bench_speed.py"]


def test_naming_a_folder_or_file_collects_it(repo):
    assert _collected(repo, "benches", "--benchmark-disable") == ["benches/bench_speed.py"]
    assert _collected(repo, "benches/bench_speed.py") == ["benches/bench_speed.py"]
    assert _collected(repo, "tests") == ["tests/test_unit.py"]
