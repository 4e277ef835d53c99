"""The committed stubs (_native.pyi) must match the native module: every public name, and every public member
of every class, on both sides. Fails when the Rust side changes and the stubs were not updated."""

from __future__ import annotations

import ast
import inspect
import pathlib

import tasker_core
from tasker_core import _native

STUB = pathlib.Path(tasker_core.__file__).with_name("_native.pyi")
EXCEPTION_MEMBERS = {"code", "details", "causes"}


def _stub() -> dict:
    tree = ast.parse(STUB.read_text())
    names: dict = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            members = set()
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    members.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    members.add(item.target.id)
            names[node.name] = members
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names[node.name] = None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = None
    return names


def _public(obj: object) -> set:
    own = set(vars(obj)) if inspect.isclass(obj) else set()
    return {n for n in own if not n.startswith("_") or n in ("__enter__", "__exit__", "__iter__", "__next__", "__init__")}


def test_the_stub_declares_exactly_the_native_names() -> None:
    stub = {n for n in _stub() if n != "Json"}
    native = {n for n in dir(_native) if not n.startswith("_")} | {"__version__"}
    assert sorted(native - stub) == [], "names missing from _native.pyi"
    assert sorted(stub - native) == [], "names in _native.pyi that the native module does not have"


def test_the_stub_declares_every_member_of_every_class() -> None:
    for name, members in _stub().items():
        if members is None:
            continue
        cls = getattr(_native, name)
        if issubclass(cls, BaseException):
            assert members <= EXCEPTION_MEMBERS, name
            continue
        native = _public(cls) - {"__init__"}
        declared = members - {"__init__"}
        if "__init__" in members:
            native.discard("__new__")
        assert sorted(native - declared) == [], f"{name}: members missing from the stub"
        assert sorted(declared - native) == [], f"{name}: stub members the class does not have"
