"""Seeded synthetic pattern datasets with tractable complexity (generated in Rust).

Our own construction following the idea of the PS10 set of You et al. (its exact construction is not
published): K classes; each *pattern* owns a block of input columns and has ``clusters_per_class``
centres per class on a sphere of radius ``radius``; a sample that carries the pattern has, in that block,
one of its class's centres plus Gaussian noise of scale ``spread``; other blocks are blank (noise only).
*Groups* say which patterns carry the label of their samples; a group with no pattern is a noise group
whose labels only memorization can fit. See the README for the presets.

>>> from lrdecay.data import pattern_dataset
>>> ds = pattern_dataset(1000, preset="ps10", seed=0, label_noise=0.2)
>>> ds.x.shape, ds.group_names
((1000, 128), ('easy', 'complex', 'noise'))
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lrdecay import _native
from lrdecay._validate import check_int, check_real

__all__ = ["pattern_dataset", "PatternDataset", "PRESETS", "MAX_N", "LIMITS"]

#: The limits the Rust generator enforces (``lrdecay._native.DATA_LIMITS``): ``max_n``,
#: ``max_classes``, ``max_dim``, ``max_clusters``, ``max_patterns``, ``max_groups``,
#: ``max_centre_values`` (n_classes * clusters_per_class * dim of one pattern), ``max_seed``.
LIMITS: dict[str, int] = dict(_native.DATA_LIMITS)
MAX_N = LIMITS["max_n"]
_MAX_SEED = LIMITS["max_seed"]
_PATTERN_FIELDS = ("name", "dim", "clusters_per_class", "radius", "spread", "center_seed")
_REQUIRED_FIELDS = ("name", "dim", "clusters_per_class", "radius", "spread")
_SPLITS = {"train": 0, "test": 1}


def _pattern(name, dim, clusters_per_class, radius, spread):
    return {"name": name, "dim": dim, "clusters_per_class": clusters_per_class, "radius": radius,
            "spread": spread, "center_seed": None}


_EASY = _pattern("easy", 64, 1, 4.0, 1.0)
_COMPLEX = _pattern("complex", 64, 4, 0.5, 0.05)

#: name -> {"n_classes", "patterns": [pattern dicts], "groups": [{"name", "patterns", "weight"}]}.
PRESETS: dict[str, dict[str, Any]] = {
    "ps10": {
        "n_classes": 10,
        "patterns": [_EASY, _COMPLEX],
        "groups": [
            {"name": "easy", "patterns": ["easy"], "weight": 0.45},
            {"name": "complex", "patterns": ["complex"], "weight": 0.45},
            {"name": "noise", "patterns": [], "weight": 0.10},
        ],
    },
    "ps10-clean": {
        "n_classes": 10,
        "patterns": [_EASY, _COMPLEX],
        "groups": [
            {"name": "easy", "patterns": ["easy"], "weight": 0.5},
            {"name": "complex", "patterns": ["complex"], "weight": 0.5},
        ],
    },
    "ps10-2c": {
        "n_classes": 10,
        "patterns": [_EASY, _COMPLEX, _pattern("complex8", 64, 8, 0.5, 0.05)],
        "groups": [
            {"name": "easy", "patterns": ["easy"], "weight": 0.3},
            {"name": "complex", "patterns": ["complex"], "weight": 0.3},
            {"name": "complex8", "patterns": ["complex8"], "weight": 0.3},
            {"name": "noise", "patterns": [], "weight": 0.1},
        ],
    },
    "toy": {
        "n_classes": 4,
        "patterns": [_pattern("easy", 8, 1, 4.0, 1.0), _pattern("complex", 8, 2, 0.5, 0.05)],
        "groups": [
            {"name": "easy", "patterns": ["easy"], "weight": 0.45},
            {"name": "complex", "patterns": ["complex"], "weight": 0.45},
            {"name": "noise", "patterns": [], "weight": 0.10},
        ],
    },
}


@dataclass(frozen=True, eq=False)
class PatternDataset:
    """A generated pattern dataset: numpy arrays plus the resolved spec.

    Attributes
    ----------
    x : float32 array (n, D), C-contiguous; columns ``pattern_slices[name]`` hold pattern ``name``'s block.
    y : int64 array (n,), observed labels (after label noise).
    y_clean : int64 array (n,), labels before label noise.
    group : int32 array (n,), group id = index into ``group_names``.
    flipped : bool array (n,), ``y != y_clean``.
    group_names : the full list of group names of the spec (ids index into it, also when only some groups
        were generated, e.g. ``groups=["complex"]``).
    n_classes, pattern_names, pattern_slices, spec : the resolved construction; ``spec`` is a plain
        JSON-serialisable dict.
    """

    x: np.ndarray
    y: np.ndarray
    y_clean: np.ndarray
    group: np.ndarray
    flipped: np.ndarray
    group_names: tuple[str, ...]
    n_classes: int
    pattern_names: tuple[str, ...]
    pattern_slices: dict[str, slice] = field(repr=False)
    spec: dict[str, Any] = field(repr=False)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to_torch(self, device=None) -> dict[str, Any]:
        """The arrays as torch tensors ``{"x", "y", "y_clean", "group", "flipped"}`` on ``device``
        (CPU tensors sharing memory with the numpy arrays when ``device`` is None)."""
        import torch

        arrays = {"x": self.x, "y": self.y, "y_clean": self.y_clean, "group": self.group, "flipped": self.flipped}
        out = {k: torch.from_numpy(v) for k, v in arrays.items()}
        if device is not None:
            out = {k: v.to(device) for k, v in out.items()}
        return out


def _check_name(what: str, name) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, got {type(name).__name__}")
    if not name:
        raise ValueError(f"{what} must be a non-empty str")
    return name


def _check_pattern(i: int, p, *, fill_required: bool = True) -> dict[str, Any]:
    """Validate one pattern dict; returns a normalised copy."""
    where = f"patterns[{i}]"
    if not isinstance(p, dict):
        raise TypeError(f"{where} must be a dict with keys {_PATTERN_FIELDS}, got {type(p).__name__}")
    unknown = set(p) - set(_PATTERN_FIELDS)
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(map(str, unknown))}; accepted: {_PATTERN_FIELDS}")
    if fill_required:
        missing = [k for k in _REQUIRED_FIELDS if k not in p]
        if missing:
            raise ValueError(f"{where}: missing keys {missing}; required: {_REQUIRED_FIELDS}")
    q = dict(p)
    name = _check_name(f"{where}.name", q["name"])
    where = f"pattern {name!r}"
    q["dim"] = check_int(f"{where}: dim", q["dim"], 1, LIMITS["max_dim"])
    q["clusters_per_class"] = check_int(
        f"{where}: clusters_per_class", q["clusters_per_class"], 1, LIMITS["max_clusters"]
    )
    q["radius"] = check_real(f"{where}: radius", q["radius"], 0.0, 1e6)
    q["spread"] = check_real(f"{where}: spread", q["spread"], 0.0, 1e6)
    cs = q.get("center_seed")
    q["center_seed"] = None if cs is None else check_int(f"{where}: center_seed", cs, 0, _MAX_SEED)
    return q


def _check_list(name: str, value) -> list:
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return list(value)


def _resolve(preset, n_classes, patterns, groups, overrides):
    """Resolve preset + overrides into (n_classes, patterns, full groups, selected group names)."""
    if not isinstance(preset, str):
        raise TypeError(f"preset must be a str, one of {sorted(PRESETS)}, got {type(preset).__name__}")
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    base = copy.deepcopy(PRESETS[preset])
    k = base["n_classes"] if n_classes is None else check_int("n_classes", n_classes, 2, LIMITS["max_classes"])

    pats = base["patterns"] if patterns is None else _check_list("patterns", patterns)
    pats = [_check_pattern(i, p) for i, p in enumerate(pats)]
    names = [p["name"] for p in pats]
    if len(set(names)) != len(names):
        raise ValueError(f"patterns: names must be unique, got {names}")
    if len(pats) > LIMITS["max_patterns"]:
        raise ValueError(f"patterns: at most {LIMITS['max_patterns']} patterns, got {len(pats)}")

    full = base["groups"]
    selected = None
    if groups is not None:
        groups = _check_list("groups", groups)
        if all(isinstance(g, str) for g in groups):
            known = [g["name"] for g in full]
            for g in groups:
                if g not in known:
                    raise ValueError(f"groups: unknown group {g!r}; preset {preset!r} has groups {known}")
            if len(set(groups)) != len(groups):
                raise ValueError(f"groups: names must be unique, got {groups}")
            selected = groups
        elif all(isinstance(g, dict) for g in groups):
            full = []
            for i, g in enumerate(groups):
                unknown = set(g) - {"name", "patterns", "weight"}
                if unknown or not {"name", "patterns"} <= set(g):
                    raise ValueError(
                        f"groups[{i}] must have keys 'name', 'patterns' and optionally 'weight', got {sorted(map(str, g))}"
                    )
                gp = g["patterns"]
                if isinstance(gp, (str, bytes)) or not isinstance(gp, (list, tuple)):
                    raise TypeError(f"groups[{i}].patterns must be a list of pattern names, got {type(gp).__name__}")
                full.append({
                    "name": _check_name(f"groups[{i}].name", g["name"]),
                    "patterns": [_check_name(f"groups[{i}].patterns[{j}]", p) for j, p in enumerate(gp)],
                    "weight": g.get("weight", 1.0),
                })
            gnames = [g["name"] for g in full]
            if len(set(gnames)) != len(gnames):
                raise ValueError(f"groups: names must be unique, got {gnames}")
        else:
            raise TypeError("groups must be a list of group names (str) or a list of group dicts, not a mix")

    for key, val in overrides.items():
        if key == "weights":
            if not isinstance(val, dict):
                raise TypeError(f"weights must be a dict group name -> weight, got {type(val).__name__}")
            known = {g["name"]: g for g in full}
            for gname, w in val.items():
                if gname not in known:
                    raise ValueError(f"weights: unknown group {gname!r}; groups are {list(known)}")
                known[gname]["weight"] = w
        elif key in names:
            if not isinstance(val, dict):
                raise TypeError(f"{key} (pattern override) must be a dict of pattern fields, got {type(val).__name__}")
            if "name" in val:
                raise ValueError(f"{key}: a pattern override cannot rename the pattern")
            i = names.index(key)
            pats[i] = _check_pattern(i, {**pats[i], **val})
        else:
            raise ValueError(
                f"unknown keyword argument {key!r}; accepted: pattern overrides {names} (dicts of "
                f"{_PATTERN_FIELDS[1:]}) and 'weights'"
            )

    for g in full:
        g["weight"] = check_real(f"group {g['name']!r}: weight", g["weight"], 0.0, 1e12, lo_open=True)
        for p in g["patterns"]:
            if p not in names:
                raise ValueError(f"group {g['name']!r} refers to unknown pattern {p!r}; patterns are {names}")
        if len(set(g["patterns"])) != len(g["patterns"]):
            raise ValueError(f"group {g['name']!r}: patterns must be unique, got {g['patterns']}")
    if len(full) > LIMITS["max_groups"]:
        raise ValueError(f"groups: at most {LIMITS['max_groups']} groups, got {len(full)}")
    for p in pats:
        if k * p["clusters_per_class"] * p["dim"] > LIMITS["max_centre_values"]:
            raise ValueError(
                f"pattern {p['name']!r}: n_classes * clusters_per_class * dim must be <= "
                f"{LIMITS['max_centre_values']}, got {k * p['clusters_per_class'] * p['dim']}"
            )
    if selected is None:
        selected = [g["name"] for g in full]
    return k, pats, full, selected


def pattern_dataset(
    n: int,
    *,
    preset: str = "ps10",
    split: str = "train",
    seed: int = 0,
    label_noise: float | None = None,
    n_classes: int | None = None,
    patterns: list[dict] | None = None,
    groups: list | None = None,
    **overrides,
) -> PatternDataset:
    """Generate ``n`` samples of a pattern dataset.

    Parameters
    ----------
    n:
        Number of samples, an integer in ``[1, 2**31 - 1]``.
    preset:
        One of :data:`PRESETS` (``"ps10"``, ``"ps10-clean"``, ``"ps10-2c"``, ``"toy"``).
    split:
        ``"train"`` or ``"test"``: independent samples over the same centres.
    seed:
        Integer in ``[0, 2**64 - 1]``; seeds the samples and (unless a pattern sets ``center_seed``) the
        centres. Sample i depends only on (seed, split, i) and its group.
    label_noise:
        None or a rate in ``[0, 1]``: exactly ``round(rate * n)`` labels flipped symmetrically to
        another class (see :func:`lrdecay.noise.corrupt_labels`). Never applied unless passed, also
        for ``split="test"``.
    n_classes:
        Override the preset's number of classes (``[2, 65536]``).
    patterns:
        Replace the preset's patterns: a list of dicts ``{name, dim, clusters_per_class, radius,
        spread, center_seed=None}``. Pattern p's centres come from the stream
        ``(center_seed or seed, p's position)``, so e.g. a transfer target can keep the easy pattern's
        centres and redraw a complex one by giving it another ``center_seed``.
    groups:
        Either a list of the spec's group names to generate only those (e.g. ``["complex"]`` for a
        probe set; ``group_names`` and the ids keep the full list), or a list of dicts
        ``{name, patterns: [pattern names], weight=1.0}`` defining new groups. A group with
        ``patterns=[]`` is a noise group (blank blocks, random label).
    **overrides:
        ``<pattern name>={field: value}`` changes fields of one pattern (e.g.
        ``complex={"radius": 0.3}``); ``weights={group name: weight}`` changes group weights.

    Returns
    -------
    PatternDataset

    Raises
    ------
    TypeError, ValueError
        On a bad argument, naming it and the accepted range, before any work.
    """
    n = check_int("n", n, 1, MAX_N)
    if not isinstance(split, str):
        raise TypeError(f"split must be 'train' or 'test', got {type(split).__name__}")
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    seed = check_int("seed", seed, 0, _MAX_SEED)
    rate = 0.0 if label_noise is None else check_real("label_noise", label_noise, 0.0, 1.0)
    k, pats, full, selected = _resolve(preset, n_classes, patterns, groups, overrides)

    for p in pats:
        if p["center_seed"] is None:
            p["center_seed"] = seed
    pnames = [p["name"] for p in pats]
    gnames = [g["name"] for g in full]
    sel = [gnames.index(s) for s in selected]
    weights = [full[i]["weight"] for i in sel]
    counts = _native.group_sizes(weights, n)

    spec = {
        "preset": preset,
        "n": n,
        "split": split,
        "seed": seed,
        "n_classes": k,
        "label_noise": rate,
        "patterns": pats,
        "groups": full,
        "selected_groups": list(selected),
        "group_counts": {gnames[i]: int(c) for i, c in zip(sel, counts)},
    }
    d = sum(p["dim"] for p in pats)
    x = np.empty((n, d), dtype=np.float32)
    y = np.empty(n, dtype=np.int64)
    y_clean = np.empty(n, dtype=np.int64)
    group = np.empty(n, dtype=np.int32)
    flipped = np.zeros(n, dtype=bool)  # Rust writes it as &mut [bool]: start from valid bools
    _fill(spec, x, y, y_clean, group, flipped)

    slices, off = {}, 0
    for p in pats:
        slices[p["name"]] = slice(off, off + p["dim"])
        off += p["dim"]
    return PatternDataset(
        x=x, y=y, y_clean=y_clean, group=group, flipped=flipped,
        group_names=tuple(gnames), n_classes=k, pattern_names=tuple(pnames), pattern_slices=slices, spec=spec,
    )


def _native_spec(spec: dict) -> dict:
    """The resolved ``spec`` (``PatternDataset.spec``) in the form the Rust binding reads
    (``rust/lrdecay-py/src/data.rs``, ``SpecIn``): patterns without names, only the generated groups,
    each with its id (index into the full group list) and its patterns as indices."""
    pnames = [p["name"] for p in spec["patterns"]]
    gnames = [g["name"] for g in spec["groups"]]
    by_name = {g["name"]: g for g in spec["groups"]}
    return {
        "n_classes": spec["n_classes"],
        "patterns": [
            {k: p[k] for k in ("dim", "clusters_per_class", "radius", "spread", "center_seed")}
            for p in spec["patterns"]
        ],
        "groups": [
            {
                "id": gnames.index(name),
                "patterns": [pnames.index(q) for q in by_name[name]["patterns"]],
                "weight": by_name[name]["weight"],
            }
            for name in spec["selected_groups"]
        ],
        "seed": spec["seed"],
        "split": _SPLITS[spec["split"]],
        "label_noise": spec["label_noise"],
    }


def _fill(spec: dict, x, y, y_clean, group, flipped) -> None:
    """Fill caller-allocated arrays with the dataset a resolved ``spec`` (``PatternDataset.spec``)
    describes, in Rust with the GIL released. Shared by :func:`pattern_dataset` and the benchmark that
    times generation into preallocated buffers."""
    _native.pattern_fill(x, y, y_clean, group, flipped, spec=_native_spec(spec))
