"""The roles of :class:`~lrdecay.trainer.TrainConfig`'s fields, declared once on each field.

Each field is made with :func:`config_field`, which stores in the dataclass field's metadata the roles
it plays, a one-line help text and how the ``lrdecay train`` flag of that name reads its value. Every
list of fields elsewhere in the package is derived from these declarations with :func:`fields_with`
(the fields a run id leaves out, those a resumed run may change, those the data build reads, those that
may differ between members of a stacked model, those a schedule reads) and the command line's flags with
:func:`flag_specs`, so a new field is declared in one place and cannot be forgotten in a list.

Roles:

``HASHED`` / ``UNHASHED`` (exactly one per field)
    whether the field enters a run's id (:func:`lrdecay.sweep.run_id`); an unhashed field changes how a
    run is watched or where it runs, never its numbers or its table rows.
``OBSERVATION``
    changes how a run is observed, not the numbers it produces: a checkpoint may be resumed under a
    config that differs only in these (every unhashed field is one).
``DATA``
    read by the trainer's data build: runs equal in these train on the same data.
``PER_MEMBER``
    may differ between the members of one stacked model (each member has its own data draw, optimizer,
    schedule and bookkeeping); every other field must be equal across the members.
``SCHEDULE``
    a parameter of an LR schedule; which schedules read it is declared once, in
    :mod:`lrdecay.optim.registry`, and :func:`check_roles` holds the two against each other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from lrdecay.optim.registry import readers_of

__all__ = ["HASHED", "UNHASHED", "OBSERVATION", "DATA", "PER_MEMBER", "SCHEDULE", "ROLES", "config_field",
           "fields_with", "roles_of", "schedule_fields", "FlagSpec", "flag_specs", "no_flag_reasons", "check_roles"]

HASHED = "hashed"
UNHASHED = "unhashed"
OBSERVATION = "observation"
DATA = "data"
PER_MEMBER = "per_member"
SCHEDULE = "schedule"
ROLES = frozenset({HASHED, UNHASHED, OBSERVATION, DATA, PER_MEMBER, SCHEDULE})

_KEY = "lrdecay"  # the metadata key of a field's declaration (other tools may add their own keys)


@dataclass(frozen=True)
class _Declaration:
    roles: frozenset[str]
    help: str
    choices: Callable[[], Sequence[str]] | None
    items: str | None
    aliases: tuple[tuple[str, Any, str], ...]
    no_flag: str | None


def config_field(
    default: Any = dataclasses.MISSING,
    *,
    roles: Iterable[str],
    help: str,
    choices: Callable[[], Sequence[str]] | None = None,
    items: str | None = None,
    aliases: Iterable[tuple[str, Any, str]] = (),
    no_flag: str | None = None,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field of a config with its declaration (see the module docstring).

    ``roles``: the field's roles, exactly one of ``HASHED`` / ``UNHASHED`` among them. ``help``: one line
    (the ``lrdecay train --help`` text). ``choices``: a function returning the accepted values (called when a parser is built, so the
    modules that define them load late). ``items``: for a list field, what its comma-separated flag value
    holds, e.g. ``"epochs, e.g. 10,20"``. ``aliases``: extra flags ``(option, value, help)`` that set
    the field to a fixed value (``--full-batch``: ``batch_size=None``). ``no_flag``: why the field has no
    generated ``lrdecay train`` flag (None: it has one, ``--name-with-dashes``).
    """
    roles = frozenset(roles)
    unknown = sorted(roles - ROLES)
    if unknown:
        raise ValueError(f"roles must be among {sorted(ROLES)}, got {unknown}")
    if len(roles & {HASHED, UNHASHED}) != 1:
        raise ValueError(f"roles must hold exactly one of {HASHED!r} and {UNHASHED!r}, got {sorted(roles)}")
    if not help or not help.strip():
        raise ValueError("help must be a non-empty line")
    decl = _Declaration(roles, help, choices, items, tuple(aliases), no_flag)
    kw: dict[str, Any] = {"metadata": {_KEY: decl}}
    if default_factory is not None:
        kw["default_factory"] = default_factory
    else:
        kw["default"] = default
    return dataclasses.field(**kw)


def _declaration(f: dataclasses.Field) -> _Declaration:
    decl = f.metadata.get(_KEY)
    if decl is None:
        raise TypeError(f"config field {f.name!r} declares no roles: make it with lrdecay.trainer.fields.config_field")
    return decl


