"""The capability table: which params a target accepts, per provider, API version and model."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic._constants import ANTHROPIC_API_VERSION
from google.genai import types as gtypes

from modelroute.api.v1alpha1 import ModelRouteSpec, Provider
from modelroute.api.v1alpha1.capabilities import (
    DEFAULT_API_VERSION,
    api_version_of,
    route_param_problems,
    rules_for,
    unsupported_params,
)

A, OA, G = Provider.ANTHROPIC, Provider.OPENAI, Provider.GEMINI


def test_the_default_anthropic_version_is_what_the_pinned_sdk_sends() -> None:
    assert DEFAULT_API_VERSION[A] == ANTHROPIC_API_VERSION == "2026-10-21"


def names(provider: Provider, version: str | None, model: str, **params: Any) -> list[str]:
    return [u.param for u in unsupported_params(provider, version, model, params)]


@pytest.mark.parametrize("version", [None, "2026-10-21"])
def test_anthropic_2026_refuses_every_sampling_param_even_at_defaults(version: str | None) -> None:
    assert names(A, version, "claude-haiku-4-5", temperature=1.0, top_p=1.0, top_k=5, stop=["x"], max_tokens=9) == [
        "temperature", "top_p", "top_k"]
    assert names(A, version, "claude-haiku-4-5", stop=["x"], max_tokens=9) == []


def test_anthropic_2023_per_model_rules() -> None:
    legacy = "2023-06-01"
    assert names(A, legacy, "claude-haiku-4-5", temperature=0.2, top_k=3) == []
    assert names(A, legacy, "claude-haiku-4-5", temperature=0.2, top_p=0.9) == ["top_p"]        # Claude 4: not both
    assert names(A, legacy, "claude-haiku-4-5-20251001", temperature=0.2, top_p=0.9) == ["top_p"]
    assert names(A, legacy, "claude-3-5-haiku", temperature=0.2, top_p=0.9) == []              # before Claude 4
    assert names(A, legacy, "claude-opus-4-6", temperature=0.2) == []                          # Opus 4.6 itself
    for later in ("claude-sonnet-4-6", "claude-opus-5", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-7-1"):
        assert names(A, legacy, later, temperature=0.2) == ["temperature"], later
        assert names(A, legacy, later, temperature=1.0) == [], later
    # A refused temperature leaves top_p alone (nothing left to clash with).
    assert names(A, legacy, "claude-opus-5", temperature=0.5, top_p=0.9) == ["temperature"]


def test_openai_reasoning_models_take_only_the_default_temperature() -> None:
    for model in ("o1", "o3-mini", "o4-mini", "gpt-5-mini", "gpt-5.4-nano", "gpt-5-2025-08-07"):
        assert names(OA, None, model, temperature=0.2, top_p=0.5) == ["temperature", "top_p"], model
        assert names(OA, None, model, temperature=1) == [], model
        # OpenAI's reference: stop is "not supported with latest reasoning models o3 and o4-mini".
        assert names(OA, None, model, stop=["x"]) == ["stop"], model


def test_responses_targets_take_no_stop_and_one_answer() -> None:
    """Regression: ``stop`` and ``n > 1`` on ``api: responses`` targets were a per-request 400 (no fallback);
    now a config error for route params and a reported drop for the app's."""
    from modelroute.api.v1alpha1 import ApiKey, ModelRouteSpec, Params, Target
    from modelroute.api.v1alpha1.capabilities import route_param_problems, rules_of

    def target(api: str | None) -> Target:
        return Target(name="t", provider=OA, model="gpt-4o-mini", api_key=ApiKey(env="K"), api=api)

    assert rules_of(target(None)).unsupported({"stop": ["x"], "n": 2}) == []
    refused = rules_of(target("responses")).unsupported({"stop": ["x"], "n": 2, "temperature": 0.3})
    assert [u.param for u in refused] == ["stop", "n"]
    assert rules_of(target("responses")).unsupported({"n": 1}) == []
    spec = ModelRouteSpec(route="r", targets=[target("responses")], params=Params(stop=["END"]))
    problems = route_param_problems(spec)
    assert [f for f, _ in problems] == ["spec.params.stop"] and "no stop sequences" in problems[0][1]
    for model in ("gpt-4o-mini", "gpt-4.1", "gpt-5-chat-latest"):
        assert names(OA, None, model, temperature=0.2, top_p=0.5, stop=["x"], max_tokens=9) == [], model


