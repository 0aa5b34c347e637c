"""Sweep specifications: a base config, axes and seeds, resolved into runs with stable ids.

A SPEC (TOML or JSON, or the same dict in Python) has these keys, all optional but ``base`` or an axis::

    name = "lr-by-noise"          # shown in the manifest and the progress bar
    seeds = 3                     # a count (0, 1, 2) or a list [0, 5, 7]; default [base.seed or 0]
    base = { preset = "ps10", n_train = 32000, width = 64, epochs = 30 }   # or a path to a config JSON
    grid = { lr = [0.05, 0.1, 0.2], label_noise = [0.1, 0.2] }            # cartesian product
    [[settings]]                  # a list of named settings, crossed with the grid
    name = "lrDecay"
    schedule = "multistep"
    [[settings]]
    name = "small"
    schedule = "constant"
    lr = 0.01

Runs = settings × grid × seeds, each a :class:`~lrdecay.trainer.TrainConfig`: the base's fields (defaults
for every run; a base read from a config file may hold every field), then the setting's, then the grid
point's, then the seed (``seeds`` replaces ``base.seed``). Everything is validated before any run starts,
with an error naming the key: unknown keys or fields, an axis over a field that does not exist, a field
both varied by the grid and set by a setting (which value wins would be a guess), ``seed`` in the grid or a
setting, repeated values or setting names, two runs that resolve to the same config, and every resolved
config's own validation. TOML has no null: write ``"none"`` for a field whose value may be None
(``batch_size = "none"`` is full-batch gradient descent).

A run's id (:func:`run_id`) is a hash of its resolved config: the fields that decide its numbers and what
its table rows hold, each at its canonical type, leaving out fields at their default value (so adding a
field to TrainConfig later does not change existing ids) and the fields that only change how a run is
watched (:data:`UNHASHED_FIELDS`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from lrdecay.trainer.config import UNHASHED_FIELDS, TrainConfig

__all__ = ["SweepSpec", "Run", "SpecError", "load_spec", "run_id", "UNHASHED_FIELDS", "SPEC_KEYS"]

SPEC_KEYS = ("name", "seeds", "base", "grid", "settings")
#: The most runs one spec may make (a typo such as ``seeds = 1000000000000`` is refused, not planned).
MAX_RUNS = 100_000

# UNHASHED_FIELDS (re-exported here): the fields that change how a run is watched or where it runs, not its
# numbers or its table rows; declared on TrainConfig's fields.

# TOML has no null: this string stands for None in fields that accept None.
_NONE_WORDS = ("none", "null")


class SpecError(ValueError):
    """A sweep specification that cannot be run (the message names the key and what is accepted)."""


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _defaults() -> dict[str, Any]:
    """Each TrainConfig field's default value (fields without one are always hashed)."""
    d = {}
    for name, f in _FIELDS.items():
        if f.default is not dataclasses.MISSING:
            d[name] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            d[name] = f.default_factory()  # type: ignore[misc]
    return d


def _is_float_field(name: str) -> bool:
    ann = _FIELDS[name].type
    ann = ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))
    return "float" in ann.replace(" ", "").split("|")


