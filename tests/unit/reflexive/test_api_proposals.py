"""The issue-6 API types in the real spec (output, prompt templates, limits, pricing, cache, model registry).

They must meet the same bar as the existing API: every field described, a structural CRD
schema (the arbitrary JSON Schema kept with x-kubernetes-preserve-unknown-fields), and
pydantic validation that rejects what the CEL rules reject.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from modelroute.api.crd import structural_schema
from modelroute.api.v1alpha1 import ApiKey, ModelRouteSpec, Prompt, Provider, Target
from modelroute.api.v1alpha1.output import Output, OutputMode
from modelroute.api.v1alpha1.quota import CachePolicy, Limits
from modelroute.api.v1alpha1.registry import DEFAULT_MODELS, ModelRegistry, ProviderModels, model_allowed
from modelroute.sidecar.output import OutputContract
from modelroute.sidecar.pipeline.cost import Price, PriceTable
from modelroute.testing.schemas import undocumented

PERSON: dict[str, Any] = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def test_spec_schema_is_described_and_structural() -> None:
    schema = structural_schema(ModelRouteSpec)
    assert undocumented(schema, "spec") == []
    text = yaml.safe_dump(schema)
    for forbidden in ("$ref", "anyOf", "const", "title", "$defs", "additionalProperties: true"):
        assert forbidden not in text, forbidden

    def check(node: Any) -> None:  # the same structural rule as tests/unit/api/test_crd.py
        if isinstance(node, dict):
            if "properties" in node:
                assert node.get("type") == "object" and "additionalProperties" not in node
            for v in node.values():
                check(v)
        elif isinstance(node, list):
            for v in node:
                check(v)

    check(schema)
    output = schema["properties"]["output"]
    assert output["properties"]["schema"] == {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True,
        "description": output["properties"]["schema"]["description"]}
    assert output["properties"]["mode"]["enum"] == ["text", "json", "schema"]
    assert {r["message"] for r in output["x-kubernetes-validations"]} == {
        "output mode schema needs a schema", "labels apply to mode text (one label per answer)"}
    target = schema["properties"]["targets"]["items"]["properties"]
    assert set(target["limits"]["properties"]) == {"requestsPerMinute", "tokensPerMinute", "maxWaitMs"}
    assert schema["properties"]["prompt"]["properties"]["user"]["description"]
    assert schema["properties"]["cache"]["properties"]["ttlSeconds"]["default"] == 300


def test_whole_route_yaml_round_trip() -> None:
    doc = yaml.safe_load("""
route: extract-person
targets:
  - name: mini
    provider: openai
    model: gpt-4o-mini
    apiKey: {env: OPENAI_API_KEY}
    limits: {requestsPerMinute: 50, tokensPerMinute: 200000, maxWaitMs: 500}
    pricing: {inputPerMillion: 0.15, outputPerMillion: 0.6, cachedInputPerMillion: 0.075}
prompt:
  version: v4
  system: You extract people.
  user: "Text ({{lang}}):\\n{{input}}"
  variables: {lang: en}
output:
  mode: schema
  schema: {type: object, properties: {name: {type: string}}, required: [name], x-custom: 1}
  repairAttempts: 2
