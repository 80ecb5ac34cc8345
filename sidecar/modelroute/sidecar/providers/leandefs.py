"""Import a module of definitions (google-genai's ``types``) running only the statements that are used.

Why: ``google.genai.types`` is one module of ~1,550 top-level statements (~460 pydantic models,
~460 TypedDicts, ~80 enums, aliases). Running all of it was ~1.2 G instructions, a third of a
three-provider sidecar's start (bench/README.md); the converters that build a Gemini request,
and everything the sidecar imports beside them, use about a third of it.

How: ``lean_definitions("google.genai.types")`` installs a finder for that one module. Its
module is created with the SDK's own code (the cached bytecode, as a normal import reads it)
but none of its statements run at import, except imports and statements that define no name.
The source is split into top-level statements (a statement starts at a line with no indent
that does not continue one, ``elif``, ``else``, a closing bracket, and that the module's
bytecode has instructions for: not a line of a string); each defines names
(``class X``, ``def f``, ``X = ...``, or the assignments inside an ``if``). Reading a name
from the module (``types.Content``, ``from .types import HttpOptions``) runs the statements
that define it and, first, those defining every name they use (their bytecode's names and
string forward references, method bodies included, so that no global is ever missing when
one of them runs or is called), in source order. A class statement runs the body code
object of the module's own bytecode through ``__build_class__`` from a ``<module>`` frame, as
the module would; other statements are compiled from their source lines. ``dir()`` runs the
rest first (``everything``); a star import (``types`` has no ``__all__``) sees only what has run.

``string_annotations("google.genai.models", ...)``: google-genai has no ``from __future__ import
annotations``, so defining its converters' module evaluated every method signature, which named
two thirds of ``types``. Those modules are compiled as if they had that line (their annotations
stay strings; none of them reads its own), their code cached beside their pyc.

Objects are the SDK's own, created by its own code, only fewer of them: the wire tests
(tests/unit/sidecar/test_leanimport.py, tests/unit/translate/test_sdk_wire.py) prove the
requests are byte-identical, and ``test_leandefs.py`` that the statement split of the
installed SDK matches the compiler's and that every name comes out the same.
"""

from __future__ import annotations
import __future__

import builtins
import importlib.abc
import importlib.machinery
import importlib.util
import marshal
import os
import re
import struct
import sys
import threading
import types
from collections.abc import Iterator, Sequence
from typing import Any

# A line that starts a top-level statement: no indent, not a comment, not a continuation.
_START = re.compile(r"(?![ \t\r#)\]}]|(?:elif|else|except|finally)\b).")
_CLASS = re.compile(r"class[ \t]+(\w+)")
_DEF = re.compile(r"(?:async[ \t]+)?def[ \t]+(\w+)")
_ASSIGN = re.compile(r"(\w+)[ \t]*(?::[^=\n]*)?=(?!=)")
_INNER = re.compile(r"^[ \t]+(?:(?:class|def)[ \t]+(\w+)|(\w+)[ \t]*(?::[^=\n]*)?=(?!=))", re.M)
_IDENT = re.compile(r"[A-Za-z_]\w*")
_FORWARD = re.compile(r"[\w.\[\],|'\"]+")  # a string that may be a type (a forward reference), not prose
_EAGER = ("import ", "from ")

_BUILD = compile("cls = __build_class__(body, name, *bases, **keywords)", "<leandefs>", "exec")
_HEADER = "(lambda *bases, **keywords: (bases, keywords))"


class _Statement:
    __slots__ = ("code", "compiled", "defines", "line", "needs", "text")

    def __init__(self, line: int, text: str, defines: tuple[str, ...]) -> None:
        self.line = line  # 1-based line of its first line
        self.text = text
        self.defines = defines
        self.code: types.CodeType | None = None  # for a class: its body, from the module's bytecode
        self.compiled: types.CodeType | None = None
        self.needs: set[str] | None = None


