"""Fixtures shared by the test modules, and the installed-package guard used by CI."""

import os
import sysconfig
from pathlib import Path

import pytest


def pytest_configure(config):
    """With ``LRDECAY_TEST_INSTALLED=1`` (set by .ci/run) refuse to test anything but an installed,
    non-editable lrdecay: the suite must exercise exactly the files the wheel ships."""
    if os.environ.get("LRDECAY_TEST_INSTALLED") != "1":
        return
    import lrdecay

    where = Path(lrdecay.__file__).resolve().parent
    site = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    if where.parent not in site:
        raise pytest.UsageError(
            f"LRDECAY_TEST_INSTALLED=1 but lrdecay was imported from {where}, not from site-packages "
            f"({', '.join(map(str, sorted(site)))}): run pytest outside the source tree, against the wheel"
        )


@pytest.fixture
def one_torch_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread is both faster and bitwise stable."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
