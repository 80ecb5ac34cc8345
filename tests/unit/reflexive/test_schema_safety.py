"""Issue 14 item 1: no JSON Schema, from a request, a route's config or an eval dataset, fetches anything.

``schema_problem`` refuses every reference but a local pointer (and bounds depth and size), and
the validators resolve in a registry that retrieves nothing, so even a reference that slipped past
the check cannot reach the network: a trap HTTP server on loopback counts the attempts.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError
from referencing.exceptions import Unresolvable

from modelroute.api.schemasafety import MAX_NODES, schema_problem
from modelroute.api.v1alpha1.output import Output
from modelroute.sidecar.eval.scoring import _schema_ok
from modelroute.sidecar.output.schema import InvalidSchema, _local_registry, compile_validator, schema_errors


class _Trap(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"type": "string"}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def trap() -> Iterator[tuple[str, list[str]]]:
    _Trap.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trap)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Trap.hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("schema", "says"), [
    ({"$ref": "http://x/a.json"}, "'http://x/a.json' at /$ref is not allowed"),
    ({"$id": "http://x/", "$ref": "b.json"}, "'b.json' at /$ref is not allowed"),
    ({"$ref": "#anchor"}, "is not allowed"),
    ({"items": {"$dynamicRef": "http://x"}}, "$dynamicRef 'http://x' at /items/$dynamicRef"),
    ({"$ref": 5}, "must be a string"),
    ({"$ref": "#/$defs/x"}, "points at nothing"),
    ({"anyOf": [{"$id": "http://x/"}]}, "$id is only allowed at the root"),
    ({"properties": {"a": {"properties": {"a": {"properties": {"a": {}}}}}}}, None),
    ({"allOf": [{"allOf": [{"$ref": "#/allOf/0"}]}]}, None),
    ({"$defs": {"a~b/c": {"type": "string"}}, "$ref": "#/$defs/a~0b~1c"}, None),
    ({"properties": {"$ref": {"type": "string"}, "$id": {"type": "string"}}}, None),   # property names, not keywords
    ({"enum": [{"$ref": "http://x"}], "const": {"$id": "http://y"}}, None),           # data, not schemas
    ("not a schema", "must be an object"),
])
def test_schema_problem(schema: Any, says: str | None) -> None:
    problem = schema_problem(schema)
    if says is None:
        assert problem is None
    else:
        assert problem is not None and says in problem


def test_depth_and_size_are_bounded() -> None:
    deep: dict[str, Any] = {}
    for _ in range(10_000):  # far deeper than recursion allows: the check is iterative
        deep = {"items": deep}
    assert "nests deeper than" in (schema_problem(deep) or "")
    assert "more than" in (schema_problem({"enum": [], "anyOf": [{}] * (MAX_NODES + 1)}) or "")


def test_the_registry_retrieves_nothing_even_past_the_check(trap: tuple[str, list[str]]) -> None:
    url, hits = trap
    validator = Draft202012Validator({"$ref": f"{url}/ref.json"}, registry=_local_registry())
    with pytest.raises(Unresolvable):
        validator.is_valid(5)
    assert hits == []
    # and jsonschema without it does fetch: what the registry is there for
    with pytest.warns(DeprecationWarning, match="retrieving remote references"):
        Draft202012Validator({"$ref": f"{url}/ref.json"}).is_valid(5)
    assert hits == ["/ref.json"]


@pytest.mark.parametrize("make", [
    lambda url: {"$ref": f"{url}/a.json"},
    lambda url: {"$id": f"{url}/root.json", "properties": {"x": {"$ref": "b.json"}}},
])
def test_request_config_and_eval_schemas_fetch_nothing(trap: tuple[str, list[str]], make: Any) -> None:
    url, hits = trap
    with pytest.raises(InvalidSchema, match="only local references"):
        compile_validator(make(url))
    with pytest.raises(ValidationError, match="only local references"):
        Output.model_validate({"mode": "schema", "schema": make(url)})
    assert _schema_ok(make(url), {"x": 1}) is False
    assert hits == []


def test_local_refs_and_recursion_work() -> None:
    tree = {"$defs": {"node": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},
            "$ref": "#/$defs/node"}
    validator = compile_validator(tree)
    assert schema_errors(validator, {"kids": [{"kids": []}]}) == []
    assert schema_errors(validator, {"kids": [{"kids": 3}]}) != []
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    assert schema_errors(compile_validator({"items": {"$ref": "#"}}), deep) == ["$: the value nests too deeply to validate"]
