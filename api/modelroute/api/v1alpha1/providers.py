"""The provider registry: one ``ProviderSpec`` per ``Provider``, everything modelroute knows about it.

Every part of modelroute that used to switch on the provider reads this table instead: the
``Target`` validators and their CEL rules (which providers need no key, which take an
``apiVersion``), the model registry's built-in ids, the capability table's parameter rules,
the sidecar's adapter factory (``modelroute.sidecar.providers.registry``), native structured
output, the OpenTelemetry provider name and default host, the rate-limit headers the local
limiters learn from, and the built-in list prices. Adding a provider is a ``Provider`` member
and its entry in ``PROVIDERS`` here, plus the adapter module the entry names
(``docs/architecture.md``, "Adding a provider"); ``tests/unit/api/test_providers.py`` checks that
every member has a spec and that no other module switches on ``Provider`` members.

No pydantic here: this is code, not a document anyone sends. The records are ``NamedTuple``s, not
frozen dataclasses: every sidecar imports this, and a dataclass compiles its generated methods
when its class is made (~18 M instructions of a start for these five; ``test_model_cost.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import NamedTuple

from modelroute.api.v1alpha1.paramrules import (
    ANTHROPIC_2026,
    ANTHROPIC_LEGACY,
    ParamRules,
    anthropic_rules,
    openai_rules,
)


class Provider(StrEnum):
    # The wire protocol and SDK a target is called with (no docstring: it would change the CRD).
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    OPENAI_COMPATIBLE = "openai-compatible"


class Price(NamedTuple):
    """List price of a model, USD per million tokens (``pipeline.cost`` applies it to usage)."""

    input: float                       # uncached prompt tokens
    output: float                      # completion tokens, reasoning included
    cached_input: float | None = None  # prompt tokens read from the provider's cache; None: the input price
    cache_write: float | None = None   # prompt tokens written to the provider's cache; None: the input price
    cache_write_1h: float | None = None  # written with a 1-hour TTL (Anthropic); None: 2x the input price, Anthropic's rule


class Window(NamedTuple):
    """A model's context window and output limit, in tokens (documented figures; ``docs/context-windows.md``)."""

    context: int      # input + output tokens the model holds
    max_output: int   # the most output tokens one request may ask for


class Retirement(NamedTuple):
    """A provider's announced shutdown of a model id (the model registry reports it: ``registry.py``)."""

    shutdown: date | None  # the day calls start failing; None: an id the provider never served (its SDK keeps it)
    source: str            # where the date comes from (SDK version and file), so a reader can re-check it


def _retiring(source: str, groups: Mapping[str, tuple[str, ...]]) -> Mapping[str, Retirement]:
    """{model id: Retirement} from {ISO date ("" = never served): ids}, as the source groups them."""
    return MappingProxyType({m: Retirement(date.fromisoformat(day) if day else None, source)
                             for day, ids in groups.items() for m in ids})


HeaderTriple = tuple[str, str, str]
"""Names of one rate-limit header group: (limit, remaining, reset)."""


class RateLimitHeaders(NamedTuple):
    """The rate-limit response headers of a provider, per dimension the local limiter tracks."""

    requests: tuple[HeaderTriple, ...] = ()
    tokens: tuple[HeaderTriple, ...] = ()


