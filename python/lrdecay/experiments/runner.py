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

**Data.** ``data=None`` runs on the synthetic pattern datasets with ``Experiment.presets``; ``data`` one of
``cifar10``, ``cifar100``, ``digits``, ``folder`` (with ``data_dir``) runs on real images with
``Experiment.image_presets[data]``. An experiment whose ``applies_to`` lacks the data's kind, or whose
``prepare`` raises :class:`NotApplicable`, is not run: its result says it does not apply and why. Before
anything is trained or written, :func:`plan_experiments` resolves every setting, reads what the data holds
and checks every run of the first round against it (:mod:`lrdecay.experiments.realdata`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from lrdecay.experiments import realdata
from lrdecay.experiments.common import Verdict, finish_result, log, not_applicable_result
from lrdecay.experiments.options import RunOptions

__all__ = [
    "Experiment",
    "NotApplicable",
    "Plan",
    "plan_experiments",
    "RunOutput",
    "RUNNER_KEYS",
    "resolve_settings",
    "config_from",
    "run_key",
    "run_experiments",
    "execute",
    "runs_needed",
    "train_requests",
    "torch_threads",
    "RunOptions",
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
        image_presets: data name (``cifar10``, ``cifar100``, ``digits``, ``folder``) → preset name →
            settings, for the experiments that apply to ``"images"``.
        needs: what the experiment needs that the data kinds outside ``applies_to`` lack (the report's
            "does not apply" reason).
        prepare: optional ``(settings) -> settings``, called once on the resolved settings before any run is
            requested: settles choices that depend on the data (transfer's target), checks what only the
            experiment knows. Raises :class:`NotApplicable` when the data cannot support the experiment,
            ValueError / FileNotFoundError to stop before anything is trained.
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
    image_presets: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    needs: str = ""
    prepare: Callable[[dict], dict] | None = None


class NotApplicable(Exception):
    """Raised by an experiment's ``prepare``: it does not apply to this data (the message says why)."""


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


def presets_for(exp: Experiment, data: str | None = None) -> Mapping[str, Mapping[str, Any]]:
    """The experiment's presets for ``data`` (None: the pattern presets); ValueError when it does not apply."""
    kind = realdata.kind(data)
    if kind not in exp.applies_to:
        raise ValueError(f"{exp.name} does not apply to {kind} (data={data!r}): it needs {exp.needs or kind}")
    if data is None:
        return exp.presets
    if data not in exp.image_presets:
        raise ValueError(f"{exp.name} has no presets for data={data!r}; it has {sorted(exp.image_presets)}")
    return exp.image_presets[data]


def resolve_settings(
    exp: Experiment,
    preset: str,
    *,
    seeds: Sequence[int] | int | None = None,
    overrides: Mapping[str, Any] | None = None,
    device: str | None = None,
    data: str | None = None,
    data_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """The preset's settings (``exp.presets[preset]``, or ``exp.image_presets[data][preset]`` for real
    images, with ``data`` and the absolute ``data_dir`` added) with ``overrides``, ``seeds`` and ``device``
    applied, every key checked. Does not read the data (see :func:`plan_experiments`)."""
    data, data_dir = realdata.check_data_args(data, data_dir)
    presets = presets_for(exp, data)
    if not isinstance(preset, str) or preset not in presets:
        on = "" if data is None else f" for data={data!r}"
        raise ValueError(f"preset must be one of {sorted(presets)}{on}, got {preset!r}")
    settings = copy.deepcopy(dict(presets[preset]))
    if data is not None:
        settings.update(data=data, data_dir=data_dir)
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
        from lrdecay.sweep.spec import MAX_RUNS

        if not 1 <= seeds <= MAX_RUNS:  # a typo's 10**8 seeds is refused, not planned
            raise ValueError(f"seeds must be a count >= 1 and <= {MAX_RUNS} or a list of ints >= 0, got {seeds}")
        seeds = list(range(seeds))
    seeds = list(seeds or [])
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of ints >= 0, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, got {seeds}")
    return seeds


def _host_schedule_fields() -> dict[str, tuple[str, ...]]:
    """The fields each host-side schedule reads that no fixed schedule reads (from the schedule registry):
    for any other schedule they stay at their defaults, so that runs that differ only in unused fields are
    the same run (same key, trained once)."""
    from lrdecay.optim.registry import fields_of, host_names, host_only_fields

    only = host_only_fields()
    return {s: tuple(f for f in fields_of(s) if f in only) for s in host_names()}


def config_from(settings: Mapping[str, Any], *, seed: int, **changes: Any):
    """A :class:`TrainConfig` from the settings keys that are TrainConfig fields, plus ``changes``; no
    files, no plots, no progress bar (the runner reports progress). Fields of host-side schedules other
    than the config's own schedule are left at their defaults."""
    from lrdecay.trainer import TrainConfig

    names = _config_fields()
    fields = {k: copy.deepcopy(v) for k, v in settings.items() if k in names}
    fields.update(changes)
    fields.update(seed=seed, plots=False, progress=False)
    host_fields = _host_schedule_fields()
    own = set(host_fields.get(fields.get("schedule", "multistep"), ()))
    for f in {f for fs in host_fields.values() for f in fs} - own:
        if f not in changes:
            fields.pop(f, None)
    return TrainConfig(**fields)


def run_key(config) -> str:
    """A run's stable id: the sweep engine's (:func:`lrdecay.sweep.run_id`, a hash of the resolved config)."""
    from lrdecay.sweep import run_id

    return run_id(config)


# ============================================================================ training
def torch_threads(settings: Iterable[Mapping[str, Any]]) -> int:
    """The torch threads every training process of a call uses: the fewest any experiment's settings ask
    for, 1 where a setting leaves ``threads`` unset (the GPU presets; on a CPU, 1 per worker process is the
    fast choice)."""
    return min((s.get("threads") or 1) for s in settings)


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
        if res.missing:  # failed, or stopped part-way: no numbers to measure
            from lrdecay.sweep import RunsMissing

            raise RunsMissing(res.missing)
        out = {}
        for key, cfg in configs.items():
            o = res[cfg]
            out[key] = RunOutput(cfg, o.history, o.snapshots(), o.ledger_summary or {}, float(o.wall_time or 0.0),
                                 cached=key in before)
        return out
    finally:
        if tmp is not None:
            tmp.cleanup()


# ============================================================================ the plan
@dataclass
class Plan:
    """What :func:`run_experiments` will do, settled before anything is trained or written.

    ``options`` are the call's (with the data folder made absolute), ``settings`` the resolved (and
    prepared) settings of the experiments that run, ``skipped`` why the others do not apply, ``data_info``
    what the real image data holds (None for pattern data)."""

    experiments: list[Experiment]
    options: RunOptions
    settings: dict[str, dict]
    skipped: dict[str, str]
    data_info: Any = None

    @property
    def runnable(self) -> list[Experiment]:
        """The experiments that run, in order."""
        return [e for e in self.experiments if e.name in self.settings]

    def first_round(self) -> dict[str, Any]:
        """``{run key: TrainConfig}`` of the runs requested before any is trained."""
        out = {}
        for e in self.runnable:
            s = self.settings[e.name]
            for seed in s["seeds"]:
                for cfg in e.runs(s, seed, {}).values():
                    out[run_key(cfg)] = cfg
        return out


def _not_applicable_reason(exp: Experiment, data: str | None) -> str:
    kind = realdata.kind(data)
    return (f"needs {exp.needs}" if exp.needs else f"applies to {' and '.join(exp.applies_to)} only") + (
        f"; {realdata.TITLES.get(data, data)} has none" if kind == "images" and exp.needs else "")


def plan_experiments(experiments: Sequence[Experiment], options: RunOptions | None = None) -> Plan:
    """Resolve every experiment's settings, read what the data holds (real images), run each experiment's
    ``prepare`` and check every first-round run against its data. Raises (ValueError, TypeError,
    FileNotFoundError) before anything is trained or written; trains nothing itself. ``options``: the
    call's :class:`~lrdecay.experiments.options.RunOptions` (None: the defaults; only what runs is read)."""
    options = RunOptions.of(options)
    data, data_dir = realdata.check_data_args(options.data, options.data_dir)
    options = options.replace(data=data, data_dir=data_dir)
    preset, overrides = options.preset, options.overrides
    names = [e.name for e in experiments]
    if len(set(names)) != len(names):
        raise ValueError(f"experiments must be distinct, got {names}")
    unknown = sorted(set(overrides or {}) - set(names))
    if unknown:
        raise ValueError(f"overrides name experiments {unknown} that are not run; running {names}")
    kind = realdata.kind(data)
    settings: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for e in experiments:
        if kind not in e.applies_to:
            skipped[e.name] = _not_applicable_reason(e, data)
            continue
        settings[e.name] = resolve_settings(e, preset, seeds=options.seeds, overrides=(overrides or {}).get(e.name),
                                            device=options.device, data=data, data_dir=data_dir)
    data_info = None
    if data is not None and settings:  # the data is there (and readable) before any experiment looks at it
        data_info = realdata.info(data, data_dir, next(iter(settings.values())).get("image_size", 32))
    for e in experiments:
        if e.name in settings and e.prepare is not None:
            try:
                settings[e.name] = e.prepare(settings[e.name])
            except NotApplicable as exc:
                skipped[e.name] = str(exc)
                del settings[e.name]
    plan = Plan(list(experiments), options, settings, skipped, data_info)
    realdata.check_configs(plan.first_round().values())
    return plan


# ============================================================================ the runner
def run_experiments(experiments: Sequence[Experiment], options: RunOptions | None = None) -> dict[str, dict]:
    """Run ``experiments`` as ``options`` say (a :class:`~lrdecay.experiments.options.RunOptions`; None:
    the defaults): plan (resolve and check every setting, and the data, first; see
    :func:`plan_experiments`), train every distinct run once through the sweep engine (``executor``,
    ``workers``; resumable through ``out_dir/runs/``), then measure, judge and present each experiment.
    Returns ``{name: result dict}`` in the order of ``experiments`` (see
    :func:`lrdecay.experiments.common.finish_result`); an experiment that does not apply to the data gets a
    result saying so (:func:`~lrdecay.experiments.common.not_applicable_result`).

    ``options.overrides`` maps an experiment name to settings changes for it. ``options.data`` /
    ``data_dir``: real images (``cifar10``, ``cifar100``, ``digits``, ``folder``) instead of the pattern
    datasets.
    """
    t_start = time.perf_counter()
    try:
        plan = plan_experiments(experiments, options)
        return _run_plan(plan, t_start=t_start)
    finally:
        realdata.clear_cache()


def _check_stored_data(configs: Mapping[str, Any], run_dir: str | None) -> None:
    """A run id leaves ``data_dir`` out (a data set may move); a run stored in ``run_dir`` on real images
    from another folder is not these images' run: refuse it instead of reading it back."""
    if not run_dir:
        return
    from lrdecay.sweep.store import SweepStore

    store = SweepStore(run_dir) if os.path.isdir(run_dir) else None
    for key, cfg in configs.items():
        if store is None or cfg.data is None or cfg.data_dir is None:
            continue
        path = os.path.join(store.run_dir(key), "config.json")
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            stored = json.load(f).get("data_dir")
        if stored is not None and os.path.abspath(stored) != os.path.abspath(cfg.data_dir):
            raise ValueError(f"{run_dir} holds this run on {cfg.data} from {stored}, not from {cfg.data_dir}: "
                             f"use another output folder (--out) for other data")


def train_requests(jobs: Mapping[Any, tuple[Experiment, Mapping[str, Any]]], *, run_dir: str | None,
                   executor: str = "auto", workers: int | None = None, progress: bool = True
                   ) -> tuple[dict[str, RunOutput], dict[tuple[Any, int], dict[str, str]]]:
    """Train every run that ``jobs`` (``{job: (experiment, resolved settings)}``) need for each of their
    settings' seeds, each distinct run once, in rounds until no job requests a new run (a run may depend on
    another's outcome: GD decays where SGD had its decays). Returns ``(outputs, keys)``: ``{run key:
    RunOutput}`` and ``{(job, seed): {label: run key}}``. Runs go through the sweep engine into ``run_dir``
    (resumable; None: a temporary folder)."""
    outputs: dict[str, RunOutput] = {}
    keys: dict[tuple[Any, int], dict[str, str]] = {}
    for _ in range(10):  # rounds of dependent runs (GD after SGD); 10 is far more than any experiment needs
        wanted: dict[str, Any] = {}
        for job, (e, s) in jobs.items():
            for seed in s["seeds"]:
                done = {label: outputs[k] for label, k in keys.get((job, seed), {}).items() if k in outputs}
                requested = e.runs(s, seed, done)
                keys[(job, seed)] = {label: run_key(cfg) for label, cfg in requested.items()}
                for cfg in requested.values():
                    k = run_key(cfg)
                    if k not in outputs:
                        wanted[k] = cfg
        if not wanted:
            return outputs, keys
        realdata.check_configs(wanted.values())  # dependent runs too, before they train
        _check_stored_data(wanted, run_dir)
        threads = torch_threads(s for _e, s in jobs.values())
        outputs.update(execute(wanted, run_dir=run_dir, executor=executor, workers=workers, threads=threads,
                               progress=progress))
    raise RuntimeError("experiments kept requesting new runs after 10 rounds")  # pragma: no cover


def _run_plan(plan: Plan, *, t_start: float) -> dict[str, dict]:
    out_dir = plan.options.out_dir
    settings = plan.settings
    runnable = plan.runnable
    run_dir = os.path.join(out_dir, "runs") if out_dir else None
    outputs, keys = train_requests({e.name: (e, settings[e.name]) for e in runnable}, run_dir=run_dir,
                                   executor=plan.options.executor, workers=plan.options.workers,
                                   progress=plan.options.progress)

    used_by: dict[str, set] = {}
    for (name, _seed), labels in keys.items():
        for k in labels.values():
            used_by.setdefault(k, set()).add(name)
    results = {}
    for e in plan.experiments:
        if e.name in plan.skipped:
            results[e.name] = not_applicable_result(e, preset=plan.options.preset, data=plan.options.data,
                                                    reason=plan.skipped[e.name])
            log(f"  {e.name}: does not apply ({plan.skipped[e.name]})")
            continue
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
            e, preset=plan.options.preset, settings=s, seeds=s["seeds"], per_seed=per_seed, table=table, curves=curves,
            verdict=verdict, plots=plots, t0=t0, notes=notes, training=training,
        )
    log(f"experiments done in {time.perf_counter() - t_start:.0f} s")
    return results


def runs_needed(experiments: Iterable[Experiment], options: RunOptions | None = None) -> int:
    """How many distinct first-round runs ``experiments`` need (for planning; dependent runs excluded)."""
    return len(plan_experiments(list(experiments), options).first_round())
