"""What Gemini's ``generateContent`` accepts: the emulator refuses the rest as the real API does.

The schema is derived in code (``derive``) from the pinned google-genai SDK and vendored in
``schemas/gemini.json`` with the SDK version (``python -m
modelroute.testing.emulators.dialects.gemini_schema`` regenerates it; a test fails when the
installed SDK gives another file, so an SDK bump shows the drift).

Which SDK source is faithful to the wire: the SDK's pydantic types alone are not. They are
the SDK's *input* (snake_case, Vertex and Developer API fields mixed, SDK-only knobs such as
``automatic_function_calling`` and ``http_options``, and ``GenerateContentConfig`` flattens
what the wire splits between the request and its ``generationConfig``). The wire form is what
the SDK's Developer API converters write (``_GenerateContentParameters_to_mldev`` and the
``_*_to_mldev`` functions it calls). So the derivation reads those converters' source
(``ast``): each ``if getv(from_object, [field])`` either ``setv``s a camelCase wire key on the
object itself or on its parent (``systemInstruction``, ``tools`` ... move from the config to
the request), possibly through a nested converter, or raises ``ValueError`` (a Vertex-only
field: not on this API). A key's value schema is the nested converter's object, else the SDK
type's pydantic JSON schema of that field (objects closed: ``extra='forbid'``).

The real API parses proto JSON, which takes each field under its camelCase JSON name or its
snake_case proto name (the SDK itself sends ``inlineData: {mime_type}``), so both spellings
are accepted. Unknown names get a 400 ``INVALID_ARGUMENT``: ``Invalid JSON payload received.
Unknown name "x" at 'generation_config': Cannot find field.``
"""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema.exceptions import ValidationError, best_match

from .base import BadRequest, Checker, leaf, schema_properties

VENDORED = Path(__file__).with_name("schemas") / "gemini.json"
ROOT = "GenerateContentParameters"
_CONVERTER = re.compile(r"^_(\w+)_to_mldev$")
_ANNOTATIONS = frozenset({"description", "title", "default", "examples", "example"})


@dataclass(frozen=True)
class Rule:
    """One ``if getv(from_object, [field])`` block of a converter."""

    field: str
    wire: str | None = None          # camelCase key written (None: the field is refused)
    on_parent: bool = False          # written on the parent object (config -> request)
    nested: str | None = None        # the type of the nested converter it calls
    array: bool = False              # a list of nested objects


def _getv_field(test: ast.expr) -> str | None:
    if isinstance(test, ast.Compare) and isinstance(test.left, ast.Call):
        call = test.left
        if isinstance(call.func, ast.Name) and call.func.id == "getv" and len(call.args) == 2:
            path = call.args[1]
            if isinstance(path, ast.List) and len(path.elts) == 1 and isinstance(path.elts[0], ast.Constant):
                return str(path.elts[0].value)
    return None


def _rule(field: str, stmt: ast.stmt) -> Rule | None:
    if isinstance(stmt, ast.Raise):
        return Rule(field)
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return None
    call = stmt.value
    if not (isinstance(call.func, ast.Name) and call.func.id == "setv" and len(call.args) == 3):
        return None
    target, path, value = call.args
    if not isinstance(path, ast.List) or not all(isinstance(e, ast.Constant) for e in path.elts):
        return None
    keys = [str(e.value) for e in path.elts if isinstance(e, ast.Constant)]
    if len(keys) != 1 or keys[0].startswith("_"):
        return None  # e.g. ['_url', 'model']: the URL, not the body
    nested = None
    for node in ast.walk(value):
        if isinstance(node, ast.Name) and (m := _CONVERTER.match(node.id)):
            nested = m.group(1)
            break
    return Rule(field, keys[0], isinstance(target, ast.Name) and target.id == "parent_object", nested,
                isinstance(value, ast.ListComp))


def converters(source: str) -> dict[str, list[Rule]]:
    """Every ``_X_to_mldev`` function of the SDK module source -> its rules, by type name X."""
    out: dict[str, list[Rule]] = {}
    for fn in ast.parse(source).body:
        if isinstance(fn, ast.FunctionDef) and (m := _CONVERTER.match(fn.name)):
            rules = []
            for stmt in fn.body:
                if isinstance(stmt, ast.If) and (field := _getv_field(stmt.test)) and stmt.body:
                    rule = _rule(field, stmt.body[0])
                    if rule is not None:
                        rules.append(rule)
            out[m.group(1)] = rules
    return out


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _clean(node: Any) -> Any:
    """Annotations out; every property also under its snake_case name (proto JSON takes both)."""
    if isinstance(node, list):
        return [_clean(x) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "$defs"):
            props = {name: _clean(v) for name, v in value.items()}
            if key == "properties":
                props.update({_snake(n): v for n, v in list(props.items()) if _snake(n) not in props})
            out[key] = props
        elif key not in _ANNOTATIONS:
            out[key] = _clean(value)
    return out