cache: {ttlSeconds: 60}
""")
    spec = ModelRouteSpec.model_validate(doc)
    assert spec.output is not None and spec.output.schema_ is not None and spec.output.schema_["x-custom"] == 1
    assert spec.targets[0].limits == Limits(requests_per_minute=50, tokens_per_minute=200000, max_wait_ms=500)
    assert spec.prompt is not None and spec.prompt.placeholders() == {"lang", "input"}
    assert spec.cache == CachePolicy(ttl_seconds=60)
    assert spec.wire()["output"]["schema"] == doc["output"]["schema"]
    assert spec.wire()["output"]["repairAttempts"] == 2
    contract = OutputContract.from_api(spec.output)
    assert contract.repair_attempts == 2 and contract.check('{"name": "A"}') == {"name": "A"}
    pricing = spec.targets[0].pricing
    assert pricing is not None
    table = PriceTable({"gpt-4o-mini": Price(pricing.input_per_million, pricing.output_per_million, pricing.cached_input_per_million)})
    assert table.cost("gpt-4o-mini", {"prompt_tokens": 1_000_000, "completion_tokens": 0}) == pytest.approx(0.15)


@pytest.mark.parametrize(("output", "message"), [
    ({"mode": "schema"}, "needs a schema"),
    ({"mode": "json", "labels": ["a"]}, "labels apply to mode text"),
    ({"labels": ["Billing", "billing"]}, "distinct"),
    ({"labels": [" "]}, "non-empty"),
    ({"mode": "schema", "schema": {"type": "objekt"}}, "not a valid JSON Schema"),
    ({"repairAttempts": 9}, "less than or equal to 3"),
])
def test_output_rejects_incoherent_contracts(output: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Output.model_validate(output)


def test_output_defaults_and_labels() -> None:
    out = Output.model_validate({"labels": ["billing", "shipping"]})
    assert out.mode is OutputMode.TEXT and out.repair_attempts == 1
    assert OutputContract.from_api(out).check("Shipping.") == "shipping"


def test_prompt_template_variables() -> None:
    with pytest.raises(ValidationError, match="built in"):
        Prompt(version="v1", variables={"input": "x"})
    with pytest.raises(ValidationError, match="must match"):
        Prompt(version="v1", variables={"1bad": "x"})


def _target(provider: Provider, model: str) -> Target:
    key = None if provider is Provider.OPENAI_COMPATIBLE else ApiKey(env="K")
    return Target(name="t", provider=provider, model=model, api_key=key)


def test_registry_defaults_and_versions() -> None:
    registry = ModelRegistry()
    for provider, models in DEFAULT_MODELS.items():
        for model in models:
            assert registry.problem(_target(provider, model)) is None
    for provider, model in [(Provider.ANTHROPIC, "claude-haiku-4-5-20251001"), (Provider.OPENAI, "gpt-4o-mini-2024-07-18"),
                            (Provider.GEMINI, "models/gemini-2.5-flash"), (Provider.GEMINI, "gemini-2.5-flash-preview-05-20"),
                            (Provider.GEMINI, "gemini-2.0-flash-001"), (Provider.OPENAI_COMPATIBLE, "qwen2.5-7b-instruct")]:
        assert registry.problem(_target(provider, model)) is None, model
    problem = registry.problem(_target(Provider.OPENAI, "gpt-4o-mni"))
    assert problem is not None and "'gpt-4o-mni' is not in the model registry for provider openai" in problem
    assert "gpt-4o-mini" in problem
    # A listed id does not allow arbitrary longer ids: gpt-4o does not allow gpt-4o-mega.
    assert not model_allowed("gpt-4o-mega", frozenset({"gpt-4o"}))
    assert registry.problem(_target(Provider.GEMINI, "gemini-2.5-flash")) is None


def test_registry_extends_or_replaces() -> None:
    extended = ModelRegistry.model_validate({"models": [{"provider": "openai", "models": ["ft:gpt-4o-mini:acme:tickets:abc"]},
                                                        {"provider": "openai-compatible", "models": ["llama-3.1-8b"]}]})
    assert extended.problem(_target(Provider.OPENAI, "ft:gpt-4o-mini:acme:tickets:abc")) is None
    assert extended.problem(_target(Provider.OPENAI, "gpt-4o-mini")) is None
    assert extended.problem(_target(Provider.OPENAI_COMPATIBLE, "qwen")) is not None  # listed: now checked
    only = ModelRegistry(include_defaults=False, models=[ProviderModels(provider=Provider.ANTHROPIC, models=["claude-haiku-4-5"])])
    assert only.problems([_target(Provider.OPENAI, "gpt-4o-mini"), _target(Provider.ANTHROPIC, "claude-haiku-4-5")]) == [
        "target 't': model 'gpt-4o-mini' is not in the model registry for provider openai (add it under modelRegistry.models to allow it)"]