def test_openai_has_no_top_k() -> None:
    # The published spec's CreateChatCompletionRequest has no top_k; the API answers
    # "Unrecognized request argument supplied: top_k" (the strict emulator too).
    from modelroute.testing.emulators.dialects import openai_schema

    for model in ("gpt-4o-mini", "o3-mini"):
        assert "top_k" in names(OA, None, model, top_k=40), model
    assert openai_schema.validate("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x"}],
                                                          "top_k": 40}) is not None


def test_gemini_and_openai_compatible_take_every_param() -> None:
    # google-genai's GenerateContentConfig has a field for each of them.
    fields = gtypes.GenerateContentConfig.model_fields
    assert {"temperature", "top_p", "top_k", "stop_sequences", "max_output_tokens"} <= set(fields)
    assert not rules_for(G, None, "gemini-3.5-flash")
    assert not rules_for(Provider.OPENAI_COMPATIBLE, None, "o3-mini")


def spec(targets: list[dict[str, Any]], **extra: Any) -> ModelRouteSpec:
    return ModelRouteSpec.model_validate({"route": "r", "targets": targets, **extra})


def target(name: str = "t", provider: str = "anthropic", model: str = "claude-haiku-4-5", **extra: Any) -> dict[str, Any]:
    return {"name": name, "provider": provider, "model": model, "apiKey": {"env": "K"}, **extra}


def test_route_problems_name_the_field_the_target_and_the_ways_out() -> None:
    problems = route_param_problems(spec([target()], params={"temperature": 0.1, "maxTokens": 9}))
    assert problems == [(
        "spec.params.temperature",
        "target 't' (anthropic claude-haiku-4-5, apiVersion 2026-10-21) cannot take temperature: anthropic-version "
        "2026-10-21 removed sampling parameters; remove temperature, set spec.targets[0].apiVersion: '2023-06-01' "
        "(it keeps temperature for claude-haiku-4-5), or set spec.unsupportedParams: drop (the param is then not "
        "sent to this target)",
    )]


def test_a_target_override_is_reported_at_the_target_and_no_useless_version_is_offered() -> None:
    s = spec([target("ok", apiVersion="2023-06-01"), target("late", model="claude-opus-5", params={"temperature": 0.3})])
    ((field, message),) = route_param_problems(s)
    assert field == "spec.targets[1].params.temperature"
    assert "apiVersion" in message and "set spec.targets[1].apiVersion" not in message  # 2023-06-01 would not help


def test_drop_and_a_pinned_version_make_the_route_valid() -> None:
    assert route_param_problems(spec([target()], params={"temperature": 0.1}, unsupportedParams="drop")) == []
    assert route_param_problems(spec([target(apiVersion="2023-06-01")], params={"temperature": 0.1})) == []
    ((field, message),) = route_param_problems(spec([target(apiVersion="2023-06-01")], params={"temperature": 0.1, "topP": 0.5}))
    assert field == "spec.params.topP" and "refuses temperature and top_p together" in message


def test_api_version_problems() -> None:
    assert route_param_problems(spec([target(apiVersion="2024-01-01")])) == [
        ("spec.targets[0].apiVersion", "target 't': apiVersion '2024-01-01' is not a known anthropic API version (2023-06-01, 2026-10-21)")]
    with pytest.raises(ValueError, match="apiVersion applies to anthropic targets only"):
        spec([target(provider="openai", model="gpt-4o-mini", apiVersion="2023-06-01")])
    with pytest.raises(ValueError, match="api applies to openai and openai-compatible targets only"):
        spec([target(api="responses")])
    assert spec([target(provider="openai", model="gpt-4o-mini", api="responses")]).targets[0].api == "responses"
    t = spec([target()]).targets[0]
    assert api_version_of(t) == "2026-10-21"
