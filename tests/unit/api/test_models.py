"""API models: the field names of the contract, defaults and cross-field rules."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from modelroute.api.v1alpha1 import ModelRoute, Params


def doc(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "route": "classify",
        "targets": [
            {"name": "haiku", "provider": "anthropic", "model": "claude-haiku-4-5", "apiKey": {"env": "ANTHROPIC_API_KEY"}},
            {"name": "mini", "provider": "openai", "model": "gpt-4o-mini", "apiKey": {"env": "OPENAI_API_KEY"}},
        ],
    }
    base.update(spec)
    return {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "r"}, "spec": base}


def test_issue_example_parses_with_camel_case_fields() -> None:
    m = ModelRoute.model_validate(doc(params={"temperature": 0.1, "maxTokens": 128}, prompt={"version": "v3", "system": "x"},
                                      timeoutSeconds=20, retry={"attempts": 2, "backoff": {"initialMs": 200, "maxMs": 5000}}))
    assert m.spec.params.max_tokens == 128
    assert m.spec.retry.backoff.max_ms == 5000
    assert m.wire()["spec"]["retry"]["backoff"] == {"initialMs": 200, "maxMs": 5000}


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"targets": []}, "at least 1"),
        ({"targets": [{"name": "a", "provider": "mistral", "model": "m", "apiKey": {"env": "K"}}]}, "provider"),
        ({"targets": [{"name": "a", "provider": "openai", "model": "m"}]}, "apiKey is required"),
        ({"targets": [{"name": "a", "provider": "openai", "model": "m", "apiKey": {"env": "K", "file": "/k"}}]}, "exactly one"),
        ({"targets": [{"name": "a", "provider": "openai", "model": "m", "apiKey": {"env": "K"}}] * 2}, "unique"),
        ({"params": {"temperature": 5}}, "temperature"),
        ({"bogus": 1}, "bogus"),
        ({"selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}, "non-empty"),
    ],
)
def test_invalid_specs_say_what_is_wrong(spec: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        ModelRoute.model_validate(doc(**spec))
    assert needle in str(err.value)


def test_openai_compatible_needs_no_key() -> None:
    ModelRoute.model_validate(doc(targets=[{"name": "local", "provider": "openai-compatible", "model": "llama", "baseUrl": "http://127.0.0.1:8000/v1"}]))


def test_params_merge_overrides_field_by_field() -> None:
    merged = Params(temperature=0.1, max_tokens=128).merged(Params(max_tokens=64))
    assert (merged.temperature, merged.max_tokens) == (0.1, 64)