class ProviderSpec(NamedTuple):
    """One provider: what the API, the sidecar and the operator need to know about it."""

    provider: Provider
    adapter: str
    """``module:Class`` of its sidecar adapter, imported when a configured target needs it (the SDK with it)."""
    otel_name: str
    """``gen_ai.provider.name`` in spans and metrics (OpenTelemetry GenAI semantic conventions)."""
    default_host: str | None
    """``server.address`` when a target sets no ``baseUrl`` (None: not known, reported as "")."""
    native_output: bool
    """Whether the route's output contract is sent natively (``response_format``, which the translator maps);
    False: the schema goes into a system message."""
    rate_limit_headers: RateLimitHeaders = RateLimitHeaders()
    """The headers the local limiters learn the provider's limits and remaining quota from."""
    models: tuple[str, ...] = ()
    """Built-in model registry: ids a target may name (a listed id also allows its dated versions)."""
    checks_models: bool = True
    """False: any model id is accepted unless the config's registry lists ids for this provider."""
    prices: Mapping[str, Price] = MappingProxyType({})
    """Built-in list prices by model id (the config's and the target's own pricing override them)."""
    keyless: bool = False
    """True: a target may omit ``apiKey`` (a server without authentication)."""
    api_versions: tuple[str, ...] = ()
    """Versions a target may pin with ``apiVersion`` (empty: the field is refused)."""
    default_api_version: str | None = None
    """What the pinned SDK sends when a target sets no ``apiVersion`` (a test checks the SDK)."""
    param_rules: Callable[[str | None, str], ParamRules] | None = None
    """(API version, model) -> the request params the target refuses; None: it refuses none."""
    max_tokens_field: str = "max_tokens"
    """The request field the provider's API takes the output token limit in (OpenAI wire)."""
    apis: tuple[str, ...] = ()
    """Upstream APIs a target may choose with ``api`` (empty: the field is refused)."""
    embedding_models: Mapping[str, int] = MappingProxyType({})
    """Built-in embedding model ids -> their default vector dimension (``POST /v1/embeddings``);
    empty: the provider has no embeddings API. A route's embedding targets must share one dimension."""
    cache_reads_limited: Callable[[str], bool] = lambda model: True
    """Whether input tokens read from the prompt cache count towards the provider's token rate limit
    for a model (the local limiter counts what the provider counts: ``pipeline.limits.usage_tokens``)."""
    windows: Mapping[str, Window] = MappingProxyType({})
    """Built-in context windows by model id (a listed id covers its dated versions; the config's registry
    overrides them). A model left out has no known window: no pre-check, only the provider's own 400."""
    retirements: Mapping[str, Retirement] = MappingProxyType({})
    """Model ids the provider has retired or will retire, with the date (a listed id covers its dated versions
    not listed themselves). The one table of model lifecycles: ``models`` lists only ids not retired yet."""


_OPENAI_HEADERS = RateLimitHeaders(
    requests=(("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"),),
    tokens=(("x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"),),
)
_OPENAI_ADAPTER = "modelroute.sidecar.providers.openai:build"  # chat or Responses, by ``target.api``

