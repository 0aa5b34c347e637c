"""Repository-level pytest configuration.

`pytest` alone runs the test suite; `pytest --benchmark-only` runs every benchmark in `benches/` (and only
those); `pytest benches --benchmark-disable` runs each benchmark once as a smoke test (what CI does).
"""

from pathlib import Path

_ROOT = Path(__file__).parent
_BENCHES = _ROOT / "benches"
_TESTS = _ROOT / "tests"


def _paths_given(config) -> list[Path]:
    """The paths typed on the command line. Not ``config.args``: with no paths given, that holds the
    testpaths (tests and benches), which would always "ask" for the benchmarks."""
    root = Path(config.invocation_params.dir)
    args = [a for a in config.invocation_params.args if not a.startswith("-")]
    return [(root / a.split("::")[0]).resolve() for a in args if (root / a.split("::")[0]).exists()]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def pytest_ignore_collect(collection_path, config):
    given = _paths_given(config)
    if _inside(collection_path, _BENCHES):
        wanted = config.getoption("benchmark_only", default=False) or any(_inside(p, _BENCHES) for p in given)
        return None if wanted else True
    if _inside(collection_path, _TESTS) and config.getoption("benchmark_only", default=False) and not given:
        return True  # --benchmark-only alone: the benchmarks, without collecting (and skipping) every test
    return None
