"""Repository-level pytest configuration.

`pytest` alone runs the test suite; `pytest --benchmark-only` runs every benchmark in `benches/` (and only
those); `pytest benches --benchmark-disable` runs each benchmark once as a smoke test (what CI does).
"""

from pathlib import Path

_BENCHES = Path(__file__).parent / "benches"


def _benches_requested(config) -> bool:
    if config.getoption("benchmark_only", default=False):
        return True
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == _BENCHES or _BENCHES in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    if collection_path == _BENCHES and not _benches_requested(config):
        return True
    return None
