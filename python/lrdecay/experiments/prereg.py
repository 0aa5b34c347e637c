"""Pre-registrations the package reads, hashes and enforces.

A pre-registration fixes, before any run it governs, where a search may look (its grid), how it picks
(its criterion), which seeds it may use (pilot seeds) and which seeds are kept for the reported verdicts
(held-out seeds). It is a TOML file shipped in the package (``lrdecay/experiments/preregistered/``); the
code reads its numbers from the file, never from a copy of them, and enforces the seed split:

- a search (``lrdecay regime``) refuses held-out seeds (:meth:`Preregistration.check_search_seeds`);
- ``lrdecay reproduce`` / ``lrdecay run`` refuse to report verdicts on pilot seeds
  (:meth:`Preregistration.check_report_seeds`);
- every report prints the file's sha256 and whether it is the committed file
  (:meth:`Preregistration.describe`): the sha256 of each packaged file's bytes is pinned here
  (:data:`COMMITTED_SHA256`), so a file edited after its commit, or another file given with ``load(path)``,
  is reported as not the committed one.

File format (version 1)::

    format = 1                     # required; this module reads version 1
    name = "patterns"              # required; the packaged file is preregistered/<name>.toml
    data = "patterns"              # required; the data it governs: "patterns" (the synthetic pattern
                                   # data, reproduce without --data) or a --data name ("fashion-mnist")
    document = "docs/..."          # optional: the markdown that explains it
    statement = "..."              # optional: one sentence shown in reports

    [grid]                         # required: axis -> non-empty list of values (the search's settings
    width = [128, 256]             # are their cartesian product, in this order)

    [stages."10-10-10"]            # optional: named stage options an axis may refer to
    milestones = [10, 20]
    epochs = 30

    [fixed]                        # optional: settings every grid point shares
    lr = 0.1

    [seeds]                        # required
    pilot = [1000]                 # required: the search's first seeds
    confirm = [1001, 1002]         # optional: further pilot seeds (a confirmation phase)
    held_out = { quick = [10, 11, 12] }   # required: reported seeds, per preset

    [criterion]                    # required: the numbers of the selection rule (free-form; the code
    premise_margin = 0.02          # that applies the rule names the keys it reads)

Pilot seeds (``pilot`` + ``confirm``) and held-out seeds (every preset's) must be disjoint; the file is
refused otherwise. Unknown top-level keys and sections are refused (a typo must not pass silently).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

__all__ = [
    "Preregistration",
    "PreregistrationError",
    "SeedPolicyError",
    "COMMITTED_SHA256",
    "FORMAT",
    "load",
    "packaged",
    "packaged_path",
    "governing",
]

#: The file format version this module reads.
FORMAT = 1

#: sha256 of each packaged pre-registration's bytes, as committed. A file whose bytes hash otherwise is
#: "not the committed one" in every report; changing a file means committing its new hash here with it.
COMMITTED_SHA256: dict[str, str] = {
    "patterns": "8868677e4d4c57b7cb46911a10863cad2614ff97f7c190973b629a884c12318f",
    "fashion-mnist": "929bc57e85ed9da65f9c479beb16c0b398deede74f41bcf0dbc15ace32e1f863",
    "claims": "6007095a5db4e4b99e7cea655bc4fd5da980d319a4310d56e51e48bf44a62ac9",
}

_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "preregistered")
_TOP_KEYS = {"format", "name", "data", "document", "statement", "grid", "stages", "fixed", "seeds", "criterion",
             "experiments_preset"}
_SEED_KEYS = {"pilot", "confirm", "held_out"}


class PreregistrationError(ValueError):
    """A pre-registration file that cannot be read or breaks the format (the message names the key)."""


class SeedPolicyError(ValueError):
    """Seeds a command may not use under its pre-registration (held-out seeds in a search, pilot seeds in a
    reported verdict)."""


@dataclass(frozen=True)
class Preregistration:
    """One pre-registration, as read from its file.

    Attributes:
        name, data: its name and the data it governs (``"patterns"`` or a ``--data`` name).
        grid: axis -> values; ``stages``: named stage options; ``fixed``: settings shared by every point.
        pilot_seeds: the search's first seeds; ``confirm_seeds``: its further (confirmation) pilot seeds.
        held_out: preset -> seeds of the reported verdicts.
        criterion: the selection rule's numbers.
        path: the file read; ``sha256``: the hash of its bytes; ``committed_sha256``: the hash pinned for
            its name (None: a name the package does not ship).
    """

    name: str
    data: str
    grid: dict[str, list]
    stages: dict[str, dict[str, Any]]
    fixed: dict[str, Any]
    pilot_seeds: tuple[int, ...]
    confirm_seeds: tuple[int, ...]
    held_out: dict[str, tuple[int, ...]]
    criterion: dict[str, Any]
    path: str
    sha256: str
    committed_sha256: str | None = None
    document: str = ""
    statement: str = ""
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ seeds
    @property
    def all_pilot_seeds(self) -> tuple[int, ...]:
        """Every pilot seed (first phase, then confirmation)."""
        return (*self.pilot_seeds, *self.confirm_seeds)

    @property
    def all_held_out_seeds(self) -> tuple[int, ...]:
        """Every held-out seed of every preset, sorted."""
        return tuple(sorted({s for seeds in self.held_out.values() for s in seeds}))

    @property
    def committed(self) -> bool:
        """Whether the file read is byte for byte the committed one (its hash is the pinned hash)."""
        return self.committed_sha256 is not None and self.sha256 == self.committed_sha256

    def check_search_seeds(self, seeds: Iterable[int]) -> None:
        """Raise :class:`SeedPolicyError` if any of ``seeds`` is a held-out seed (a search never sees one)."""
        bad = sorted(set(int(s) for s in seeds) & set(self.all_held_out_seeds))
        if bad:
            raise SeedPolicyError(
                f"seeds {bad} are held-out seeds of the pre-registration {self.name!r} ({self.held_out_text()}): "
                f"the search may use only its pilot seeds {list(self.all_pilot_seeds)}")

    def check_report_seeds(self, seeds: Iterable[int]) -> None:
        """Raise :class:`SeedPolicyError` if any of ``seeds`` is a pilot seed (no reported verdict rests on
        a seed the search chose with)."""
        bad = sorted(set(int(s) for s in seeds) & set(self.all_pilot_seeds))
        if bad:
            raise SeedPolicyError(
                f"seeds {bad} are pilot seeds of the pre-registration {self.name!r} (the search chose its "
                f"settings with {list(self.all_pilot_seeds)}); verdicts are reported on other seeds, e.g. the "
                f"held-out {self.held_out_text()}")

    def held_out_text(self) -> str:
        """The held-out seeds in words, e.g. ``quick [10, 11, 12]; full [10, 11, 12, 13, 14]``."""
        return "; ".join(f"{p} {list(s)}" for p, s in self.held_out.items())

    # ------------------------------------------------------------------ reports
    def describe(self) -> str:
        """One line for reports: the file, its sha256 and whether it is the committed one."""
        where = os.path.basename(self.path)
        if self.committed:
            state = "the committed file"
        elif self.committed_sha256 is None:
            state = f"NOT a committed file (the package ships no pre-registration named {self.name!r})"
        else:
            state = f"NOT the committed file (committed sha256 {self.committed_sha256})"
        return f"pre-registration {self.name!r} ({where}) sha256 {self.sha256}: {state}"

    def to_meta(self) -> dict[str, Any]:
        """What a report records about it (``results.json`` ``meta.preregistration``)."""
        return {"name": self.name, "data": self.data, "file": os.path.basename(self.path), "sha256": self.sha256,
                "committed_sha256": self.committed_sha256, "committed": self.committed,
                "pilot_seeds": list(self.all_pilot_seeds),
                "held_out": {k: list(v) for k, v in self.held_out.items()}}


# ---------------------------------------------------------------------------- loading
def packaged_path(name: str = "patterns") -> str:
    """The path of the packaged pre-registration ``name``."""
    if name not in COMMITTED_SHA256:
        raise ValueError(f"pre-registration must be one of {sorted(COMMITTED_SHA256)}, got {name!r}")
    return os.path.join(_DIR, f"{name}.toml")


def packaged(name: str = "patterns") -> Preregistration:
    """The packaged pre-registration ``name`` (read from the installed file each call)."""
    return load(packaged_path(name))


def governing(data: str | None) -> Preregistration | None:
    """The packaged pre-registration that governs ``data`` (None or ``"patterns"``: the pattern data), or
    None when none does."""
    want = "patterns" if data is None else data
    for name in COMMITTED_SHA256:
        p = packaged(name)
        if p.data == want:
            return p
    return None


def load(path: str | os.PathLike) -> Preregistration:
    """Read and check a pre-registration file (see the module docstring for the format).

    Raises :class:`PreregistrationError` (a ValueError) naming the key for a file that breaks the format,
    FileNotFoundError for a missing one."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw_bytes = f.read()
    try:
        import tomllib  # Python >= 3.11
    except ImportError:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        d = tomllib.loads(raw_bytes.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PreregistrationError(f"{path}: not a valid TOML file: {exc}") from None
    return _from_dict(d, path=path, sha256=hashlib.sha256(raw_bytes).hexdigest())


def _from_dict(d: Mapping[str, Any], *, path: str, sha256: str) -> Preregistration:
    def err(msg: str) -> PreregistrationError:
        return PreregistrationError(f"{path}: {msg}")

    unknown = sorted(set(d) - _TOP_KEYS)
    if unknown:
        raise err(f"unknown key(s) {unknown}; accepted: {sorted(_TOP_KEYS)}")
    if d.get("format") != FORMAT:
        raise err(f"format must be {FORMAT}, got {d.get('format')!r}")
    for key in ("name", "data"):
        if not isinstance(d.get(key), str) or not d[key]:
            raise err(f"{key} must be a non-empty string, got {d.get(key)!r}")
    grid = d.get("grid")
    if not isinstance(grid, Mapping) or not grid:
        raise err("grid must be a non-empty table {axis: [values...]}")
    for axis, values in grid.items():
        if not isinstance(values, list) or not values:
            raise err(f"grid.{axis} must be a non-empty list, got {values!r}")
        if len({repr(v) for v in values}) != len(values):
            raise err(f"grid.{axis} repeats a value: {values}")
    stages = d.get("stages", {})
    if not isinstance(stages, Mapping) or any(not isinstance(v, Mapping) for v in stages.values()):
        raise err("stages must be a table of tables ([stages.\"NAME\"] with milestones and epochs)")
    if "stages" in grid:
        missing = [s for s in grid["stages"] if s not in stages]
        if missing:
            raise err(f"grid.stages names {missing}, which [stages] does not define")
    fixed = d.get("fixed", {})
    if not isinstance(fixed, Mapping):
        raise err("fixed must be a table")
    criterion = d.get("criterion")
    if not isinstance(criterion, Mapping) or not criterion:
        raise err("criterion must be a non-empty table")

    seeds = d.get("seeds")
    if not isinstance(seeds, Mapping):
        raise err("seeds must be a table with pilot and held_out")
    unknown = sorted(set(seeds) - _SEED_KEYS)
    if unknown:
        raise err(f"unknown key(s) seeds.{unknown}; accepted: {sorted(_SEED_KEYS)}")
    pilot = _seed_list(seeds.get("pilot"), "seeds.pilot", err)
    confirm = _seed_list(seeds.get("confirm", []), "seeds.confirm", err, empty=True)
    held = seeds.get("held_out")
    if not isinstance(held, Mapping) or not held:
        raise err("seeds.held_out must be a non-empty table {preset: [seeds...]}")
    held_out = {str(k): _seed_list(v, f"seeds.held_out.{k}", err) for k, v in held.items()}
    both = sorted(set(pilot) & set(confirm))
    if both:
        raise err(f"seeds {both} are both in seeds.pilot and seeds.confirm")
    overlap = sorted(set((*pilot, *confirm)) & {s for v in held_out.values() for s in v})
    if overlap:
        raise err(f"seeds {overlap} are both pilot and held-out seeds; the two sets must be disjoint")
    name = d["name"]
    return Preregistration(
        name=name, data=d["data"], grid={k: list(v) for k, v in grid.items()},
        stages={k: dict(v) for k, v in stages.items()}, fixed=dict(fixed), pilot_seeds=pilot,
        confirm_seeds=confirm, held_out=held_out, criterion=dict(criterion), path=os.path.abspath(path),
        sha256=sha256, committed_sha256=COMMITTED_SHA256.get(name), document=str(d.get("document", "")),
        statement=str(d.get("statement", "")), raw=dict(d),
    )


def _seed_list(value: Any, key: str, err, *, empty: bool = False) -> tuple[int, ...]:
    if not isinstance(value, list) or (not value and not empty):
        raise err(f"{key} must be a {'' if empty else 'non-empty '}list of ints >= 0, got {value!r}")
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in value):
        raise err(f"{key} must hold ints >= 0, got {value}")
    if len(set(value)) != len(value):
        raise err(f"{key} repeats a seed: {value}")
    return tuple(value)
