"""The context-window API: ``targets[].when`` (pydantic and CEL) and the registry's ``windows``."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from modelroute.api.config import SidecarConfig
from modelroute.api.crd import crd
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.api.v1alpha1.registry import ModelRegistry


def doc(when: Any) -> dict[str, Any]:
    return {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "mr"},
            "spec": {"route": "r", "targets": [{"name": "a", "provider": "openai", "model": "gpt-4o-mini",
                                                "apiKey": {"env": "K"}, "when": when}]}}


@pytest.mark.parametrize(("when", "needle"), [
    ({}, "when needs minInputTokens or maxInputTokens"),
    ({"minInputTokens": 10, "maxInputTokens": 5}, "must not exceed"),
    ({"minInputTokens": -1}, "spec.targets.0.when.minInputTokens"),
    ({"minTokens": 5}, "minTokens"),
    ({"maxInputTokens": "many"}, "maxInputTokens"),
])
def test_bad_when_is_a_config_error_naming_the_field(when: Any, needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        ModelRoute.model_validate(doc(when))
    assert needle in str(err.value)


def test_good_when_parses_and_round_trips() -> None:
    m = ModelRoute.model_validate(doc({"minInputTokens": 100000}))
    when = m.spec.targets[0].when
    assert when is not None and when.admits(100000) and not when.admits(99999)
    assert m.wire()["spec"]["targets"][0]["when"] == {"minInputTokens": 100000}


def test_the_crd_carries_when_with_its_cel_rules() -> None:
    target = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["targets"]["items"]
    when = target["properties"]["when"]
    rules = [r["rule"] for r in when["x-kubernetes-validations"]]
    assert "has(self.minInputTokens) || has(self.maxInputTokens)" in rules
    assert any("self.minInputTokens <= self.maxInputTokens" in r for r in rules)
    assert when["properties"]["minInputTokens"]["minimum"] == 0


def test_registry_windows_are_validated_and_change_the_hash() -> None:
    with pytest.raises(ValidationError, match="contextWindow"):
        ModelRegistry.model_validate({"windows": [{"provider": "openai", "model": "m", "contextWindow": 0,
                                                   "maxOutputTokens": 1}]})
    plain = SidecarConfig()
    models_only = SidecarConfig.model_validate({"modelRegistry": {"models": [{"provider": "openai", "models": ["x"]}]}})
    windows = SidecarConfig.model_validate({"modelRegistry": {"windows": [
        {"provider": "openai", "model": "m", "contextWindow": 10, "maxOutputTokens": 1}]}})
    assert plain.hash == models_only.hash, "allowed ids change what is accepted, not what is served"
    assert windows.hash != plain.hash, "windows change what is served: a swap must follow"
