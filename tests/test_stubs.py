"""The checked-in stubs ``_native.pyi`` must describe the compiled module: same public names, and the
same parameter names and kinds for every function and method (from PyO3's ``__text_signature__``)."""

import ast
import inspect
from pathlib import Path

import pytest

import lrdecay
import lrdecay._native as native

STUB = Path(lrdecay.__file__).with_name("_native.pyi")


def _stub_tree():
    return ast.parse(STUB.read_text())


def _params(args: ast.arguments):
    """(name, kind) pairs of a stub signature, in inspect's vocabulary, without self."""
    out = [(a.arg, "POSITIONAL_ONLY") for a in args.posonlyargs]
    out += [(a.arg, "POSITIONAL_OR_KEYWORD") for a in args.args]
    if args.vararg:
        out.append((args.vararg.arg, "VAR_POSITIONAL"))
    out += [(a.arg, "KEYWORD_ONLY") for a in args.kwonlyargs]
    if args.kwarg:
        out.append((args.kwarg.arg, "VAR_KEYWORD"))
    return [(n, k) for n, k in out if n != "self"]


def _runtime_params(obj):
    sig = inspect.signature(obj)
    return [(p.name, p.kind.name) for p in sig.parameters.values() if p.name != "self"]


def _stub_names():
    names = {}
    for node in _stub_tree().body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
    return names


def _public(obj):
    return {n for n in dir(obj) if not n.startswith("_")}


def test_stub_lists_exactly_the_public_names():
    assert set(_stub_names()) - {"__version__"} == _public(native)


@pytest.mark.parametrize("name", sorted(n for n in _public(native) if callable(getattr(native, n))))
def test_stub_signatures_match(name):
    node = _stub_names()[name]
    obj = getattr(native, name)
    if isinstance(node, ast.FunctionDef):
        loose = {(n, k.replace("POSITIONAL_OR_KEYWORD", "X")) for n, k in _params(node.args)}
        real = {(n, k.replace("POSITIONAL_OR_KEYWORD", "X")) for n, k in _runtime_params(obj)}
        assert _names(node.args) == [n for n, _ in _runtime_params(obj)], name
        assert loose == real, name
        return
    assert isinstance(node, ast.ClassDef), f"{name} is a class at run time"
    members = {m.name: m for m in node.body if isinstance(m, ast.FunctionDef)}
    for member in _public(obj):
        assert member in members, f"{name}.{member} missing from the stub"
        runtime = getattr(obj, member)
        stub = members[member]
        if callable(runtime) and not any(
            isinstance(d, ast.Name) and d.id == "property" for d in stub.decorator_list
        ):
            assert _names(stub.args) == [n for n, _ in _runtime_params(runtime)], f"{name}.{member}"
    init = members.get("__init__") or members.get("__new__")
    assert init is not None, f"{name} stub has no __init__/__new__"
    assert _names(init.args) == [n for n, _ in _runtime_params(obj)]


def _names(args: ast.arguments):
    return [n for n, _ in _params(args)]
