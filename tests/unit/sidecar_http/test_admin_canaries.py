"""A bearer-token PUT /config carries canaries too (validated like an operator push)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelroute.sidecar.config import loader
from modelroute.sidecar.config.loader import ConfigError


def route(model: str) -> dict[str, Any]:
    return {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "r"},
            "spec": {"route": "chat", "targets": [{"name": "t", "provider": "openai-compatible", "model": model,
                                                   "baseUrl": "http://127.0.0.1:9/v1"}]}}


def body(canaries: Any) -> bytes:
    return json.dumps({"routes": [route("gpt-4o-mini")], "canaries": canaries}).encode()


def config_of(raw: bytes) -> Any:
    return loader.admin_config(raw, None)[0]


def test_canaries_are_kept() -> None:
    canary = {"route": "chat", "revision": "rev2", "runId": "run1", "spec": route("gpt-4.1-mini")["spec"], "weight": 25}
    config = config_of(body([canary]))
    assert [c.weight for c in config.canaries] == [25]


def test_bad_canaries_are_reported_with_where() -> None:
    with pytest.raises(ConfigError) as err:
        config_of(body([{"route": "chat", "weight": 300}]))
    text = "\n".join(err.value.problems)
    assert "canaries[0]" in text
    assert "weight" in text


def test_canary_for_an_unknown_route_is_refused() -> None:
    canary = {"route": "nope", "revision": "rev2", "runId": "run1", "spec": route("gpt-4.1-mini")["spec"]}
    with pytest.raises(ConfigError) as err:
        config_of(body([canary]))
    assert "nope" in "\n".join(err.value.problems)
