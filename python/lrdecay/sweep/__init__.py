"""Many runs at once: sweeps over settings and seeds, stacked on one device, across processes or on Ray.

A sweep is a base :class:`~lrdecay.trainer.TrainConfig`, axes (a grid, and/or a list of named settings)
and seeds (:mod:`lrdecay.sweep.spec`); each run gets a stable id (a hash of its resolved config) and a
folder ``DIR/runs/<id>/``; one tidy table (``table.csv``, and ``table.parquet`` with pyarrow) holds a row
per run per epoch, and ``sweep.json`` is the manifest (:mod:`lrdecay.sweep.store`). Rerunning skips
finished runs and resumes unfinished ones from their checkpoints; Ctrl-C stops cleanly.

Python API (what ``lrdecay sweep`` and the experiments use)::

    from lrdecay import TrainConfig
    from lrdecay.sweep import run_sweep, load_spec

    configs = [TrainConfig(schedule=s, lr=lr, seed=k, epochs=30, width=64)
               for s, lr in (("multistep", 0.1), ("constant", 0.1), ("constant", 0.01)) for k in range(3)]
    result = run_sweep(configs, "sweeps/base", executor="auto")   # or a SweepSpec / spec file
    result[configs[0]].history            # per-epoch records of that run (as the trainer logs them)
    result[configs[0]].ledger_summary     # the ledger's per-epoch summary (lists), None without a ledger
    result[configs[0]].snapshots()        # {epoch: state_dict} when the config asks for snapshots
    result.records()                      # the tidy table as dicts; result.frame() as a pandas DataFrame
    result.failed                         # runs that raised, each with .error (the traceback)
    result.missing                        # runs not in the table: failed, or stopped part-way

``run_sweep(runs, out_dir, *, executor="auto"|"stack"|"process"|"ray", workers=None, address=None,
stack=True, max_members=64, checkpoint_seconds=30, retries=2, progress=True, extend=False) -> SweepResult``.

Executors (:mod:`lrdecay.sweep.executors`): ``stack`` trains in this process; ``process`` in a local pool
(one torch thread per worker on the CPU, one worker per GPU on a multi-GPU machine); ``ray`` as Ray tasks,
local or on a cluster (``pip install 'lrdecay[ray]'``). With ``stack=True`` (the default) runs that share
an architecture, data shapes, batch size and epochs train as the members of one stacked model
(:mod:`lrdecay.trainer.stacked`): each member keeps its own init, data, label noise, data order,
optimizer settings and schedule, and its numbers equal its solo run.

Plots from the table: :func:`lrdecay.sweep.plots.regime_map`, :func:`lrdecay.sweep.plots.run_curves`.
"""

from importlib import import_module as _import_module

_LAZY = {
    "run_sweep": "lrdecay.sweep.engine",
    "load_sweep": "lrdecay.sweep.engine",
    "SweepResult": "lrdecay.sweep.engine",
    "RunOutcome": "lrdecay.sweep.engine",
    "RunsMissing": "lrdecay.sweep.engine",
    "SweepSpec": "lrdecay.sweep.spec",
    "Run": "lrdecay.sweep.spec",
    "SpecError": "lrdecay.sweep.spec",
    "load_spec": "lrdecay.sweep.spec",
    "run_id": "lrdecay.sweep.spec",
    "regime_map": "lrdecay.sweep.plots",
    "run_curves": "lrdecay.sweep.plots",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'lrdecay.sweep' has no attribute {name!r}")
    value = getattr(_import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
