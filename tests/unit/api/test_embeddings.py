"""Embedding routes: the config refuses a route whose targets cannot share one vector dimension."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from modelroute.api.v1alpha1 import ModelRouteSpec
from modelroute.api.v1alpha1.embeddings import default_dimension
from modelroute.api.v1alpha1.providers import PROVIDERS, Provider
from modelroute.api.v1alpha1.registry import ModelRegistry
from modelroute.sidecar.pipeline.cost import DEFAULT_PRICES


def _t(name: str, provider: str, model: str, **extra: Any) -> dict[str, Any]:
    key = {} if provider == "openai-compatible" else {"apiKey": {"env": "K"}}
    return {"name": name, "provider": provider, "model": model, **key, **extra}


def _spec(*targets: dict[str, Any]) -> ModelRouteSpec:
    return ModelRouteSpec.model_validate({"route": "e", "targets": list(targets)})


def test_same_dimension_routes_load() -> None:
    _spec(_t("a", "openai", "text-embedding-3-small"), _t("b", "openai", "text-embedding-ada-002"))
    _spec(_t("a", "openai", "text-embedding-3-large", dimensions=768), _t("b", "gemini", "gemini-embedding-001", dimensions=768))
    _spec(_t("a", "gemini", "gemini-embedding-001"), _t("b", "openai-compatible", "bge-m3", dimensions=3072))


def test_mixed_dimensions_are_a_config_error_naming_the_targets() -> None:
    with pytest.raises(ValidationError) as e:
        _spec(_t("small", "openai", "text-embedding-3-small"), _t("gem", "gemini", "gemini-embedding-001"))
    msg = str(e.value)
    assert "one dimension" in msg and "'small': 1536" in msg and "'gem': 3072" in msg


def test_anthropic_in_an_embedding_route_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="target 'claude': provider anthropic has no embeddings API"):
        _spec(_t("a", "openai", "text-embedding-3-small"), _t("claude", "anthropic", "claude-haiku-4-5"))


def test_a_chat_model_in_an_embedding_route_needs_a_known_dimension() -> None:
    with pytest.raises(ValidationError, match=r"target 'chat'.*set the target's dimensions"):
        _spec(_t("a", "openai", "text-embedding-3-small"), _t("chat", "openai", "gpt-4o-mini"))


def test_chat_routes_are_untouched() -> None:
    _spec(_t("a", "openai", "gpt-4o-mini"), _t("b", "anthropic", "claude-haiku-4-5"))


def test_registry_knows_embedding_models_and_dated_versions() -> None:
    assert ModelRegistry().problem(_spec(_t("a", "gemini", "gemini-embedding-001")).targets[0]) is None
    assert default_dimension(Provider.OPENAI, "text-embedding-3-small-2025-01-01") == 1536
    assert default_dimension(Provider.ANTHROPIC, "claude-haiku-4-5") is None


def test_every_embedding_model_has_a_list_price_of_input_only() -> None:
    for spec in PROVIDERS.values():
        for model in spec.embedding_models:
            if model in DEFAULT_PRICES:
                assert DEFAULT_PRICES[model].output == 0.0
    assert DEFAULT_PRICES["text-embedding-3-small"].input == 0.02
    assert DEFAULT_PRICES["gemini-embedding-001"].input == 0.15
