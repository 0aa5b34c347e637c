"""The package's import layers, read from the source of every module (imports inside functions included).

A module may import modules of its own layer and of the layers below it, never above; and no two modules
import each other, directly or round a circle. The layers, bottom up:

0. base: the ``lrdecay`` package itself (``__version__`` and lazily resolved names only), the compiled
   ``_native``, and the helpers every layer uses: ``_validate``, ``_atomic``, ``_outdir``;
1. ``schedules``: the LR schedules and their device encoding, which the kernels evaluate, and the
   host-decided decays (``host_decay``);
2. ``kernels``: the Triton kernels;
3. the training ingredients, side by side: ``optim``, ``data`` (with its re-export shims ``images``,
   ``noise``, ``augment``, ``idx``), ``ledger``, ``models``;
4. ``trainer``: one run;
5. ``sweep``: many runs;
6. ``experiments`` and ``report``: the paper's claims and their reports;
7. ``cli``: the command.

A violation that cannot be fixed at once goes in the allow-lists below, with why it is still there (both
are empty: the last one, the sweep.tasks <-> sweep.stack_train circle, went when the stacked engine moved
to the trainer). Fixing one means deleting its entry: a test fails while an entry matches nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lrdecay

PACKAGE = Path(lrdecay.__file__).resolve().parent

LAYERS: list[tuple[str, set[str]]] = [
    ("base", {"", "_native", "_validate", "_atomic", "_outdir"}),
    ("schedules", {"schedules", "host_decay"}),
    ("kernels", {"kernels"}),
    ("optim, data, ledger, models", {"optim", "data", "images", "noise", "augment", "idx", "ledger", "models"}),
    ("trainer", {"trainer"}),
    ("sweep", {"sweep"}),
    ("experiments", {"experiments", "report"}),
    ("cli", {"cli", "__main__"}),
]

# (importer, imported) pairs allowed to go up a layer, with the reason each is still there.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}

# Import circles still in the package (each as the set of modules on it), with the reason.
ALLOWED_CYCLES: dict[frozenset[str], str] = {}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (source file, is a package) for every Python module of the installed package."""
    mods = {"lrdecay._native": (PACKAGE / "_native.pyi", False)}
    for f in sorted(PACKAGE.rglob("*.py")):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    return mods


def _lazy_names(mods) -> dict[str, str]:
    """The ``lrdecay`` package's lazily resolved names (``_LAZY``: name -> the module defining it)."""
    tree = ast.parse(mods["lrdecay"][0].read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in targets):
                return ast.literal_eval(node.value)
    return {}


