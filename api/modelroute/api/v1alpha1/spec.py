"""The ModelRoute spec: routes, targets, parameters and resilience settings.

Field names are the contract shared by the standalone sidecar config, the CRD and the
operator. Cross-field invariants are written twice on purpose: as pydantic validators
(sidecar start, ``PUT /config``) and as CEL rules on the CRD (the apiserver).
"""


import re
from enum import StrEnum
from typing import Self

from pydantic import ConfigDict, Field, model_validator

from modelroute.api.v1alpha1.base import (
    DNS_LABEL,
    ApiModel,
    LabelSelector,
    exactly_one_rule,
    require_exactly_one,
)
from modelroute.api.v1alpha1.embeddings import route_dimension_problem
from modelroute.api.v1alpha1.output import BUILTIN_VARIABLES, PLACEHOLDER, VARIABLE_NAME, Output
from modelroute.api.v1alpha1.providers import Provider as Provider
from modelroute.api.v1alpha1.providers import having, spec_of
from modelroute.api.v1alpha1.quota import CachePolicy, Limits, Pricing
from modelroute.api.v1alpha1.strategy import Strategy

ROUTE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
MAX_TARGETS = 8
_KEYLESS = having(lambda s: s.keyless)            # providers whose targets may omit apiKey
_VERSIONED = having(lambda s: s.api_versions)     # providers whose targets may pin apiVersion
_API_CHOICE = having(lambda s: s.apis)            # providers whose targets may choose an upstream api


class OpenAIApi(StrEnum):
    """Which OpenAI API an openai(-compatible) target is called through."""

    CHAT = "chat"
    RESPONSES = "responses"


class UnsupportedParams(StrEnum):
    """What to do with route params a target cannot take."""

    ERROR = "error"
    DROP = "drop"


