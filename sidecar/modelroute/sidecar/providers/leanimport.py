"""Import an SDK package without running its ``__init__``s: names resolve when first used.

Why: ``import openai`` runs ``openai/__init__.py``, which imports ``openai.types`` and with
it the whole generated type tree (hundreds of pydantic models); ``anthropic`` does the same
for its ~3,000 modules (``types.beta`` alone is ~1,800). The sidecar uses neither tree: the
SDK client only builds the URL and headers (``openai_anthropic._Builder``), bodies are the
translator's JSON. Paying for those trees was most of a sidecar's start-up time and of its
memory (bench/podstart.py, bench/README.md).

How: ``lean_package("openai")`` installs a finder for that package and its subpackages. A
package found through it is created without executing its ``__init__``; reading a name
from it (``openai.AsyncOpenAI``, or ``from ..types import X`` inside the SDK) looks the name
up in the ``__init__``'s relative re-exports (``from ._client import AsyncOpenAI``, read once
with ``ast``) and imports just that module. A name that is a submodule is imported as one.
Anything else (a name the ``__init__`` defines itself, ``__all__``) runs the real
``__init__`` in place, once, so the package behaves exactly as if imported normally: the
objects are the SDK's own, only fewer modules are loaded. A package already imported
normally (a test process that imported ``openai`` first) is used as it is.

``on_call``: names a module imports only to call them when the SDK sends a request or reads
an error, which the sidecar's SDK clients never do (they only build requests). Anthropic's
``_base_client`` imports ``lib._tracing.finish_api_call_span`` and
``_error_classes.make_status_error``, and through them about 1,000 modules of request and error
types (~0.35 s of CPU at every start: bench/README.md). Such a name resolves to a forwarder
that imports the SDK's real function on its first call and calls it; the module that defines
it (package or plain module) is created without running it, and any other name read from it
runs it in place, as above.

The wire tests (tests/unit/translate/test_sdk_wire.py, tests/unit/sidecar/test_sdk_contracts.py)
prove that the requests the SDKs build this way are the same.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

_DEFERRED = "_modelroute_deferred_init"  # the real loader of a package whose __init__ has not run


@functools.cache
def _reexports(origin: str) -> dict[str, tuple[str, str]]:
    """``name -> (relative module, name in it)`` for each ``from .x import name [as alias]`` at the top of ``origin``."""
    with open(origin, "rb") as f:
        tree = ast.parse(f.read(), origin)
    found: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level and node.module:
            for alias in node.names:
                if alias.name != "*":
                    found[alias.asname or alias.name] = ("." * node.level + node.module, alias.name)
    return found


def _forwarder(module: types.ModuleType, name: str) -> Callable[..., Any]:
    """A stand-in for the function ``name`` of ``module``: the first call resolves the SDK's own."""
    real: list[Callable[..., Any]] = []

    def call(*args: Any, **kwargs: Any) -> Any:
        if not real:
            real.append(module._resolve(name) if isinstance(module, _LeanPackage) else getattr(module, name))
        return real[0](*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__module__ = module.__name__
    return call


class _LeanPackage(types.ModuleType):
    """A package (or an ``on_call`` module) whose body has not run (yet): missing names are resolved one by one."""

    def __getattr__(self, name: str) -> Any:
        qualified = f"{self.__dict__['__spec__'].name}.{name}"
        if qualified in _finder.on_call:
            forwarder = _finder.forwarders.get(qualified)
            if forwarder is None:
                forwarder = _finder.forwarders[qualified] = _forwarder(self, name)
            return forwarder
        return self._resolve(name)

    def _resolve(self, name: str) -> Any:
        spec = self.__dict__["__spec__"]
        origin = spec.origin
        if spec.submodule_search_locations is not None and origin and origin.endswith(".py"):
            target = _reexports(origin).get(name)
            if target is not None:
                module = importlib.import_module(target[0], spec.name)
                if hasattr(module, target[1]):
                    value = getattr(module, target[1])
                else:  # ``from .pkg import submodule``
                    value = importlib.import_module(f"{target[0]}.{target[1]}", spec.name)
                setattr(self, name, value)
                return value
        if not (name.startswith("__") and name.endswith("__")):
            if spec.submodule_search_locations is None:  # an ``on_call`` module: any other name runs it
                self._run_init()
                return object.__getattribute__(self, name)
            qualified = f"{spec.name}.{name}"
            if qualified in sys.modules or importlib.machinery.PathFinder.find_spec(qualified, self.__path__):
                return importlib.import_module(qualified)
        elif name != "__all__":
            raise AttributeError(f"module {spec.name!r} has no attribute {name!r}")
        self._run_init()
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # The import system sets each imported submodule on its package. When the ``__init__``
        # re-exports another object under that name (``from .parse import parse``), the real
        # ``__init__`` would have bound the object: so the module is not stored, and the name
        # resolves to the re-export in ``__getattr__``.
        spec = self.__dict__.get("__spec__")
        if (spec is not None and isinstance(value, types.ModuleType) and value.__name__ == f"{spec.name}.{name}"
                and spec.origin and spec.origin.endswith(".py") and name in _reexports(spec.origin)):
            return
        super().__setattr__(name, value)

    def _run_init(self) -> None:
        """Run the package's own ``__init__`` in this module: from now on it is an ordinary module."""
        loader = self.__dict__.pop(_DEFERRED)
        self.__class__ = types.ModuleType  # type: ignore[assignment]
        loader.exec_module(self)


class _DeferInit(importlib.abc.Loader):
    def __init__(self, real: importlib.abc.Loader) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        module.__dict__[_DEFERRED] = self.real
        module.__class__ = _LeanPackage


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.roots: set[str] = set()
        self.on_call: set[str] = set()  # qualified names bound to forwarders
        self.deferred: set[str] = set()  # plain modules created without running them (they define on_call names)
        self.forwarders: dict[str, Callable[..., Any]] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not self._under_root(fullname):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        if spec.submodule_search_locations is None and fullname not in self.deferred:
            return spec  # a plain module: imported as usual
        spec.loader = _DeferInit(spec.loader)
        return spec


    def _under_root(self, fullname: str) -> bool:
        if fullname.partition(".")[0] in self.roots:
            return True
        return any(fullname == root or fullname.startswith(root + ".") for root in self.roots if "." in root)


_finder = _Finder()


def lean_package(name: str, on_call: Sequence[str] = ()) -> types.ModuleType:
    """The package ``name`` (top-level, or a subpackage: ``google.genai``), its ``__init__``s (and theirs
    below) deferred until needed.

    ``on_call``: qualified names (``pkg.module.function``) that resolve to forwarders (module docstring).
    """
    for qualified in on_call:
        module = qualified.rpartition(".")[0]
        if module != name and not module.startswith(name + "."):
            raise ValueError(f"{qualified}: not in package {name}")
        if module not in sys.modules:  # already imported (normally): used as it is
            _finder.on_call.add(qualified)
            _finder.deferred.add(module)
    if name not in _finder.roots:
        _finder.roots.add(name)
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)
    return importlib.import_module(name)
