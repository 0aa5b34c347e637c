"""The experiment protocol: one :class:`Experiment` record per claim and one runner for all of them.

An experiment says *what* it needs and *how* it judges; the runner does everything else:

1. **Settings.** ``Experiment.presets[preset]`` (plus overrides) is resolved and every key checked: a key
   must be a :class:`~lrdecay.trainer.TrainConfig` field, one of the runner's own keys (``seeds``,
   ``threads``) or one of the experiment's declared ``options``; anything else is an error, never silently
   dropped.
2. **Runs.** ``Experiment.runs(settings, seed, done)`` returns the training runs it needs for one seed as
   ``{label: TrainConfig}``. ``done`` holds the runs already trained, so a run may depend on another
   (full-batch GD decays where the SGD run had its decays): the runner asks again until nothing new is
   requested. Runs are keyed by their whole config, so experiments that need the same run (the shared
   lrDecay / large / small runs) share one training; finished runs are stored in ``out_dir/runs/`` so an
   interrupted reproduction resumes where it stopped.
3. **Numbers.** ``Experiment.measure(settings, seed, runs)`` turns one seed's runs into named numbers;
   they become ``per_seed`` lists, and ``Experiment.judge(per_seed)`` applies the rule (``rule``, words) to
   them. ``verdict_keys`` are the numbers the rule reads (shown in the report's verdict table).
4. **Presentation.** ``Experiment.present(settings, per_seed, runs_by_seed, out_dir)`` returns the table,
   curves, plots and notes of the report section.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence


from lrdecay.experiments.common import Verdict, finish_result, log

__all__ = [
    "Experiment",
    "RunOutput",
    "RUNNER_KEYS",
    "resolve_settings",
    "config_from",
    "run_key",
    "run_experiments",
    "execute",
    "runs_needed",
]

#: Settings keys the runner itself reads (not TrainConfig fields, not experiment options).
RUNNER_KEYS = frozenset({"seeds", "threads"})


@dataclass(frozen=True)
class Experiment:
    """One claim of the paper, as the runner sees it.

    Attributes:
        name, claim, title, claim_text: identity and the claim in words.
        presets: preset name → settings (TrainConfig fields, runner keys, ``options``).
        options: names of the experiment's own settings keys (besides TrainConfig fields), with a short
            description each.
        rule: the verdict rule in words; ``judge(per_seed) -> Verdict`` implements it on per-seed numbers.
        verdict_keys: the per-seed numbers the rule reads.
        runs: ``(settings, seed, done) -> {label: TrainConfig}`` (see the module docstring).
        measure: ``(settings, seed, runs) -> {metric: value}`` for one seed; ``runs`` maps labels to
            :class:`RunOutput`.
        present: ``(settings, per_seed, runs_by_seed, out_dir) -> (table, curves, plots, notes)``.
        setup: ``(settings) -> str``, the setup paragraph of the report.
        applies_to: data kinds the experiment applies to (``"patterns"``, ``"images"``).
    """

    name: str
    claim: str
    title: str
    claim_text: str
    presets: Mapping[str, Mapping[str, Any]]
    rule: str
    judge: Callable[[Mapping[str, Sequence[Any]]], Verdict]
    verdict_keys: tuple[str, ...]
    runs: Callable[..., dict]
    measure: Callable[..., dict]
    present: Callable[..., tuple]
    setup: Callable[[Mapping[str, Any]], str]
    options: Mapping[str, str] = field(default_factory=dict)
    applies_to: tuple[str, ...] = ("patterns",)


@dataclass
class RunOutput:
    """What the experiments keep of one training run: its config, per-epoch history, model snapshots
    (CPU state dicts at ``config.snapshot_epochs``), the ledger's per-epoch summary, and its wall time."""

    config: Any
    history: list[dict]
    snapshots: dict[int, dict]
    ledger_summary: dict
    wall_time: float
    cached: bool = False  # read back from out_dir/runs/ instead of trained by this call


# ============================================================================ settings
def _config_fields() -> set[str]:
    from lrdecay.trainer import TrainConfig

    return {f.name for f in dataclasses.fields(TrainConfig)}