def imports_of(mod: str, source: str, is_pkg: bool, mods, lazy) -> set[str]:
    """The package's modules that ``mod`` (whose text is ``source``) imports, at import time or inside
    functions, TYPE_CHECKING included. ``from pkg import name`` counts as importing ``pkg.name`` when that
    is a module, else ``pkg``; names the ``lrdecay`` package resolves lazily count as their module."""

    def owner(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    here = mod if is_pkg else mod.rpartition(".")[0]
    out: set[str | None] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(owner(a.name) for a in node.names if a.name.split(".")[0] == "lrdecay")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = here.split(".")
                src = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                src = node.module or ""
            if src.split(".")[0] != "lrdecay":
                continue
            for a in node.names:
                if f"{src}.{a.name}" in mods:
                    out.add(f"{src}.{a.name}")
                elif src == "lrdecay" and a.name in lazy:
                    out.add(owner(lazy[a.name]))
                else:
                    out.add(owner(src))
    out.discard(None)
    out.discard(mod)
    return out  # type: ignore[return-value]


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, for every module but the package itself (it resolves
    its names lazily, by string) and the compiled ``_native``."""
    mods = _modules()
    lazy = _lazy_names(mods)
    return {mod: imports_of(mod, path.read_text(encoding="utf-8"), is_pkg, mods, lazy)
            for mod, (path, is_pkg) in mods.items() if mod not in ("lrdecay", "lrdecay._native")}


def layer_of(mod: str) -> int:
    """The layer index of a module: that of its top-level name under ``lrdecay``."""
    top = mod.split(".")[1] if "." in mod else ""
    for i, (_, names) in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{mod} is in no layer: add lrdecay.{top} to LAYERS in {Path(__file__).name}")


def upward_imports(graph) -> dict[tuple[str, str], tuple[str, str]]:
    """(importer, imported) -> (importer's layer, imported's layer) for every import that goes up."""
    return {(a, b): (LAYERS[layer_of(a)][0], LAYERS[layer_of(b)][0])
            for a, bs in graph.items() for b in bs if layer_of(b) > layer_of(a)}


def cycles(graph) -> list[frozenset[str]]:
    """The import circles: strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_every_module_is_in_a_layer(graph):
    for mod in graph:
        layer_of(mod)


def test_imports_go_down_the_layers_only(graph):
    bad = {k: v for k, v in upward_imports(graph).items() if k not in ALLOWED_UPWARD}
    assert not bad, "imports that go up a layer:\n" + "\n".join(
        f"  {a} ({la}) imports {b} ({lb})" for (a, b), (la, lb) in sorted(bad.items()))


def test_no_import_circles(graph):
    bad = [c for c in cycles(graph) if c not in ALLOWED_CYCLES]
    assert not bad, "import circles:\n" + "\n".join(f"  {' <-> '.join(sorted(c))}" for c in bad)


def test_the_allow_lists_name_only_violations_that_still_exist(graph):
    """An entry whose violation is gone must be deleted, so the lists only shrink."""
    gone = [k for k in ALLOWED_UPWARD if k not in upward_imports(graph)]
    gone += [sorted(c) for c in ALLOWED_CYCLES if c not in cycles(graph)]
    assert not gone, f"fixed, delete from the allow-list in {Path(__file__).name}: {gone}"


# ---------------------------------------------------------------------------- the checker itself
def test_the_checker_finds_an_upward_import_and_a_circle(monkeypatch):
    g = {"lrdecay.trainer.loop": {"lrdecay.sweep.engine"}, "lrdecay.sweep.engine": {"lrdecay.sweep.store"},
         "lrdecay.sweep.store": {"lrdecay.sweep.engine"}, "lrdecay.optim.sgd": {"lrdecay.schedules"}}
    assert upward_imports(g) == {("lrdecay.trainer.loop", "lrdecay.sweep.engine"): ("trainer", "sweep")}
    assert cycles(g) == [frozenset({"lrdecay.sweep.engine", "lrdecay.sweep.store"})]
    with pytest.raises(AssertionError, match="lrdecay.newthing to LAYERS"):
        layer_of("lrdecay.newthing.x")


def test_the_checker_reads_every_form_of_import():
    mods = {m: None for m in ("lrdecay", "lrdecay._native", "lrdecay.trainer", "lrdecay.trainer.config",
                              "lrdecay.trainer.loop", "lrdecay.sweep", "lrdecay.sweep.spec", "lrdecay.ledger")}
    lazy = {"Ledger": "lrdecay.ledger"}
    source = """
import numpy
import lrdecay.sweep.spec
from . import config
from .config import TrainConfig
from .. import sweep
from lrdecay import _native, Ledger
from lrdecay.sweep.spec import run_id, missing_name


def later():
    from lrdecay.trainer import loop  # inside a function
"""
    got = imports_of("lrdecay.trainer.state", source, False, mods, lazy)
    assert got == {"lrdecay.sweep.spec", "lrdecay.trainer.config", "lrdecay.sweep", "lrdecay._native",
                   "lrdecay.ledger", "lrdecay.trainer.loop"}
    # in a package's __init__, "." is the package itself
    assert imports_of("lrdecay.trainer", "from .config import x", True, mods, lazy) == {"lrdecay.trainer.config"}


def test_the_graph_holds_the_package(graph):
    assert "lrdecay.trainer.loop" in graph and "lrdecay.cli" in graph
    assert any(m.startswith("lrdecay.experiments") for m in graph["lrdecay.cli"])  # imported in functions
    assert "lrdecay._native" in graph["lrdecay.ledger"]