class _Deriver:
    def __init__(self, types: Any, rules: Mapping[str, list[Rule]]) -> None:
        self.types = types
        self.rules = rules
        self.defs: dict[str, Any] = {}

    def field_schema(self, type_name: str, field: str) -> Any:
        """The SDK type's JSON schema of one field (``GenerateContentConfig``, whose tools may be
        Python callables, has none: its wire fields are ``GenerationConfig``'s)."""
        for name in (type_name, "GenerationConfig") if type_name == "GenerateContentConfig" else (type_name,):
            schema = self.model_schema(name)
            if schema is None:
                continue
            alias = getattr(self.types, name).model_fields.get(field)
            if alias is not None:
                return schema["properties"][alias.alias or field]
        from pydantic import TypeAdapter

        annotation = getattr(self.types, type_name).model_fields[field].annotation
        out = TypeAdapter(annotation).json_schema(by_alias=True, ref_template="#/$defs/{model}")
        self.defs.update(out.pop("$defs", {}))
        return out

    @functools.cache  # noqa: B019 - one deriver per derivation
    def model_schema(self, name: str) -> Any:
        try:
            schema = getattr(self.types, name).model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
        except Exception:
            return None
        self.defs.update(schema.pop("$defs", {}))
        return schema

    def object(self, type_name: str) -> str:
        """The wire object a converter writes, as a definition ``<type>Wire``; returns its name."""
        name = type_name + "Wire"
        if name in self.defs:
            return name
        self.defs[name] = {}  # a cycle refers to it before it is complete
        props: dict[str, Any] = {}
        for rule in self.rules[type_name]:
            if rule.wire is None or rule.on_parent:
                continue
            props[rule.wire] = self.value(type_name, rule)
        self.defs[name] = {"type": "object", "properties": props, "additionalProperties": False}
        return name

    def value(self, type_name: str, rule: Rule) -> Any:
        if rule.nested is not None and rule.nested in self.rules:
            ref = {"$ref": "#/$defs/" + self.object(rule.nested)}
            return {"type": "array", "items": ref} if rule.array else ref
        return self.field_schema(type_name, rule.field)

    def request(self) -> dict[str, Any]:
        """The request body: the parameters' keys, plus what the config's converter puts on it."""
        props: dict[str, Any] = {}
        for rule in self.rules[ROOT]:
            if rule.wire is None:
                continue
            props[rule.wire] = self.value(ROOT, rule)
            if rule.nested is not None:
                for inner in self.rules.get(rule.nested, []):
                    if inner.on_parent and inner.wire is not None:
                        props[inner.wire] = self.value(rule.nested, inner)
        return {"type": "object", "properties": props, "additionalProperties": False}


def derive(module_source: str, types: Any) -> dict[str, Any]:
    """The generateContent request schema from ``google.genai.models``' source and ``google.genai.types``."""
    d = _Deriver(types, converters(module_source))
    root = d.request()
    refused = {t: sorted(r.field for r in rules if r.wire is None) for t, rules in d.rules.items()
               if t + "Wire" in d.defs or t == ROOT}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": _clean(d.defs),
            "request": _clean(root), "vertexOnly": {t: f for t, f in sorted(refused.items()) if f}}


def regenerate() -> dict[str, Any]:
    """The vendored document as the installed google-genai gives it."""
    import inspect

    from google import genai
    from google.genai import models, types

    source = {"package": f"google-genai=={genai.__version__}",
              "derivedFrom": "google.genai.models._GenerateContentParameters_to_mldev (and the _*_to_mldev "
                             "converters it calls) with google.genai.types"}
    return {"source": source, **derive(inspect.getsource(models), types)}


def dump(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


@functools.cache
def _checker() -> Checker:
    doc = json.loads(VENDORED.read_text(encoding="utf-8"))
    return Checker({"$schema": doc["$schema"], "$defs": doc["$defs"], **doc["request"]})


def compile_all() -> None:
    """Compile the validator now (at emulator start) rather than on the first request."""
    _checker()


def _where(path: Any) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{_snake(str(p))}" if out else _snake(str(p)))
    return out


_PROTO_TYPES = {"number": "TYPE_FLOAT", "integer": "TYPE_INT32", "string": "TYPE_STRING", "boolean": "TYPE_BOOL"}


def _message(err: ValidationError) -> BadRequest:
    err = leaf(err)
    where = _where(err.absolute_path)
    at = f" at '{where}'" if where else ""
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        known = set(schema_properties(err))
        name = next((k for k in err.instance if k not in known), "")
        return BadRequest(f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.')
    kind = _PROTO_TYPES.get(str(err.validator_value), "TYPE_MESSAGE") if err.validator == "type" else "TYPE_ENUM"
    value = json.dumps(err.instance)
    if err.validator in ("type", "enum"):
        return BadRequest(f"Invalid value{at} ({kind}), {value}" if err.validator == "enum" or kind != "TYPE_MESSAGE"
                          else f'Invalid JSON payload received. Unknown name ""{at}: Proto field is not repeating, cannot start list.')
    return BadRequest(f"* GenerateContentRequest.{where}: {err.message}")


def validate(body: Any) -> BadRequest | None:
    """The 400 the real API gives this generateContent / streamGenerateContent body, or None."""
    if not isinstance(body, dict):
        return None  # the dialect's parse says what is wrong
    errors = _checker().errors(body)
    if not errors:
        return None
    top = [e for e in errors if not e.absolute_path and e.validator == "additionalProperties"]
    return _message(top[0] if top else best_match(errors))


if __name__ == "__main__":
    VENDORED.parent.mkdir(exist_ok=True)
    VENDORED.write_text(dump(regenerate()), encoding="utf-8")
    print(f"wrote {VENDORED}")
