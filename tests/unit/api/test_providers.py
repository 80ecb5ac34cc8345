"""The provider registry: every Provider member has a spec, and nothing else switches on the provider.

Adding a provider is a ``Provider`` member plus its ``ProviderSpec`` in
``modelroute/api/v1alpha1/providers.py`` and the adapter module the spec names (docs/architecture.md,
"Adding a provider"). The source scan below keeps it that way: a module that branches on a
``Provider`` member or keys a table by provider fails it with the line to move into the spec.
"""

from __future__ import annotations

import inspect
import re
import typing
from pathlib import Path

import pytest

from modelroute.api.v1alpha1 import Provider
from modelroute.api.v1alpha1.capabilities import API_VERSIONS, DEFAULT_API_VERSION
from modelroute.api.v1alpha1.providers import PROVIDERS, spec_of
from modelroute.api.v1alpha1.registry import DEFAULT_MODELS
from modelroute.sidecar.pipeline.cost import DEFAULT_PRICES
from modelroute.sidecar.providers.registry import adapter_class

ROOT = Path(__file__).resolve().parents[3]
REGISTRY = ROOT / "api/modelroute/api/v1alpha1/providers.py"
SCANNED = ("api", "sidecar", "operator", "cli")

# What "switching on the provider" looks like in source: a comparison with a member, membership in
# a tuple of members, a table keyed by members, a match case, or a table keyed by provider names.
SWITCHES = [
    re.compile(r"\b(is|is not|==|!=)\s+Provider\.[A-Z_]+"),
    re.compile(r"\bin\s*[(\[{]\s*Provider\.[A-Z_]+"),
    re.compile(r"Provider\.[A-Z_]+\s*:\s*\S"),
    re.compile(r"\bcase\s+Provider\."),
    re.compile(r"""\.provider(\.value)?\s+(is|is not|==|!=|in)\s+(Provider\.|["'][a-z]|\()"""),
    re.compile(r"""[{,]\s*["'](openai|anthropic|gemini|openai-compatible)["']\s*:"""),
]


def switches(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")
            and any(p.search(line) for p in SWITCHES)]


def test_every_provider_has_a_spec_of_its_own() -> None:
    assert set(PROVIDERS) == set(Provider)
    for provider in Provider:
        spec = spec_of(provider)
        assert spec.provider is provider
        assert spec.otel_name and spec.adapter.count(":") == 1
        assert spec.default_api_version is None or spec.default_api_version in spec.api_versions
        assert spec.checks_models or not spec.models


@pytest.mark.parametrize("provider", list(Provider))
def test_each_spec_names_an_adapter_class_built_like_the_factory_calls_it(provider: Provider) -> None:
    built = adapter_class(provider)   # a class, or a function choosing one (OpenAI: chat or Responses)
    cls = built if inspect.isclass(built) else typing.get_type_hints(built)["return"]
    assert inspect.isclass(cls)
    for method in ("complete", "stream", "bound", "aclose"):
        assert callable(getattr(cls, method, None)), f"{cls.__name__} lacks {method}"
    params = inspect.signature(built).parameters
    assert list(params)[:2] == ["target", "key"]
    assert {"params", "system"} <= {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY}


def test_the_tables_that_used_to_be_keyed_by_provider_are_read_from_the_specs() -> None:
    assert {p: (*s.models, *s.embedding_models, *s.retirements) for p, s in PROVIDERS.items() if s.models} == DEFAULT_MODELS
    assert API_VERSIONS == {Provider.ANTHROPIC: ("2023-06-01", "2026-10-21")}
    assert DEFAULT_API_VERSION == {Provider.ANTHROPIC: "2026-10-21"}
    assert DEFAULT_PRICES["gpt-4o-mini"].input == 0.15 and DEFAULT_PRICES["claude-haiku-4-5"].cache_write == 1.25
    assert {spec_of(p).otel_name for p in (Provider.OPENAI, Provider.OPENAI_COMPATIBLE)} == {"openai"}
    assert [p for p in Provider if not spec_of(p).native_output] == [Provider.OPENAI_COMPATIBLE]


def test_the_limiters_learn_from_every_providers_rate_limit_headers_once() -> None:
    from modelroute.sidecar.pipeline.limits import _HEADER_FAMILIES

    assert _HEADER_FAMILIES == {
        "requests": (
            ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"),
            ("anthropic-ratelimit-requests-limit", "anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset"),
        ),
        "tokens": (
            ("x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),
            ("anthropic-ratelimit-tokens-limit", "anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset"),
            ("anthropic-ratelimit-input-tokens-limit", "anthropic-ratelimit-input-tokens-remaining",
             "anthropic-ratelimit-input-tokens-reset"),
        ),
    }, "the table before the registry, in the same order (openai-compatible shares openai's, listed once)"


def test_the_scan_recognises_the_switches_it_forbids() -> None:
    """The shapes this registry replaced (each was in the tree before) must all be caught."""
    before = [
        "    if target.provider in (Provider.OPENAI, Provider.OPENAI_COMPATIBLE):",
        "    if target.provider is Provider.ANTHROPIC:",
        "        if provider is Provider.OPENAI_COMPATIBLE:",
        '        self._max_field = "max_completion_tokens" if target.provider is Provider.OPENAI else "max_tokens"',
        "    Provider.OPENAI: (",
        'PROVIDER_NAMES = {"openai": "openai", "openai-compatible": "openai", "anthropic": "anthropic"}',
        "        if self.api_key is None and self.provider is not Provider.OPENAI_COMPATIBLE:",
        "    case Provider.GEMINI:",
        '    if t.provider.value == "gemini":',
    ]
    assert switches("\n".join(before)) == [line.strip() for line in before]
    assert switches("accepts = default_filter(Provider.ANTHROPIC, api_version, model, params)") == []
    assert switches("if entry.provider is provider:") == []   # comparing two providers is not a switch


def test_no_module_outside_the_registry_switches_on_the_provider() -> None:
    found = {}
    for root in SCANNED:
        for path in sorted((ROOT / root).rglob("*.py")):
            if path == REGISTRY:
                continue
            hits = switches(path.read_text(encoding="utf-8"))
            if hits:
                found[str(path.relative_to(ROOT))] = hits
    assert not found, f"put these in the provider's ProviderSpec (api/modelroute/api/v1alpha1/providers.py): {found}"