class SecretKeyRef(ApiModel):
    name: str = Field(description="Name of the Secret (in the ModelRoute's namespace) that holds the key.", pattern=DNS_LABEL, max_length=253)
    key: str = Field(description="Key inside the Secret's data.", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


_ONE_KEY_SOURCE = "apiKey needs exactly one of env, file or secretKeyRef"


class ApiKey(ApiModel):
    """Where a target's API key comes from. Exactly one source must be set."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        exactly_one_rule(("env", "file", "secretKeyRef"), _ONE_KEY_SOURCE),
    ]})

    env: str | None = Field(default=None, description="Name of an environment variable of the sidecar that holds the key.", pattern=ENV_NAME, max_length=256)
    file: str | None = Field(default=None, description="Path of a file that holds the key; re-read when it changes (rotation).", min_length=1, max_length=4096)
    secret_key_ref: SecretKeyRef | None = Field(default=None, description="A key of a Kubernetes Secret, mounted read-only into the sidecar.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        require_exactly_one((self.env, self.file, self.secret_key_ref), _ONE_KEY_SOURCE)
        return self


class Params(ApiModel):
    """Sampling parameters sent to the provider. A target's params override the route's, field by field."""

    temperature: float | None = Field(default=None, description="Sampling temperature (0 = deterministic).", ge=0, le=2)
    max_tokens: int | None = Field(default=None, description="Upper bound on generated tokens; the request's own limit is clamped to it.", ge=1, le=1_000_000)
    top_p: float | None = Field(default=None, description="Nucleus sampling probability mass.", ge=0, le=1)
    stop: list[str] | None = Field(default=None, description="Stop sequences (at most 4).", max_length=4)

    def merged(self, override: "Params | None") -> "Params":
        """These params with every field that ``override`` sets replaced."""
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_none=True))


class InputSize(ApiModel):
    """Which requests a target takes, by estimated input tokens (``docs/context-windows.md``: the estimate)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        {"rule": "has(self.minInputTokens) || has(self.maxInputTokens)",
         "message": "when needs minInputTokens or maxInputTokens"},
        {"rule": "!has(self.minInputTokens) || !has(self.maxInputTokens) || self.minInputTokens <= self.maxInputTokens",
         "message": "when.minInputTokens must not exceed when.maxInputTokens", "fieldPath": ".minInputTokens"},
    ]})

    min_input_tokens: int | None = Field(
        default=None, ge=0, le=100_000_000,
        description="The target takes only requests estimated at this many input tokens or more; smaller ones skip it.",
    )
    max_input_tokens: int | None = Field(
        default=None, ge=0, le=100_000_000,
        description="The target takes only requests estimated at this many input tokens or fewer; larger ones skip it.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        low, high = self.min_input_tokens, self.max_input_tokens
        if low is None and high is None:
            raise ValueError("when needs minInputTokens or maxInputTokens")
        if low is not None and high is not None and low > high:
            raise ValueError(f"when.minInputTokens ({low}) must not exceed when.maxInputTokens ({high})")
        return self

    def admits(self, tokens: int) -> bool:
        """Whether a request estimated at ``tokens`` input tokens may go to the target."""
        return ((self.min_input_tokens is None or tokens >= self.min_input_tokens)
                and (self.max_input_tokens is None or tokens <= self.max_input_tokens))


class Target(ApiModel):
    """One provider model that can serve the route. The first target is the primary."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        {"rule": " || ".join([*(f"self.provider == '{p}'" for p in _KEYLESS), "has(self.apiKey)"]),
         "message": f"apiKey is required unless provider is {' or '.join(_KEYLESS)}", "fieldPath": ".apiKey"},
        {"rule": " || ".join(["!has(self.apiVersion)", *(f"self.provider == '{p}'" for p in _VERSIONED)]),
         "message": f"apiVersion applies to {' and '.join(_VERSIONED)} targets only", "fieldPath": ".apiVersion"},
        {"rule": " || ".join(["!has(self.api)", *(f"self.provider == '{p}'" for p in _API_CHOICE)]),
         "message": f"api applies to {' and '.join(_API_CHOICE)} targets only", "fieldPath": ".api"},
    ]})

    name: str = Field(description="Name of the target, unique within the route (used in stats, traces and errors).", pattern=DNS_LABEL, max_length=63)
    provider: Provider = Field(description="Wire protocol and SDK used to call the model.")
    model: str = Field(description="Provider model id, for example gpt-5.4-mini, claude-haiku-4-5 or gemini-3.5-flash.", min_length=1, max_length=200)
    base_url: str | None = Field(default=None, description="Override of the provider endpoint (self-hosted gateways, vLLM/Ollama, tests).", pattern=r"^https?://", max_length=2048)
    api_key: ApiKey | None = Field(default=None, description="Where the API key comes from. Required except for openai-compatible endpoints without auth.")
    api_version: str | None = Field(
        default=None, max_length=32, pattern=r"^[0-9A-Za-z._-]+$",
        description="API version the target's calls use (anthropic: the anthropic-version header, 2023-06-01 or 2026-10-21). "
                    "Unset: what the pinned SDK sends (anthropic 2026-10-21, which refuses temperature, topP and topK).",
    )
    api: OpenAIApi | None = Field(
        default=None,
        description="openai and openai-compatible targets: the API the calls use, chat (Chat Completions, the default) or "
                    "responses (the Responses API, with store false; stop sequences cannot be sent through it).",
    )
    params: Params | None = Field(default=None, description="Parameters for this target only; they override the route's params.")
    timeout_seconds: float | None = Field(default=None, description="Timeout of one attempt on this target; defaults to what is left of the route's deadline.", gt=0, le=600)
    limits: Limits | None = Field(default=None, description="Local rate limits of this target; unset: only the provider's headers limit.")
    pricing: Pricing | None = Field(default=None, description="Prices of this target's model; unset: the built-in list price, if any.")
    dimensions: int | None = Field(
        default=None, ge=1, le=65536,
        description="Embedding targets: the vector dimension to ask for (OpenAI dimensions, Gemini outputDimensionality). "
                    "Unset: the model's default from the model registry. Every embedding target of a route must share one dimension.",
    )
    when: InputSize | None = Field(
        default=None,
        description="Which requests this target takes, by estimated input tokens (e.g. minInputTokens: 100000 on a "
                    "long-context target); a request outside the range skips it (attempt outcome input_size). Unset: every request.",
    )

    @model_validator(mode="after")
    def _key_required(self) -> Self:
        if self.api_key is None and not spec_of(self.provider).keyless:
            raise ValueError(f"target {self.name!r}: apiKey is required for provider {self.provider.value}")
        return self

    @model_validator(mode="after")
    def _api_version_provider(self) -> Self:
        if self.api_version is not None and not spec_of(self.provider).api_versions:
            raise ValueError(f"target {self.name!r}: apiVersion applies to {' and '.join(_VERSIONED)} targets only (remove it)")
        if self.api is not None and not spec_of(self.provider).apis:
            raise ValueError(f"target {self.name!r}: api applies to {' and '.join(_API_CHOICE)} targets only (remove it)")
        return self


class Prompt(ApiModel):
    """The route's prompt; its version is reported with every answer."""

    version: str = Field(description="Version label of the prompt, reported in headers, stats and traces.", min_length=1, max_length=63)
    system: str | None = Field(default=None, description="System prompt put before the app's messages.", max_length=100_000)
    user: str | None = Field(default=None, description="User message template of the task endpoints (/v1/classify, /v1/extract); {{input}}, {{labels}}, {{schema}} and declared variables are filled in.", max_length=100_000)
    variables: dict[str, str] = Field(default_factory=lambda: {}, description="Default values of template variables (a request's variables override them).")

    @model_validator(mode="after")
    def _variables(self) -> Self:
        for name in self.variables:
            if not re.fullmatch(VARIABLE_NAME, name):
                raise ValueError(f"prompt variable name {name!r} must match {VARIABLE_NAME}")
            if name in BUILTIN_VARIABLES:
                raise ValueError(f"prompt variable {name!r} is built in and cannot have a default")
        return self

    def placeholders(self) -> set[str]:
        """Variables the user template uses."""
        return set(PLACEHOLDER.findall(self.user or ""))


class Backoff(ApiModel):
    initial_ms: int = Field(default=200, description="Backoff cap of the first retry; each retry doubles it (full jitter).", ge=0, le=60_000)
    max_ms: int = Field(default=5000, description="Upper bound of one backoff, also the cap on a provider's retry-after.", ge=0, le=300_000)


class Retry(ApiModel):
    attempts: int = Field(default=1, description="Attempts per target (1 = no retry) before falling back to the next target.", ge=1, le=10)
    backoff: Backoff = Field(default_factory=lambda: Backoff(), description="Exponential backoff with full jitter between attempts.")


class CircuitBreaker(ApiModel):
    failure_threshold: int = Field(default=5, description="Consecutive failures that open the breaker; an open target is skipped at once.", ge=1, le=1000)
    open_seconds: float = Field(default=30, description="How long the breaker stays open before one half-open probe is let through.", gt=0, le=3600)


class RouteTelemetry(ApiModel):
    """What the route's OpenTelemetry spans may carry beyond metadata."""

    record_content: bool = Field(
        default=False,
        description="Record prompt and completion text on the request's server span (gen_ai.input.messages / gen_ai.output.messages). Off by default: traces never hold content.",
    )


class ModelRouteSpec(ApiModel):
    """What a route serves and how it falls back."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        {"rule": "size(self.targets) >= 1", "message": "at least one target is required", "fieldPath": ".targets"},
        {"rule": "self.targets.all(t, self.targets.exists_one(u, u.name == t.name))",
         "message": "target names must be unique within a route", "fieldPath": ".targets"},
    ]})

    route: str = Field(description="The name apps send as `model`.", pattern=ROUTE_NAME)
    targets: list[Target] = Field(description="Primary target first, then the fallback chain, in order.", min_length=1, max_length=MAX_TARGETS)
    params: Params = Field(default_factory=lambda: Params(), description="Sampling parameters for every target (a target may override).")
    unsupported_params: UnsupportedParams | None = Field(
        default=None,
        description="Route or target params a target cannot take (its provider, apiVersion and model refuse them): "
                    "error (unset: the config is refused) or drop (not sent to that target). App-sent params a target "
                    "cannot take are always dropped and reported in the x-modelroute-dropped-params header.",
    )
    prompt: Prompt | None = Field(default=None, description="Versioned system prompt put before the app's messages.")
    timeout_seconds: float = Field(default=30, description="Deadline of one request across all attempts and fallbacks.", gt=0, le=600)
    retry: Retry = Field(default_factory=lambda: Retry(), description="Retries on one target before falling back.")
    circuit_breaker: CircuitBreaker = Field(default_factory=lambda: CircuitBreaker(), description="Per-target circuit breaker.")
    selector: LabelSelector | None = Field(default=None, description="Pods (with a modelroute sidecar, same namespace) this route is pushed to. Unset: every such pod.")
    output: Output | None = Field(default=None, description="Output contract: answers are validated, repaired or refused. Unset: free text, unchecked.")
    cache: CachePolicy | None = Field(default=None, description="Response cache of the route. Unset: no caching.")
    telemetry: RouteTelemetry | None = Field(default=None, description="Telemetry options of the route (content recording is opt-in).")
    strategy: Strategy | None = Field(default=None, description="How a change of targets, params or prompt reaches live traffic (canary steps and analysis). Unset: at once.")

    @model_validator(mode="after")
    def _unique_targets(self) -> Self:
        seen: set[str] = set()
        for t in self.targets:
            if t.name in seen:
                raise ValueError(f"target names must be unique: {t.name!r} appears twice")
            seen.add(t.name)
        return self

    @model_validator(mode="after")
    def _embedding_dimensions(self) -> Self:
        problem = route_dimension_problem((t.name, t.provider, t.model, t.dimensions) for t in self.targets)
        if problem is not None:
            raise ValueError(f"route {self.route!r}: {problem}")
        return self
