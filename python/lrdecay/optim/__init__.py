"""``FusedSGD``: torch.optim.SGD's exact semantics, one Triton launch per step, device-side LR schedules;
``StackedSGD``: the same for the K members of a stacked model, one launch for all of them.

The package is laid out like ``torch.optim``: thin optimizer classes (:mod:`.sgd`, :mod:`.stacked`) that
own the state, on top of the update as functions per backend (:mod:`.functional`), the flat parameter
layout (:mod:`.layout`), the schedule codes and step counter on the device (:mod:`.lr_table`) and the
argument checks both share (:mod:`._checks`). :mod:`.registry` names the schedules a training run can
use.

Backends:

- ``"triton"``: the parameters of each (param group, device, dtype) are re-homed into one contiguous
  buffer (``p.data`` becomes a view of it), their gradients into another (``p.grad`` is a view, so autograd
  accumulates in place) and the momentum buffers into a third, so a step is one kernel launch reading
  p, g, m and writing p, m (20 bytes per fp32 parameter). Runs on CUDA, and on CPU tensors under
  ``TRITON_INTERPRET=1`` (how CI tests it).
- ``"torch"``: torch's multi-tensor (``torch._foreach_*``) path, the same semantics; CPU, or no Triton.
  For float32 CPU parameters the same arithmetic runs in one Rust pass per parameter
  (``lrdecay._native.sgd_step_f32_ptrs``), bit-equal to the foreach ops and several times less memory traffic.
- ``"auto"``: ``"triton"`` when every parameter is on CUDA and Triton is installed, else ``"torch"``.

With ``schedule=None`` the LR is ``group['lr']``, so every ``torch.optim.lr_scheduler`` drives it. With a
:class:`lrdecay.schedules.Schedule` the LR of step ``t`` is ``schedule.lr_at(t, group['initial_lr'])``:
on the triton backend computed inside the kernel from an int64 step counter on the device (no host sync;
``step()`` can be captured in a CUDA graph and replayed, the LR advancing on every replay), and
``group['lr']`` is kept at the LR the next step will use, from a host-side mirror of the counter.

Differences from torch.optim.SGD, by design:

- triton backend: ``zero_grad()`` zeroes the flat gradient buffer in place whatever ``set_to_none`` says
  (``None`` would break the views). A parameter that then gets no gradient in a backward pass has a zero
  gradient, not ``None``, and is stepped (weight decay, momentum); set ``p.grad = None`` yourself to skip
  it. Gradients assigned from outside (``p.grad = tensor``) are copied into the flat buffer at the next
  step, which is correct but slower.
- triton backend: create the optimizer after moving the model (``model.to(...)`` replaces ``p.data``);
  a replaced parameter storage is detected and raises.
- Sparse gradients and tensor learning rates are not supported.
- Precision: float32 and float64 parameters get torch.optim.SGD's bits on every backend (float64 is
  computed in float64). On the triton backend float16 and bfloat16 parameters are computed in float32 and
  rounded once on store, where torch rounds after every operation, so they differ from torch in the last
  bits. bfloat16 on the triton backend has not been checked on a GPU yet: Triton's CPU interpreter, which
  CI runs, truncates float32 to bfloat16 instead of rounding, so it cannot judge it.
- After replaying a captured step ``n`` times, call :meth:`FusedSGD.sync_step_count` (one host sync) to
  refresh ``step_count`` and ``group['lr']``; ``state_dict()`` does this itself.
"""

from lrdecay.optim._checks import SparseGradientError
from lrdecay.optim.layout import rehome_flat
from lrdecay.optim.sgd import FusedSGD
from lrdecay.optim.stacked import StackedSGD

__all__ = ["FusedSGD", "SparseGradientError", "StackedSGD", "rehome_flat"]
