"""Kernel tests run Triton's CPU interpreter on CPU tensors.

Triton decides at ``@triton.jit`` decoration time (older versions: at import) whether a kernel is
interpreted, so ``TRITON_INTERPRET=1`` is set here, before any test module of this folder imports
``lrdecay.kernels.sgd_step``. If some earlier test in the same process already imported the kernel
modules uninterpreted, they are dropped so that they are re-decorated under the interpreter.
"""

import os
import sys
from pathlib import Path

os.environ["TRITON_INTERPRET"] = "1"
for _name in [m for m in sys.modules if m.startswith("lrdecay.kernels.")]:
    sys.modules.pop(_name)

# The shared test helpers live one folder up (tests/support/).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
