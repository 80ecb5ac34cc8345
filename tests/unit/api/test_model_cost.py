"""What keeps the API models cheap to build: they are built on every sidecar start (issue 15 goal 1).

``bench/README.md`` (session 6, branch ``models``) has the instruction counts behind each rule.
"""

from __future__ import annotations
import __future__

import dataclasses
import importlib
import inspect
import pkgutil
import sys

from pydantic import BaseModel

import modelroute.api


def api_modules() -> list[str]:
    """Every module of ``modelroute.api``, imported."""
    names = [info.name for info in pkgutil.walk_packages(modelroute.api.__path__, "modelroute.api.")]
    for name in names:
        importlib.import_module(name)
    return names


def api_models() -> list[type[BaseModel]]:
    """Every pydantic model defined in ``modelroute.api`` (all its modules imported)."""
    api_modules()
    seen: list[type[BaseModel]] = []
    todo: list[type[BaseModel]] = [BaseModel]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.append(sub)
                todo.append(sub)
    return [m for m in seen if m.__module__.startswith("modelroute.api.")]


def test_default_factories_are_plain_functions() -> None:
    """``default_factory=list`` (or a model class) costs pydantic a signature read of a builtin (or the
    model's ``__signature__``) per field; ``lambda: []`` costs a twelfth of it."""
    models = api_models()
    assert len(models) > 50
    factories = 0
    for model in models:
        for name, field in model.model_fields.items():
            factory = field.default_factory
            if factory is None:
                continue
            factories += 1
            assert inspect.isfunction(factory), f"{model.__qualname__}.{name}: default_factory={factory!r}, use a lambda"
            assert factory.__code__.co_argcount == 0, f"{model.__qualname__}.{name}: a factory takes no arguments"
    assert factories > 40


def test_model_modules_keep_their_annotations_evaluated() -> None:
    """Under ``from __future__ import annotations`` every field annotation is a string that pydantic
    compiles and evaluates when it builds the model (~14 M instructions of a sidecar start)."""
    modules = {m.__module__ for m in api_models()}
    assert "modelroute.api.v1alpha1.spec" in modules
    lazy = sorted(m for m in modules if getattr(sys.modules[m], "annotations", None) is __future__.annotations)
    assert lazy == [], f"model modules with postponed annotations: {lazy}"


def test_no_dataclasses() -> None:
    """A frozen dataclass generates and compiles its methods when its class is made (~4 M instructions for
    five fields, 0.7 M as a ``NamedTuple``); the provider and parameter tables are NamedTuples."""
    made = [f"{name}.{obj.__qualname__}" for name in api_modules() for obj in vars(sys.modules[name]).values()
            if isinstance(obj, type) and obj.__module__ == name and dataclasses.is_dataclass(obj)]
    assert made == []