def _canonical(name: str, value: Any) -> Any:
    """The value as the id hashes it: ints in float fields become floats (``lr=1`` and ``lr=1.0`` are one
    run), tuples become lists."""
    if isinstance(value, tuple):
        value = list(value)
    if name in _FIELDS and _is_float_field(name) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def run_id(config: TrainConfig) -> str:
    """A stable 12-hex-digit id for a run: a hash of its resolved config (see the module docstring)."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    defaults = _defaults()
    d = {}
    for k, v in config.to_dict().items():
        if k in UNHASHED_FIELDS:
            continue
        v = _canonical(k, v)
        if k in defaults and _canonical(k, defaults[k]) == v:
            continue
        d[k] = v
    text = json.dumps(d, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(("lrdecay-run:" + text).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Run:
    """One run of a sweep: its id, resolved config, the setting it came from, its seed and grid point."""

    id: str
    config: TrainConfig
    setting: str = ""
    seed: int = 0
    axes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, config: TrainConfig, *, setting: str = "", axes: Mapping[str, Any] | None = None) -> "Run":
        """A run for ``config`` (its id computed here)."""
        return cls(run_id(config), config, setting, int(config.seed), dict(axes or {}))

    def to_dict(self) -> dict:
        """JSON form (the manifest's ``runs`` entries)."""
        return {"id": self.id, "setting": self.setting, "seed": self.seed, "axes": dict(self.axes),
                "config": self.config.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Run":
        """Inverse of :meth:`to_dict`; the id is recomputed and must match."""
        run = cls.of(TrainConfig.from_dict(dict(d["config"])), setting=str(d.get("setting", "")),
                     axes=d.get("axes") or {})
        if run.id != d["id"]:
            raise SpecError(
                f"run {d['id']} in the manifest hashes to {run.id} under this lrdecay version "
                f"(its config's meaning changed); start a new sweep folder"
            )
        return run


@dataclass
class SweepSpec:
    """A validated sweep: ``name``, ``seeds``, ``base`` fields, ``grid`` axes and ``settings``.

    Build with :meth:`from_dict` / :func:`load_spec` (validated), or :meth:`from_configs` for a plain list
    of configs. :meth:`runs` lists the resolved runs.
    """

    name: str = "sweep"
    seeds: list[int] = field(default_factory=lambda: [0])
    base: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    settings: list[dict[str, Any]] = field(default_factory=list)
    _runs: list[Run] | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, base_dir: str | os.PathLike | None = None) -> "SweepSpec":
        """Validate a spec dict (as parsed from TOML/JSON) and resolve its runs; raises :class:`SpecError`.

        ``base_dir``: folder that a ``base = "path.json"`` is relative to.
        """
        if not isinstance(d, Mapping):
            raise SpecError(f"a sweep spec must be a table/object, got {type(d).__name__}")
        unknown = sorted(set(d) - set(SPEC_KEYS))
        if unknown:
            raise SpecError(f"unknown spec key(s) {unknown}; accepted keys: {list(SPEC_KEYS)}")
        name = d.get("name", "sweep")
        if not isinstance(name, str) or not name.strip():
            raise SpecError(f"name must be a non-empty string, got {name!r}")

        base = d.get("base", {})
        if isinstance(base, (str, os.PathLike)):
            path = os.path.join(os.fspath(base_dir or "."), os.fspath(base))
            try:
                with open(path, encoding="utf-8") as f:
                    base = json.load(f)
            except (OSError, json.JSONDecodeError) as exc:
                raise SpecError(f"base: cannot read the config JSON {path!r}: {exc}") from None
        if not isinstance(base, Mapping):
            raise SpecError(f"base must be a table of TrainConfig fields (or a path to a config JSON), got {type(base).__name__}")
        base = {k: _none_word(k, v) for k, v in base.items()}
        _check_fields("base", base)

        grid = d.get("grid", {})
        if not isinstance(grid, Mapping):
            raise SpecError(f"grid must be a table {{field: [values...]}}, got {type(grid).__name__}")
        grid_out: dict[str, list] = {}
        for k, values in grid.items():
            if k not in _FIELDS:
                raise SpecError(f"grid.{k}: an axis over a field that does not exist; TrainConfig fields: {sorted(_FIELDS)}")
            if k == "seed":
                raise SpecError("grid.seed: give seeds with the top-level `seeds` key (a count or a list)")
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
                raise SpecError(f"grid.{k} must be a non-empty list of values, got {values!r}")
            vals = [_none_word(k, v) for v in values]
            canon = [json.dumps(_canonical(k, v), sort_keys=True) for v in vals]
            dup = sorted({c for c in canon if canon.count(c) > 1})
            if dup:
                raise SpecError(f"grid.{k} repeats value(s) {', '.join(dup)} (each would be the same run twice)")
            grid_out[k] = vals

        settings_in = d.get("settings", [])
        if isinstance(settings_in, Mapping) or not isinstance(settings_in, Sequence):
            raise SpecError(f"settings must be a list of tables (TOML [[settings]]), got {type(settings_in).__name__}")
        settings: list[dict] = []
        names: dict[str, int] = {}
        for i, s in enumerate(settings_in):
            if not isinstance(s, Mapping):
                raise SpecError(f"settings[{i}] must be a table of TrainConfig fields, got {type(s).__name__}")
            s = dict(s)
            sname = s.pop("name", None)
            s = {k: _none_word(k, v) for k, v in s.items()}
            _check_fields(f"settings[{i}]", s)
            for k in s:
                if k in grid_out:
                    raise SpecError(
                        f"settings[{i}].{k} conflicts with grid.{k}: a field is either varied by the grid or set "
                        f"per setting; remove one"
                    )
            if sname is None:
                sname = ",".join(f"{k}={v}" for k, v in s.items()) or f"setting{i}"
            if not isinstance(sname, str) or not sname:
                raise SpecError(f"settings[{i}].name must be a non-empty string, got {sname!r}")
            if sname in names:
                raise SpecError(f"settings[{i}].name {sname!r} repeats settings[{names[sname]}].name")
            names[sname] = i
            settings.append({"name": sname, **s})

        seeds = _seeds(d.get("seeds", [base.get("seed", 0)]))
        base.pop("seed", None)

        if not base and not grid_out and not settings and "seeds" not in d:
            raise SpecError(f"the spec defines no runs: give at least one of {list(SPEC_KEYS[1:])}")
        spec = cls(name=name, seeds=seeds, base=dict(base), grid=grid_out, settings=settings)
        spec._runs = spec._resolve()
        return spec

    @classmethod
    def from_configs(cls, configs: Iterable[TrainConfig], *, name: str = "runs") -> "SweepSpec":
        """A sweep of explicit configs (e.g. an experiment's runs). Repeated configs are one run."""
        configs = list(configs)
        for i, c in enumerate(configs):
            if not isinstance(c, TrainConfig):
                raise TypeError(f"runs[{i}] must be a TrainConfig, got {type(c).__name__}")
            c.validate()
        return cls.from_runs((Run.of(c) for c in configs), name=name)

    @classmethod
    def from_runs(cls, runs: Iterable[Run], *, name: str = "runs") -> "SweepSpec":
        """A sweep of chosen runs, keeping their setting names and grid points (e.g. a subset of another
        spec's runs). Repeated runs are one run."""
        out: dict[str, Run] = {}
        for i, r in enumerate(runs):
            if not isinstance(r, Run):
                raise TypeError(f"runs[{i}] must be a Run, got {type(r).__name__}")
            out.setdefault(r.id, r)
        if not out:
            raise SpecError("the sweep has no runs (an empty list)")
        spec = cls(name=name, seeds=sorted({r.seed for r in out.values()}))
        spec._runs = list(out.values())
        return spec

    # ------------------------------------------------------------------ runs
    def runs(self) -> list[Run]:
        """The resolved runs, in spec order (setting, then grid point, then seed)."""
        if self._runs is None:
            self._runs = self._resolve()
        return list(self._runs)

    def _resolve(self) -> list[Run]:
        settings = self.settings or [{"name": ""}]
        axes = list(self.grid)
        n = len(settings) * len(self.seeds) * math.prod(len(self.grid[a]) for a in axes)
        if n > MAX_RUNS:
            raise SpecError(f"the spec makes {n} runs (settings x grid x seeds), more than a sweep takes "
                            f"({MAX_RUNS}): split it")
        points = list(itertools.product(*(self.grid[a] for a in axes))) if axes else [()]
        out: list[Run] = []
        seen: dict[str, str] = {}
        for s in settings:
            sname = s["name"]
            sfields = {k: v for k, v in s.items() if k != "name"}
            for point in points:
                ax = dict(zip(axes, point))
                for seed in self.seeds:
                    fields = {**self.base, **sfields, **ax, "seed": seed}
                    where = _where(sname, ax, seed)
                    try:
                        cfg = TrainConfig.from_dict(fields)
                    except (TypeError, ValueError) as exc:
                        raise SpecError(f"{where}: {exc}") from None
                    _check_runnable(cfg, where)
                    run = Run.of(cfg, setting=sname, axes=ax)
                    if run.id in seen:
                        raise SpecError(f"{where} resolves to the same run as {seen[run.id]} (id {run.id})")
                    seen[run.id] = where
                    out.append(run)
        return out

    def to_dict(self) -> dict:
        """JSON form (recorded in the manifest); :meth:`from_dict` of it gives the same runs."""
        if not self.settings and not self.grid and not self.base and self._runs is not None:
            return {"name": self.name, "runs": [r.to_dict() for r in self._runs]}
        d: dict[str, Any] = {"name": self.name, "seeds": list(self.seeds)}
        if self.base:
            d["base"] = dict(self.base)
        if self.grid:
            d["grid"] = {k: list(v) for k, v in self.grid.items()}
        if self.settings:
            d["settings"] = [dict(s) for s in self.settings]
        return d


def load_spec(path_or_text: str | os.PathLike | Mapping[str, Any]) -> SweepSpec:
    """A :class:`SweepSpec` from a ``.toml`` / ``.json`` file, JSON or TOML text, or a dict."""
    if isinstance(path_or_text, Mapping):
        return SweepSpec.from_dict(path_or_text)
    s = os.fspath(path_or_text)
    base_dir = None
    if os.path.isfile(s):
        base_dir = os.path.dirname(os.path.abspath(s))
        with open(s, "rb") as f:
            raw = f.read()
        is_json = s.lower().endswith(".json") or raw.lstrip().startswith(b"{")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(f"spec file {s!r} is not UTF-8 text: {exc}") from None
    elif s.lstrip().startswith("{"):
        is_json, text = True, s
    elif "=" in s or "\n" in s:
        is_json, text = False, s
    else:
        raise SpecError(f"spec file {s!r} does not exist")
    if is_json:
        from lrdecay._validate import loads_json

        try:
            d = loads_json(text, "spec")
        except ValueError as exc:
            raise SpecError(str(exc)) from None
    else:
        try:
            import tomllib  # Python >= 3.11
        except ImportError:  # pragma: no cover - Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"spec is not valid TOML: {exc}") from None
        except RecursionError:
            raise SpecError("spec is nested too deeply to read") from None
    if not isinstance(d, Mapping):
        raise SpecError(f"spec must be a table / JSON object, got {type(d).__name__}")
    return SweepSpec.from_dict(d, base_dir=base_dir)


# ---------------------------------------------------------------------------- helpers
def _none_word(name: str, value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in _NONE_WORDS and name in _FIELDS:
        ann = _FIELDS[name].type
        if "None" in (ann if isinstance(ann, str) else str(ann)):
            return None
    return value


def _check_fields(where: str, fields: Mapping[str, Any]) -> None:
    unknown = sorted(set(fields) - set(_FIELDS))
    if unknown:
        raise SpecError(f"{where}: unknown TrainConfig field(s) {unknown}; accepted fields: {sorted(_FIELDS)}")
    if "seed" in fields and where != "base":
        raise SpecError(f"{where}.seed: give seeds with the top-level `seeds` key (a count or a list)")


def _seeds(value: Any) -> list[int]:
    if isinstance(value, bool):
        raise SpecError(f"seeds must be a count >= 1 or a list of ints >= 0, got {value!r}")
    if isinstance(value, int):
        if not 1 <= value <= MAX_RUNS:
            raise SpecError(f"seeds must be a count >= 1 and <= {MAX_RUNS} or a list of ints >= 0, got {value}")
        return list(range(value))
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise SpecError(f"seeds must be a count >= 1 or a non-empty list of ints >= 0, got {value!r}")
    out = []
    for s in value:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0 or s >= 2**63:
            raise SpecError(f"seeds must be ints in [0, 2**63), got {s!r} in {list(value)}")
        out.append(int(s))
    if len(set(out)) != len(out):
        raise SpecError(f"seeds repeats a seed: {out}")
    return out


def _where(setting: str, axes: Mapping[str, Any], seed: int) -> str:
    parts = ([f"setting {setting!r}"] if setting else []) + [f"{k}={v!r}" for k, v in axes.items()] + [f"seed {seed}"]
    return "run " + ", ".join(parts)


def _check_runnable(cfg: TrainConfig, where: str) -> None:
    """Checks the trainer would only make once the run has started (so a typo fails the spec, not one
    run an hour in): the data preset exists, a batch fits the data."""
    from lrdecay.data import PRESETS

    if cfg.preset not in PRESETS:
        raise SpecError(f"{where}: preset must be one of {sorted(PRESETS)}, got {cfg.preset!r}")
    if cfg.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SpecError(f"{where}: device {cfg.device!r} but CUDA is not available (use cpu or auto)")
    if cfg.data is not None and cfg.data_dir is not None and not os.path.isdir(os.path.expanduser(cfg.data_dir)):
        raise SpecError(f"{where}: data_dir {cfg.data_dir!r} is not a folder")
    if cfg.batch_size is not None and cfg.batch_size > cfg.n_train:
        raise SpecError(
            f"{where}: batch_size must be in [1, n_train={cfg.n_train}] (or none for full-batch GD), "
            f"got {cfg.batch_size}"
        )