# Announced shutdowns, copied from the pinned SDKs (tests/unit/api/test_retirements.py compares them with the
# installed SDKs, so a pin bump that changes them fails until this table follows). google-genai 3.6.1 marks
# no Gemini text model. Re-check https://developers.openai.com/api/docs/deprecations and
# https://docs.anthropic.com/en/docs/resources/model-deprecations when a pin moves.
_OPENAI_RETIREMENTS = _retiring("openai SDK 3.57.0, openai/types/shared/chat_model.py (ChatModel, \"Deprecated values\")", {
    "2027-04-01": ("gpt-5.4-nano", "gpt-5.4-nano-2026-03-17", "gpt-5.1", "gpt-5.1-2025-11-13"),
    "2027-01-20": ("gpt-audio-mini", "gpt-audio-mini-2025-12-15"),
    "2027-01-14": ("gpt-4.1", "gpt-4.1-mini", "gpt-4.1-2025-04-14", "gpt-4.1-mini-2025-04-14", "gpt-4o", "gpt-4o-2024-11-20",
                   "gpt-4o-2024-08-06", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    "2026-12-11": ("gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5-2025-08-07", "gpt-5-mini-2025-08-07", "gpt-5-nano-2025-08-07",
                   "o3", "o3-2025-04-16"),
    "2026-10-23": ("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14", "o4-mini", "o4-mini-2025-04-16", "o3-mini", "o3-mini-2025-01-31",
                   "o1", "o1-2024-12-17", "gpt-4o-2024-05-13", "gpt-4-turbo", "gpt-4-turbo-2024-04-09", "gpt-4-1106-preview",
                   "gpt-4", "gpt-4-0613", "gpt-3.5-turbo", "gpt-3.5-turbo-0125"),
    "2026-09-28": ("gpt-3.5-turbo-1106",),
    "2026-08-10": ("gpt-5.3-chat-latest", "gpt-5.2-chat-latest"),
    "2026-07-23": ("gpt-5.1-codex", "gpt-5.1-chat-latest", "gpt-5-chat-latest", "gpt-4o-search-preview",
                   "gpt-4o-mini-search-preview", "gpt-4o-search-preview-2025-03-11", "gpt-4o-mini-search-preview-2025-03-11"),
    "2026-05-07": ("gpt-4o-audio-preview", "gpt-4o-audio-preview-2024-12-17", "gpt-4o-audio-preview-2025-06-03",
                   "gpt-4o-mini-audio-preview", "gpt-4o-mini-audio-preview-2024-12-17"),
    "2026-03-26": ("gpt-4-0125-preview", "gpt-4-turbo-preview", "gpt-4-0314"),
    "2026-02-17": ("chatgpt-4o-latest",),
    "2026-02-12": ("codex-mini-latest",),
    "2025-10-27": ("o1-mini", "o1-mini-2024-09-12"),
    "2025-10-10": ("gpt-4o-audio-preview-2024-10-01",),
    "2025-07-28": ("o1-preview", "o1-preview-2024-09-12"),
    "2025-06-06": ("gpt-4-32k", "gpt-4-32k-0314", "gpt-4-32k-0613"),
    "2024-12-06": ("gpt-4-vision-preview",),
    "2024-09-13": ("gpt-3.5-turbo-16k", "gpt-3.5-turbo-0301", "gpt-3.5-turbo-0613", "gpt-3.5-turbo-16k-0613"),
    "": ("gpt-5.1-mini",),  # "Not a supported model ID. Retained for SDK compatibility."
})
_ANTHROPIC_RETIREMENTS = _retiring("anthropic SDK 2.13.0, anthropic/_data/deprecated_models.py (DEPRECATED_MODELS, end-of-life)", {
    "2027-01-22": ("claude-opus-4-5", "claude-opus-4-5-20251101"),
    "2026-11-30": ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
    "2026-06-30": ("claude-mythos-preview",),
})
# Shutdowns the pinned SDKs no longer carry (anthropic 2.13.0 neither lists nor marks Claude Haiku 3.5), from the
# provider's page. https://docs.anthropic.com/en/docs/about-claude/model-deprecations: Claude Haiku 3.5
# (claude-3-5-haiku-20241022) retired 2026-02-19, replacement claude-haiku-4-5; coder/coder#22304 (2026-02-25) saw
# its calls fail from that day. tests/unit/api/test_retirements.py keeps these apart from the SDKs' tables.
_ANTHROPIC_DOCUMENTED = _retiring("Anthropic's model deprecations page, "
                                  "https://docs.anthropic.com/en/docs/about-claude/model-deprecations (Claude Haiku 3.5)", {
    "2026-02-19": ("claude-3-5-haiku", "claude-3-5-haiku-20241022"),
})

PROVIDERS: Mapping[Provider, ProviderSpec] = MappingProxyType({
    Provider.OPENAI: ProviderSpec(
        provider=Provider.OPENAI, adapter=_OPENAI_ADAPTER, otel_name="openai", default_host="api.openai.com",
        native_output=True, rate_limit_headers=_OPENAI_HEADERS, param_rules=openai_rules,
        max_tokens_field="max_completion_tokens", apis=("chat", "responses"),
        models=("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "gpt-5-mini", "gpt-5-nano", "gpt-5.4-mini", "gpt-5.4-nano",
                "gpt-5.4", "gpt-5.5"),
        retirements=_OPENAI_RETIREMENTS,
        # USD per 1M tokens, list prices (standard tier). Override in the config when they change.
        # Cached input per https://openai.com/api/pricing (gpt-4o-mini $0.075 vs $0.15); no cache-write charge.
        prices={
            "gpt-4o-mini": Price(0.15, 0.60, 0.075),
            "gpt-4o": Price(2.50, 10.00, 1.25),
            "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
            # embeddings: input tokens only (list prices)
            "text-embedding-3-small": Price(0.02, 0.0),
            "text-embedding-3-large": Price(0.13, 0.0),
            "text-embedding-ada-002": Price(0.10, 0.0),
        },
        embedding_models={"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536},
        windows={
            "gpt-4o-mini": Window(128_000, 16_384),
            "gpt-4o": Window(128_000, 16_384),
            "gpt-4.1": Window(1_047_576, 32_768),
            "gpt-4.1-mini": Window(1_047_576, 32_768),
        },
    ),
    Provider.ANTHROPIC: ProviderSpec(
        provider=Provider.ANTHROPIC, adapter="modelroute.sidecar.providers.anthropic:AnthropicAdapter",
        otel_name="anthropic", default_host="api.anthropic.com", native_output=True,
        rate_limit_headers=RateLimitHeaders(
            requests=(("anthropic-ratelimit-requests-limit", "anthropic-ratelimit-requests-remaining",
                       "anthropic-ratelimit-requests-reset"),),
            tokens=(("anthropic-ratelimit-tokens-limit", "anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset"),
                    ("anthropic-ratelimit-input-tokens-limit", "anthropic-ratelimit-input-tokens-remaining",
                     "anthropic-ratelimit-input-tokens-reset")),
        ),
        api_versions=(ANTHROPIC_LEGACY, ANTHROPIC_2026), default_api_version=ANTHROPIC_2026, param_rules=anthropic_rules,
        # Cache-aware ITPM: cache_read_input_tokens do not count towards the input-tokens limit, except on the
        # older models the rate-limits page marks (Haiku 3 / 3.5); cache_creation_input_tokens always count.
        # https://docs.anthropic.com/en/api/rate-limits ("Cache-aware ITPM"). OpenAI and Gemini count cached tokens.
        cache_reads_limited=lambda model: model.startswith(("claude-3-5-haiku", "claude-3-haiku")),
        models=("claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-5", "claude-opus-4-6",
                "claude-haiku-5-5", "claude-sonnet-5", "claude-sonnet-5-5", "claude-opus-5"),
        retirements=MappingProxyType({**_ANTHROPIC_RETIREMENTS, **_ANTHROPIC_DOCUMENTED}),
        # https://docs.anthropic.com/en/docs/about-claude/pricing: cache reads 0.1x, 5-minute cache writes 1.25x and
        # 1-hour writes 2x the base input price (Price.cache_write_1h's default; docs/prompt-caching.md).
        prices={
            "claude-haiku-4-5": Price(1.00, 5.00, 0.10, 1.25),
        },
        windows={
            "claude-haiku-4-5": Window(200_000, 64_000),
        },
    ),
    Provider.GEMINI: ProviderSpec(
        provider=Provider.GEMINI, adapter="modelroute.sidecar.providers.gemini:GeminiAdapter",
        otel_name="gcp.gemini", default_host="generativelanguage.googleapis.com", native_output=True,
        models=("gemini-2.0-flash", "gemini-2.0-flash-lite", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro",
                "gemini-3-flash-preview", "gemini-3.1-flash-lite", "gemini-3.5-flash", "gemini-3.8-flash"),
        # https://ai.google.dev/gemini-api/docs/pricing: context caching (implicit hits) 0.1x the input price.
        prices={
            "gemini-2.5-flash": Price(0.30, 2.50, 0.03),
            "gemini-2.5-flash-lite": Price(0.10, 0.40, 0.01),
            "gemini-embedding-001": Price(0.15, 0.0),  # embeddings: input tokens only (list price)
        },
        embedding_models={"gemini-embedding-001": 3072, "text-embedding-004": 768},
        windows={
            "gemini-2.5-flash": Window(1_048_576, 65_536),
            "gemini-2.5-flash-lite": Window(1_048_576, 65_536),
            "gemini-2.5-pro": Window(1_048_576, 65_536),
            "gemini-2.0-flash": Window(1_048_576, 8_192),
        },
    ),
    Provider.OPENAI_COMPATIBLE: ProviderSpec(
        provider=Provider.OPENAI_COMPATIBLE, adapter=_OPENAI_ADAPTER, otel_name="openai", default_host=None,
        native_output=False,   # support for response_format varies between servers: the schema goes into the prompt
        rate_limit_headers=_OPENAI_HEADERS, checks_models=False, keyless=True, apis=("chat", "responses"),
    ),
})


def spec_of(provider: Provider) -> ProviderSpec:
    """The spec of ``provider`` (every member has one: ``tests/unit/api/test_providers.py``)."""
    return PROVIDERS[provider]


def having(flag: Callable[[ProviderSpec], object]) -> tuple[Provider, ...]:
    """The providers whose spec has ``flag`` truthy, in enum order (for CEL rules and messages)."""
    return tuple(p for p, s in PROVIDERS.items() if flag(s))