def check_roles(cls: type) -> None:
    """Raise TypeError naming the first field of dataclass ``cls`` made without :func:`config_field`, or
    whose ``SCHEDULE`` role disagrees with the schedule registry (the role exactly when a schedule reads
    the field)."""
    for f in dataclasses.fields(cls):
        if (SCHEDULE in _declaration(f).roles) != bool(readers_of(f.name)):
            raise TypeError(f"config field {f.name!r}: the {SCHEDULE!r} role must be declared exactly when a "
                            f"schedule of lrdecay.optim.registry reads the field (readers: {readers_of(f.name)})")


def roles_of(cls: type, name: str) -> frozenset[str]:
    """The roles field ``name`` of ``cls`` declares."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        raise ValueError(f"{cls.__name__} has no field {name!r}")
    return _declaration(fields[name]).roles


def fields_with(cls: type, role: str) -> tuple[str, ...]:
    """The names of ``cls``'s fields that declare ``role``, in declaration order."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {sorted(ROLES)}, got {role!r}")
    return tuple(f.name for f in dataclasses.fields(cls) if role in _declaration(f).roles)


def schedule_fields(cls: type) -> dict[str, tuple[str, ...]]:
    """``{schedule: the fields it reads}`` over the fields with the ``SCHEDULE`` role."""
    out: dict[str, list[str]] = {}
    for name in fields_with(cls, SCHEDULE):
        for s in readers_of(name):
            out.setdefault(s, []).append(name)
    return {s: tuple(names) for s, names in out.items()}


# ------------------------------------------------------------------------------------------ flags
def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return f.default


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return ",".join(map(str, value)) if value else "empty"
    return str(value)


_SCALARS: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "str": str}


@dataclass(frozen=True)
class FlagSpec:
    """How one field reads its ``lrdecay train`` flag.

    ``kind``: ``"bool"`` (``--name`` / ``--no-name``) or ``"value"`` (one argument, read by
    :meth:`parse`). ``default``: the field's default, shown in the help."""

    name: str
    option: str
    kind: str
    help: str
    default: Any
    choices: tuple[str, ...] | None
    aliases: tuple[tuple[str, Any, str], ...]
    annotation: str
    items: str | None

    def parse(self, text: str) -> Any:
        """The field's value from the flag's text; ValueError saying what the flag accepts.

        ``none`` (or ``null``) is None for a field that accepts None; a list field takes comma-separated
        items (an empty text: the empty list)."""
        ann = self.annotation.replace(" ", "")
        parts = ann.split("|")
        optional = "None" in parts
        base = [p for p in parts if p != "None"][0]
        if optional and text.strip().lower() in ("none", "null"):
            return None
        if base.startswith("list[") and base.endswith("]"):
            item = _SCALARS[base[5:-1]]
            try:
                return [item(p.strip()) for p in text.split(",") if p.strip()]
            except ValueError:
                raise ValueError(f"{self.option} must be comma-separated {self.items or base[5:-1] + 's'}; "
                                 f"got {text!r}") from None
        try:
            value = _SCALARS[base](text)
        except ValueError:
            accepted = f"{'an' if base == 'int' else 'a'} {base}" + (" or none" if optional else "")
            raise ValueError(f"{self.option} must be {accepted}; got {text!r}") from None
        return value  # the parser checks choices (argparse's "invalid choice" message)

    @property
    def text(self) -> str:
        """The help line with the default."""
        return f"{self.help} (default: {_show(self.default)})"


def flag_specs(cls: type) -> list[FlagSpec]:
    """One :class:`FlagSpec` per field of ``cls`` that has a flag, in declaration order."""
    out = []
    for f in dataclasses.fields(cls):
        decl = _declaration(f)
        if decl.no_flag is not None:
            continue
        ann = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        base = [p for p in ann.replace(" ", "").split("|") if p != "None"]
        if len(base) != 1 or not (base[0] in (*_SCALARS, "bool") or
                                  (base[0].startswith("list[") and base[0][5:-1] in _SCALARS)):
            raise TypeError(f"config field {f.name!r} has type {ann!r}, which no flag reads; declare no_flag")
        choices = tuple(decl.choices()) if decl.choices is not None else None
        out.append(FlagSpec(f.name, "--" + f.name.replace("_", "-"), "bool" if base[0] == "bool" else "value",
                            decl.help, _default(f), choices, decl.aliases, ann, decl.items))
    return out


def no_flag_reasons(cls: type) -> dict[str, str]:
    """``{field: why it has no generated flag}``."""
    return {f.name: _declaration(f).no_flag for f in dataclasses.fields(cls) if _declaration(f).no_flag is not None}
