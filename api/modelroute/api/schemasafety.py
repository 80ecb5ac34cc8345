"""Which JSON Schemas modelroute will compile: bounded, and with local references only.

A schema reaches the sidecar from apps (``/v1/extract``) and from config (a route's
``output.schema``). ``jsonschema`` would fetch any ``$ref`` it cannot resolve locally (a URL,
or a relative ref under an ``$id``), blocking the event loop on the way: no schema may ever
cause network or file access. ``schema_problem`` says what is wrong with a schema before it is
compiled (pure; the API model checks config with it, the sidecar checks every schema it compiles
with it and compiles with a registry that retrieves nothing):

* every ``$ref`` / ``$dynamicRef`` / ``$recursiveRef`` is ``#`` or a JSON pointer ``#/...``
  into the same document, and the pointer must lead somewhere;
* ``$id`` only at the root (an embedded ``$id`` moves the base that references resolve against);
* at most ``MAX_DEPTH`` levels of nesting and ``MAX_NODES`` values in all.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

MAX_DEPTH = 40
MAX_NODES = 20_000

_REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
_NAME_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"})
_DATA = frozenset({"enum", "const", "examples", "default"})


def _at(path: str, key: str | int) -> str:
    return f"{path}/{key}"


def schema_problem(schema: Any) -> str | None:
    """What makes ``schema`` unsafe to compile (naming where), or None. Iterative: any depth is safe."""
    if not isinstance(schema, dict):
        return "a JSON Schema must be an object"
    nodes = 0
    # (value, JSON-pointer path, depth, the value is a map of names to schemas)
    stack: list[tuple[Any, str, int, bool]] = [(schema, "", 0, False)]
    while stack:
        value, path, depth, names = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            return f"the schema has more than {MAX_NODES} values"
        if depth > MAX_DEPTH:
            return f"the schema nests deeper than {MAX_DEPTH} levels (at {path or '/'})"
        if isinstance(value, list):
            stack.extend((v, _at(path, i), depth + 1, False) for i, v in enumerate(value))
            continue
        if not isinstance(value, dict):
            continue
        if names:
            stack.extend((v, _at(path, k), depth + 1, False) for k, v in value.items())
            continue
        for key in _REF_KEYWORDS:
            if key in value:
                problem = _ref_problem(schema, value[key], key, path)
                if problem is not None:
                    return problem
        if "$id" in value and path:
            return f"$id is only allowed at the root of the schema, not at {path} (it would move where $ref resolves)"
        for k, v in value.items():
            if k not in _DATA:
                stack.append((v, _at(path, k), depth + 1, k in _NAME_MAPS))
    return None


def _ref_problem(root: dict[str, Any], ref: Any, key: str, path: str) -> str | None:
    where = f"{path}/{key}" if path else f"/{key}"
    if not isinstance(ref, str):
        return f"{key} at {where} must be a string"
    if ref != "#" and not ref.startswith("#/"):
        return (f"{key} {ref[:200]!r} at {where} is not allowed: only local references ('#' or '#/...') "
                "are resolved; nothing is ever fetched")
    target: Any = root
    for token in ref[2:].split("/") if ref != "#" else ():
        token = unquote(token).replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and token in target:
            target = target[token]
        elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        else:
            return f"{key} {ref[:200]!r} at {where} points at nothing in the schema"
    return None
