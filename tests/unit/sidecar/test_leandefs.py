"""``providers.leandefs``: a module of definitions runs only the statements that are read, and the same ones.

The request identity lean vs normal is ``test_leanimport.py``'s; here: the statement split of the
installed google-genai ``types`` is the compiler's, the lean module defines every name the normal
one does (same kinds, same pydantic fields), and on a small module, names come with what they need.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import marshal
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelroute.sidecar.providers import leandefs

from .test_leanimport import run_fresh

NAMES = textwrap.dedent("""
    import json, sys
    if sys.argv[1] == "lean":
        from modelroute.sidecar.providers.leandefs import lean_definitions
        lean_definitions("google.genai.types")
    from google.genai import types
    pending = len(types.__dict__["_modelroute_plan"].pending) if "_modelroute_plan" in types.__dict__ else 0
    names = {n: [type(getattr(types, n)).__name__, sorted(getattr(getattr(types, n), "model_fields", {}))]
             for n in dir(types) if not n.startswith("_")}
    print(json.dumps({"pending_before_dir": pending, "names": names,
                      "schema": [types.Schema.model_json_schema(), types.Content.model_json_schema()]}))
""")


def _names(mode: str) -> dict[str, Any]:
    return run_fresh(NAMES, mode)


def test_the_split_of_google_genai_types_is_the_compilers() -> None:
    spec = importlib.util.find_spec("google.genai.types")
    assert spec is not None and spec.origin is not None
    source = Path(spec.origin).read_text()
    code = compile(source, spec.origin, "exec")
    statements = leandefs.split(source, code)
    assert [s.lineno for s in ast.parse(source).body] == [line for line, _ in statements]
    assert "".join(text for _, text in statements) == source[source.index(statements[0][1]):]


def test_lean_types_define_every_name_the_normal_module_does() -> None:
    lean, full = _names("lean"), _names("full")
    assert lean["pending_before_dir"] > 0  # statements not run until dir() asked for everything
    assert full["pending_before_dir"] == 0
    assert lean["names"] == full["names"]
    assert len(lean["names"]) > 1000
    assert lean["schema"] == full["schema"]  # forward references resolve in the lean module


MODULE = textwrap.dedent('''
    """A module of definitions."""
    import typing
    from typing import Optional
    import pydantic

    RUNS: list[str] = []
    RUNS.append("import")  # defines no name: runs at import

    if typing.TYPE_CHECKING:
        Alias = int
    else:
        Alias = str


    class Leaf(pydantic.BaseModel):
        value: Optional[Alias] = None
        RUNS.append("Leaf")


    class Tree(pydantic.BaseModel):
        leaf: Optional[Leaf] = None
        kids: list["Tree"] = []
        RUNS.append("Tree")

        def depth(self) -> int:
            return helper(self)


    def helper(tree: "Tree") -> int:
        return 1 + max((helper(k) for k in tree.kids), default=0)


    Unused = dict[str, Leaf]
    RUNS.append("end")


    class Other(
        pydantic.BaseModel,
    ):
        RUNS.append("Other")
''')


@pytest.fixture
def lean_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    name = "modelroute_test_leandefs_module"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    leandefs.lean_definitions(name)
    try:
        yield importlib.import_module(name)
    finally:
        sys.modules.pop(name, None)
        leandefs._finder.names.discard(name)


def test_a_name_runs_its_statements_and_those_it_needs_in_source_order(lean_module: Any) -> None:
    assert lean_module.RUNS == ["import", "end"]
    assert "Leaf" not in lean_module.__dict__
    tree = lean_module.Tree(kids=[{"kids": [{}]}], leaf={"value": "x"})  # a forward reference to itself
    assert lean_module.RUNS == ["import", "end", "Leaf", "Tree"]  # Leaf first: Tree's field needs it
    assert tree.depth() == 3  # a method's global (helper) was defined with the class
    assert tree.leaf is not None and tree.leaf.value == "x"  # Alias: str, from the if's else
    assert "Other" not in lean_module.__dict__ and "Unused" not in lean_module.__dict__
    assert lean_module.Tree.__module__ == lean_module.__name__ and lean_module.Tree.__qualname__ == "Tree"
    assert lean_module.Other.__mro__[1] is pytest.importorskip("pydantic").BaseModel  # a multi-line header
    with pytest.raises(AttributeError):
        lean_module.missing  # noqa: B018
    assert "Unused" in dir(lean_module)
    assert lean_module.RUNS == ["import", "end", "Leaf", "Tree", "Other"]


def test_a_layout_the_split_does_not_know_imports_the_module_as_it_is(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    name = "modelroute_test_leandefs_decorated"
    (tmp_path / f"{name}.py").write_text("import functools\n@functools.total_ordering\nclass A:\n    def __lt__(self, o):\n"
                                         "        return True\n    def __eq__(self, o):\n        return False\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    leandefs.lean_definitions(name)
    try:
        module = importlib.import_module(name)
        assert type(module) is type(sys)  # the class body is not where the split put the statement
        assert module.A() <= module.A()
    finally:
        sys.modules.pop(name, None)
        leandefs._finder.names.discard(name)


@contextlib.contextmanager
def string_annotated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str, *,
                     write_bytecode: bool) -> Iterator[Path]:
    """A module ``name`` with ``text`` under ``tmp_path``, imported through ``string_annotations``; its source path."""
    source = tmp_path / f"{name}.py"
    source.write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", not write_bytecode)  # PYTHONDONTWRITEBYTECODE / -B
    leandefs.string_annotations(name)
    try:
        yield source
    finally:
        sys.modules.pop(name, None)
        leandefs._finder.string_annotations.discard(name)


def test_string_annotations_compile_a_module_as_if_annotations_were_deferred_and_cache_its_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "modelroute_test_string_annotations"
    text = "def f(x: NotDefinedHere) -> int:\n    return 1\nVALUE = 1\n"
    with string_annotated(tmp_path, monkeypatch, name, text, write_bytecode=True) as source:
        cache = Path(leandefs.annotations_cache(str(source)))
        module = importlib.import_module(name)  # a normal import raises NameError: the annotation is evaluated
        assert module.f.__annotations__ == {"x": "NotDefinedHere", "return": "int"} and module.f(0) == 1
        assert cache.is_file()
        del sys.modules[name]
        header = len(importlib.util.MAGIC_NUMBER) + 16  # magic, source mtime and size
        cache.write_bytes(cache.read_bytes()[:header] + marshal.dumps(compile("VALUE = 2", "x", "exec")))
        assert importlib.import_module(name).VALUE == 2  # the cached code is what runs
        del sys.modules[name]
        source.write_text("def f(x: NotDefinedHere) -> int:\n    return 3\nVALUE = 30\n")  # stale: size differs
        again = importlib.import_module(name)
        assert again.VALUE == 30 and again.f(0) == 3


def test_string_annotations_write_no_cache_where_bytecode_may_not_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "modelroute_test_string_annotations_no_cache"
    text = "def f(x: NotDefinedHere) -> int:\n    return 1\n"
    with string_annotated(tmp_path, monkeypatch, name, text, write_bytecode=False) as source:
        module = importlib.import_module(name)
        assert module.f.__annotations__ == {"x": "NotDefinedHere", "return": "int"}
        assert not Path(leandefs.annotations_cache(str(source))).exists()
        assert not (tmp_path / "__pycache__").exists()