def resolve_settings(
    exp: Experiment,
    preset: str,
    *,
    seeds: Sequence[int] | int | None = None,
    overrides: Mapping[str, Any] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """``exp.presets[preset]`` with ``overrides``, ``seeds`` and ``device`` applied, every key checked."""
    if not isinstance(preset, str) or preset not in exp.presets:
        raise ValueError(f"preset must be one of {sorted(exp.presets)}, got {preset!r}")
    settings = copy.deepcopy(dict(exp.presets[preset]))
    allowed = _config_fields() | RUNNER_KEYS | set(exp.options)
    for source, keys in (("preset " + repr(preset), settings), ("overrides", overrides or {})):
        unknown = sorted(set(keys) - allowed)
        if unknown:
            raise ValueError(
                f"{exp.name}: unknown setting(s) {unknown} in {source}; accepted: TrainConfig fields, "
                f"{sorted(RUNNER_KEYS)} and the experiment's options {sorted(exp.options)}"
            )
    settings.update(copy.deepcopy(dict(overrides or {})))
    settings["seeds"] = resolve_seeds(settings.get("seeds"), seeds)
    if device is not None:
        settings["device"] = device
    return settings


def resolve_seeds(default: Sequence[int] | None, seeds: Sequence[int] | int | None) -> list[int]:
    """``seeds`` as a list: None → ``default``, an int k → ``range(k)``, a list → itself (each >= 0)."""
    if seeds is None:
        seeds = default
    if isinstance(seeds, bool):
        raise TypeError(f"seeds must be an int >= 1 or a list of ints >= 0, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be a count >= 1 or a list of ints >= 0, got {seeds}")
        seeds = list(range(seeds))
    seeds = list(seeds or [])
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of ints >= 0, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    return seeds


#: The fields each host-side schedule reads; for any other schedule they stay at their defaults, so that
#: runs that differ only in unused fields are the same run (same key, trained once).
_SCHEDULE_FIELDS = {
    "auto": ("auto_window", "auto_fraction", "auto_min_stage", "max_decays"),
    "plateau": ("plateau_patience", "plateau_threshold", "max_decays"),
    "train_acc": ("decay_train_acc",),
}


def config_from(settings: Mapping[str, Any], *, seed: int, **changes: Any):
    """A :class:`TrainConfig` from the settings keys that are TrainConfig fields, plus ``changes``; no
    files, no plots, no progress bar (the runner reports progress). Fields of host-side schedules other
    than the config's own schedule are left at their defaults."""
    from lrdecay.trainer import TrainConfig

    names = _config_fields()
    fields = {k: copy.deepcopy(v) for k, v in settings.items() if k in names}
    fields.update(changes)
    fields.update(seed=seed, plots=False, progress=False)
    own = set(_SCHEDULE_FIELDS.get(fields.get("schedule", "multistep"), ()))
    for f in {f for fs in _SCHEDULE_FIELDS.values() for f in fs} - own:
        if f not in changes:
            fields.pop(f, None)
    return TrainConfig(**fields)


def run_key(config) -> str:
    """A run's stable id: the sweep engine's (:func:`lrdecay.sweep.run_id`, a hash of the resolved config)."""
    from lrdecay.sweep import run_id

    return run_id(config)


# ============================================================================ training
def execute(
    configs: Mapping[str, Any],
    *,
    run_dir: str | None = None,
    executor: str = "auto",
    workers: int | None = None,
    threads: int | None = 1,
    progress: bool = True,
) -> dict[str, RunOutput]:
    """Train ``configs`` (``{key: TrainConfig}``) through the sweep engine and return ``{key: RunOutput}``.

    ``run_dir`` is the sweep folder (``runs/<id>/`` per run; a temporary folder when None): runs finished
    there are read back, unfinished ones resume from their checkpoints, so an interrupted call resumes
    where it stopped. ``executor`` and ``workers`` as for :func:`lrdecay.sweep.run_sweep` (runs sharing an
    architecture train stacked, with per-member numbers equal to solo runs); ``threads``: torch threads of
    in-process training.
    """
    import tempfile

    import torch

    from lrdecay.sweep import run_sweep
    from lrdecay.sweep.store import SweepStore
    from lrdecay.sweep.store import DONE

    if not configs:
        return {}
    tmp = None
    if run_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="lrdecay-runs-")
        run_dir = tmp.name
    try:
        store = SweepStore(run_dir) if os.path.isdir(run_dir) else None
        before = {k for k, c in configs.items() if store is not None and store.status(run_key(c)) == DONE}
        prev = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(int(threads))
        try:
            res = run_sweep(list(configs.values()), run_dir, executor=executor, workers=workers, progress=progress,
                            extend=True)
        finally:
            torch.set_num_threads(prev)
        if res.failed:
            first = res.failed[0]
            raise RuntimeError(f"{len(res.failed)} training run(s) failed; the first ({first.id}):\n{first.error}")
        out = {}
        for key, cfg in configs.items():
            o = res[cfg]
            out[key] = RunOutput(cfg, o.history, o.snapshots(), o.ledger_summary or {}, float(o.wall_time or 0.0),
                                 cached=key in before)
        return out
    finally:
        if tmp is not None:
            tmp.cleanup()


