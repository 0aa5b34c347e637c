"""Running out of memory in the Rust core is a MemoryError, not an aborted interpreter.

Each check runs in a subprocess whose address space is capped (``RLIMIT_AS``) below what the request
needs; the child must finish normally, report MemoryError, and keep working afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

resource = pytest.importorskip("resource")  # POSIX only

LIMIT = 4_000_000_000  # bytes of address space: the failing report's `ulimit -v 4000000`


def _run_capped(code: str) -> subprocess.CompletedProcess:
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))

    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], preexec_fn=cap, capture_output=True, text=True,
        timeout=300, env={"RAYON_NUM_THREADS": "2", "PATH": ""},
    )


@pytest.mark.slow
def test_allocation_failures_raise_memory_error_and_the_process_lives_on():
    r = _run_capped(
        """
        import numpy as np
        from lrdecay import Ledger
        from lrdecay.data import pattern_dataset

        led = Ledger(2**31 - 1)          # ~0.5 GB of state: fits
        try:
            led.times_correct            # 8 GB of int32: does not
        except MemoryError as e:
            print("ledger: MemoryError:", e)
        # 8 patterns of 2**28 centre coordinates (1 GiB each) cannot all be held
        patterns = [{"name": f"p{i}", "dim": 2**14, "clusters_per_class": 2**13, "radius": 1.0, "spread": 1.0}
                    for i in range(8)]
        try:
            pattern_dataset(1, n_classes=2, patterns=patterns, groups=[{"name": "g", "patterns": [p["name"] for p in patterns]}])
        except MemoryError as e:
            print("data: MemoryError:", e)
        small = Ledger(10)
        small.record_epoch(np.ones(10, bool))
        print("still working:", int(small.times_correct.sum()))
        """
    )
    assert r.returncode == 0, f"exit {r.returncode}: {r.stderr[-3000:]}"
    out = r.stdout
    assert "ledger: MemoryError: out of memory: could not allocate 8589934588 bytes" in out, out
    assert "data: MemoryError: out of memory" in out, out
    assert "still working: 10" in out, out
