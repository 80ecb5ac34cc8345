"""JSON Schema validation of answers, with validators compiled once per schema.

``jsonschema`` picks the draft from ``$schema`` (2020-12 when absent). Compiling a
validator (``check_schema`` plus building the validator) costs far more than validating a
small answer, so validators are cached by the schema's canonical JSON: route schemas are
compiled when the config is compiled, schemas sent with a request reuse the cache.
Error messages name the JSON path of each problem, so a model can act on them in a repair turn.
``jsonschema`` is imported when the first schema is compiled: routes without one never load it.

No schema causes network or file access: ``modelroute.api.schemasafety`` refuses any ``$ref``
but a local ``#/...`` pointer (and bounds depth and size) before compiling, and validators are
built with a ``referencing.Registry`` whose ``retrieve`` refuses every URI.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from modelroute.api.schemasafety import schema_problem
from modelroute.sidecar.output.parse import OutputError

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

Json = dict[str, Any]

MAX_CACHED = 256
MAX_REPORTED = 5


class InvalidSchema(ValueError):
    """The schema itself is not a valid JSON Schema (a config or request error, not an answer error)."""


def schema_key(schema: Json) -> str:
    """Canonical JSON of a schema: equal schemas share a key whatever their key order."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class SchemaCache:
    """Bounded LRU of compiled validators, keyed by ``schema_key``."""

    def __init__(self, max_entries: int = MAX_CACHED) -> None:
        self.max_entries = max_entries
        self._validators: OrderedDict[str, Validator] = OrderedDict()

    def __len__(self) -> int:
        return len(self._validators)

    def validator(self, schema: Json) -> Validator:
        """The compiled validator of ``schema``. Raises ``InvalidSchema``."""
        try:
            key = schema_key(schema)
        except (RecursionError, ValueError):
            raise InvalidSchema("the schema nests too deeply or holds values that are not JSON") from None
        found = self._validators.get(key)
        if found is not None:
            self._validators.move_to_end(key)
            return found
        compiled = compile_validator(schema)
        self._validators[key] = compiled
        if len(self._validators) > self.max_entries:
            self._validators.popitem(last=False)
        return compiled


def compile_validator(schema: Any) -> Validator:
    """A validator for ``schema`` (format checks on). Raises ``InvalidSchema`` with the reason."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    problem = schema_problem(schema)
    if problem is not None:
        raise InvalidSchema(problem)
    cls = validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as e:
        where = "/".join(str(p) for p in e.absolute_path)
        raise InvalidSchema(f"invalid JSON Schema{' at ' + where if where else ''}: {e.message}") from None
    except RecursionError:
        raise InvalidSchema("the schema nests too deeply") from None
    validator: Validator = cls(schema, format_checker=cls.FORMAT_CHECKER, registry=_local_registry())
    return validator


def _refuse(uri: str) -> Any:
    from referencing.exceptions import NoSuchResource

    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # an attrs class


_REGISTRY: Any = None


def _local_registry() -> Any:
    """The registry every validator resolves ``$ref`` in: the document itself; ``retrieve`` refuses all."""
    global _REGISTRY
    if _REGISTRY is None:
        from referencing import Registry

        _REGISTRY = Registry(retrieve=_refuse)  # type: ignore[call-arg]
    return _REGISTRY


def _path(error: ValidationError) -> str:
    out = "$"
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def schema_errors(validator: Validator, value: Any) -> list[str]:
    """Human-readable problems of ``value`` (at most ``MAX_REPORTED``), most relevant first; [] when valid."""
    from referencing.exceptions import Unresolvable

    try:
        errors = sorted(validator.iter_errors(value), key=lambda e: (len(e.absolute_path), e.path.__repr__()))
    except RecursionError:
        return ["$: the value nests too deeply to validate"]
    except Unresolvable as e:  # schema_problem rules this out; never fetched either way
        return [f"$: the schema's reference {e} cannot be resolved"]
    out = [f"{_path(e)}: {e.message}" for e in errors[:MAX_REPORTED]]
    if len(errors) > MAX_REPORTED:
        out.append(f"... and {len(errors) - MAX_REPORTED} more")
    return out


def validate(validator: Validator, value: Any) -> None:
    """Raise ``OutputError`` listing the problems when ``value`` does not conform."""
    problems = schema_errors(validator, value)
    if problems:
        raise OutputError("the JSON does not match the schema: " + "; ".join(problems))


DEFAULT_CACHE = SchemaCache()