# ============================================================================ the runner
def run_experiments(
    experiments: Sequence[Experiment],
    preset: str,
    *,
    seeds: Sequence[int] | int | None = None,
    out_dir: str | None = None,
    device: str | None = None,
    workers: int | None = 1,
    executor: str = "auto",
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = True,
) -> dict[str, dict]:
    """Run ``experiments`` on ``preset``: resolve and check every setting first, train every distinct run
    once through the sweep engine (``executor``, ``workers``; resumable through ``out_dir/runs/``), then
    measure, judge and present each experiment. Returns ``{name: result dict}`` (see
    :func:`lrdecay.experiments.common.finish_result`).

    ``overrides`` maps an experiment name to settings changes for it.
    """
    t_start = time.perf_counter()
    settings = {e.name: resolve_settings(e, preset, seeds=seeds, overrides=(overrides or {}).get(e.name),
                                         device=device) for e in experiments}
    run_dir = os.path.join(out_dir, "runs") if out_dir else None
    outputs: dict[str, RunOutput] = {}
    keys: dict[tuple[str, int], dict[str, str]] = {}
    for _ in range(10):  # rounds of dependent runs (GD after SGD); 10 is far more than any experiment needs
        wanted: dict[str, Any] = {}
        for e in experiments:
            s = settings[e.name]
            for seed in s["seeds"]:
                done = {label: outputs[k] for label, k in keys.get((e.name, seed), {}).items() if k in outputs}
                requested = e.runs(s, seed, done)
                keys[(e.name, seed)] = {label: run_key(cfg) for label, cfg in requested.items()}
                for cfg in requested.values():
                    k = run_key(cfg)
                    if k not in outputs:
                        wanted[k] = cfg
        if not wanted:
            break
        threads = min((settings[e.name].get("threads") or 1) for e in experiments)
        outputs.update(execute(wanted, run_dir=run_dir, executor=executor, workers=workers, threads=threads,
                               progress=progress))
    else:  # pragma: no cover - an experiment kept asking for new runs
        raise RuntimeError("experiments kept requesting new runs after 10 rounds")

    used_by: dict[str, set] = {}
    for (name, _seed), labels in keys.items():
        for k in labels.values():
            used_by.setdefault(k, set()).add(name)
    results = {}
    for e in experiments:
        t0 = time.perf_counter()
        s = settings[e.name]
        per_seed: dict[str, list] = {}
        runs_by_seed = {}
        for seed in s["seeds"]:
            runs = {label: outputs[k] for label, k in keys[(e.name, seed)].items()}
            runs_by_seed[seed] = runs
            numbers = e.measure(s, seed, runs)
            for k, v in numbers.items():
                per_seed.setdefault(k, []).append(v)
            for k in per_seed:  # a metric a seed did not give is None for it
                if len(per_seed[k]) < len(runs_by_seed):
                    per_seed[k].append(None)
        verdict = e.judge(per_seed)
        table, curves, plots, notes = e.present(s, per_seed, runs_by_seed, out_dir)
        run_keys = {k for seed in s["seeds"] for k in keys[(e.name, seed)].values()}
        training = {
            "runs": len(run_keys),
            "shared_runs": sum(1 for k in run_keys if len(used_by[k]) > 1),
            "cached_runs": sum(1 for k in run_keys if outputs[k].cached),
            "train_time": sum(outputs[k].wall_time for k in run_keys),
        }
        results[e.name] = finish_result(
            e, preset=preset, settings=s, seeds=s["seeds"], per_seed=per_seed, table=table, curves=curves,
            verdict=verdict, plots=plots, t0=t0, notes=notes, training=training,
        )
    log(f"experiments done in {time.perf_counter() - t_start:.0f} s")
    return results


def runs_needed(experiments: Iterable[Experiment], preset: str, seeds=None) -> int:
    """How many distinct first-round runs ``experiments`` need (for planning; dependent runs excluded)."""
    ks = set()
    for e in experiments:
        s = resolve_settings(e, preset, seeds=seeds)
        for seed in s["seeds"]:
            ks.update(run_key(c) for c in e.runs(s, seed, {}).values())
    return len(ks)