def _names(code: types.CodeType) -> Iterator[str]:
    """Every name ``code`` and the code nested in it may look up, and those in its forward references."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)
        elif isinstance(const, str) and _FORWARD.fullmatch(const.replace(", ", ",").replace(" | ", "|")):
            yield from _IDENT.findall(const)


def split(source: str, code: types.CodeType) -> list[tuple[int, str]]:
    """The top-level statements of ``source`` (compiled to the module's ``code``): (first line, text).

    A statement starts at a line with no indent that does not continue one and that the module's
    own bytecode has instructions for (a line of a string at column 0 has none)."""
    lines = source.split("\n")
    starts = [n for n in sorted({n for _, _, n in code.co_lines() if n is not None}) if _START.match(lines[n - 1])]
    ends = [*starts[1:], len(lines) + 1]
    return [(a, "\n".join(lines[a - 1:b - 1]) + ("\n" if b <= len(lines) else "")) for a, b in zip(starts, ends, strict=True)]


def _defines(text: str) -> tuple[str, ...]:
    for pattern in (_CLASS, _DEF, _ASSIGN):
        m = pattern.match(text)
        if m:
            return (m.group(1),)
    if text.startswith(("if ", "try:", "with ")):
        return tuple(dict.fromkeys(a or b for a, b in _INNER.findall(text)))
    return ()


class _Plan:
    """One lean module's statements, which have run, and where each name is defined."""

    def __init__(self, module: types.ModuleType, code: types.CodeType, source: str, filename: str) -> None:
        self.module = module
        self.filename = filename
        self.lock = threading.RLock()
        self.headers: dict[str, types.CodeType] = {}
        self.statements = [_Statement(line, text, _defines(text)) for line, text in split(source, code)]
        self.pending = set(range(len(self.statements)))
        self.where: dict[str, list[int]] = {}
        bodies = {(c.co_name, c.co_firstlineno): c for c in code.co_consts if isinstance(c, types.CodeType)}
        for i, st in enumerate(self.statements):
            for name in st.defines:
                self.where.setdefault(name, []).append(i)
            m = _CLASS.match(st.text)
            if m:
                st.code = bodies.pop((m.group(1), st.line), None)
                if st.code is None:
                    raise ImportError(f"{filename}:{st.line}: class {m.group(1)} not found in the bytecode")
        if any(c.co_name != "<lambda>" and not c.co_name.startswith("<") and c.co_name not in self.where
               for c in bodies.values()):
            raise ImportError(f"{filename}: the statement split does not match the bytecode")

    def start(self) -> None:
        """Run what runs at import: imports and statements that define no name."""
        for i, st in enumerate(self.statements):
            if not st.defines or st.text.startswith(_EAGER):
                self._run_with_needs(i)

    def define(self, name: str) -> bool:
        with self.lock:
            for i in self.where.get(name, ()):
                self._run_with_needs(i)
            return name in self.module.__dict__

    def everything(self) -> None:
        with self.lock:
            for i in sorted(self.pending):
                self._run_with_needs(i)

    def _run_with_needs(self, index: int) -> None:
        if index not in self.pending:
            return
        ns = self.module.__dict__
        todo, closure = [index], {index}
        while todo:  # every statement that defines a name used by these, not yet defined
            st = self.statements[todo.pop()]
            for name in self._needs(st):
                if name in ns:
                    continue
                for j in self.where.get(name, ()):
                    if j in self.pending and j not in closure:
                        closure.add(j)
                        todo.append(j)
        for j in sorted(closure):
            if j in self.pending:
                self.pending.discard(j)
                self._run(self.statements[j])

    def _needs(self, st: _Statement) -> set[str]:
        if st.needs is None:
            names = set(_names(self._compiled(st)))
            if st.code is not None:
                names.update(_names(st.code))
            st.needs = names
        return st.needs

    def _compiled(self, st: _Statement) -> types.CodeType:
        """The statement's code; for a class only its header (bases and keywords), shared by equal headers."""
        if st.compiled is None:
            if st.code is not None:
                head = _header(st.text)
                st.compiled = self.headers.get(head)
                if st.compiled is None:
                    st.compiled = self.headers[head] = compile(_HEADER + head, self.filename, "eval")
            else:
                st.compiled = _at(compile(st.text, self.filename, "exec"), st.line - 1)
        return st.compiled

    def _run(self, st: _Statement) -> None:
        ns = self.module.__dict__
        if st.code is None:
            exec(self._compiled(st), ns)
            return
        bases, keywords = eval(self._compiled(st), ns)
        scope: dict[str, Any] = {"body": types.FunctionType(st.code, ns), "name": st.code.co_name,
                                 "bases": bases, "keywords": keywords, "__build_class__": builtins.__build_class__}
        exec(_BUILD, ns, scope)  # from a ``<module>`` frame, as the module's own code (pydantic looks)
        ns[st.code.co_name] = scope["cls"]


def _at(code: types.CodeType, offset: int) -> types.CodeType:
    """``code`` (and the code nested in it) moved ``offset`` lines down: its lines in the module's file."""
    consts = tuple(_at(c, offset) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_firstlineno=code.co_firstlineno + offset, co_consts=consts)


def _header(text: str) -> str:
    """``(bases, keywords)`` of a class statement's text, ``()`` if it has none."""
    m = _CLASS.match(text)
    assert m is not None
    rest = text[m.end():]
    if not rest.startswith("("):
        return "()"
    depth = 0
    for i, ch in enumerate(rest):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0:
            return rest[:i + 1]
    raise SyntaxError(f"class {m.group(1)}: unbalanced header")


class _LeanDefinitions(types.ModuleType):
    """A module of definitions whose statements run when a name they define is first read."""

    def __getattr__(self, name: str) -> Any:
        plan: _Plan | None = self.__dict__.get("_modelroute_plan")
        if plan is not None and not (name.startswith("__") and name.endswith("__")) and plan.define(name):
            return self.__dict__[name]
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        plan: _Plan | None = self.__dict__.get("_modelroute_plan")
        if plan is not None:
            plan.everything()
        return list(self.__dict__)


class _Loader(importlib.abc.Loader):
    def __init__(self, real: importlib.machinery.SourceFileLoader) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        name = module.__name__
        code = self.real.get_code(name)
        source = self.real.get_source(name)
        if code is None or source is None:
            raise ImportError(f"{name}: no code or source")
        try:
            plan = _Plan(module, code, source, code.co_filename)
        except (ImportError, SyntaxError):  # a layout this split does not know: the module as it is
            exec(code, module.__dict__)
            return
        module.__dict__["__builtins__"] = builtins.__dict__
        module.__dict__["_modelroute_plan"] = plan
        module.__class__ = _LeanDefinitions
        plan.start()


class _StringAnnotations(importlib.machinery.SourceFileLoader):
    """A module compiled as if it began with ``from __future__ import annotations``; its code cached beside its pyc.

    The cache (``__pycache__/<name>.<tag>[.opt-N].annotations.pyc``: magic, source mtime and size,
    then the marshalled code) is written, like a ``.pyc``, when it is missing or stale, the directory is
    writable and bytecode may be written (not under ``PYTHONDONTWRITEBYTECODE``/``-B``): an image built
    with a read-only root makes it at build time (the Dockerfile imports the gemini adapter); without
    it each start compiles the module.
    """

    def get_code(self, fullname: str) -> types.CodeType:
        path = self.get_filename(fullname)
        stat = os.stat(path)
        key = importlib.util.MAGIC_NUMBER + struct.pack("<qq", stat.st_mtime_ns, stat.st_size)
        cache = annotations_cache(path)
        try:
            with open(cache, "rb") as f:
                data = f.read()
            if data[:len(key)] == key:
                code = marshal.loads(data[len(key):])
                if isinstance(code, types.CodeType):
                    return code
        except (OSError, ValueError, EOFError, TypeError):
            pass
        compiled: types.CodeType = compile(self.get_data(path), path, "exec", flags=_ANNOTATIONS, dont_inherit=True)
        if sys.dont_write_bytecode:
            return compiled
        try:
            os.makedirs(os.path.dirname(cache), exist_ok=True)
            partial = f"{cache}.{os.getpid()}"
            with open(partial, "wb") as f:
                f.write(key + marshal.dumps(compiled))
            os.replace(partial, cache)
        except OSError:
            pass
        return compiled


_ANNOTATIONS = __future__.annotations.compiler_flag


def annotations_cache(path: str) -> str:
    """Where ``_StringAnnotations`` caches the code of the source file ``path``."""
    return importlib.util.cache_from_source(path).removesuffix(".pyc") + ".annotations.pyc"


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.names: set[str] = set()
        self.string_annotations: set[str] = set()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names and fullname not in self.string_annotations:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        if fullname in self.names:
            spec.loader = _Loader(spec.loader)
        else:
            spec.loader = _StringAnnotations(fullname, spec.loader.path)
        return spec


_finder = _Finder()


def _install() -> None:
    """This finder first: ahead of ``leanimport``'s, which would import the named modules as usual."""
    if sys.meta_path[:1] != [_finder]:
        if _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
        sys.meta_path.insert(0, _finder)


def lean_definitions(name: str) -> None:
    """From now on ``name`` (not imported yet) is imported as a lean module of definitions (module docstring)."""
    if name in sys.modules:
        return  # imported normally already: used as it is
    _finder.names.add(name)
    _install()


def string_annotations(*names: str) -> None:
    """From now on the modules ``names`` (not imported yet) are compiled with annotations left unevaluated.

    Their functions' annotations (google-genai's signatures name hundreds of ``types``) then no
    longer make a lean module of definitions run what they name; nothing else in them changes.
    """
    for name in names:
        if name not in sys.modules:
            _finder.string_annotations.add(name)
    _install()
