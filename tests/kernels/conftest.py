"""Kernel tests run Triton's CPU interpreter on CPU tensors.

Triton decides at ``@triton.jit`` decoration time (older versions: at import) whether a kernel is
interpreted, so ``TRITON_INTERPRET=1`` is set here, before any test module of this folder imports
``lrdecay.kernels.sgd_step``. If some earlier test in the same process already imported that module
uninterpreted, it is dropped so that it is re-decorated under the interpreter.
"""

import os
import sys
from pathlib import Path

os.environ["TRITON_INTERPRET"] = "1"
sys.modules.pop("lrdecay.kernels.sgd_step", None)
sys.modules.pop("lrdecay.kernels.stacked_sgd_step", None)

# The shared test helpers live one folder up (tests/support/).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
