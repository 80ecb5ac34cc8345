"""Which request parameters a target accepts, per provider, API version and model.

Providers refuse some sampling parameters with a 400 that never falls back, so the sidecar
must know before it calls. This is the model registry's capability table, one pure
function of (provider, API version, model):

* anthropic, ``anthropic-version: 2026-10-21`` (what the pinned anthropic SDK 2.x sends):
  ``temperature``, ``top_p`` and ``top_k`` are refused, even at default values;
* anthropic, ``2023-06-01``: allowed, except that models released after Claude Opus 4.6
  accept only ``temperature: 1.0``, and Claude 4.x and later refuse ``temperature`` and
  ``top_p`` together (one of them is sent: the route's, else temperature);
* openai: no ``top_k`` (Chat Completions has none and refuses unknown arguments); reasoning
  models (o1, o3, o4-mini, the gpt-5 family) also take only the default ``temperature``
  (1.0), no ``top_p`` and no ``stop``; targets with ``api: responses`` take no ``stop`` and
  ``n`` only 1;
* gemini (``GenerateContentConfig`` takes temperature, top_p, top_k, stop sequences and a
  token limit) and openai-compatible servers: no rules.

The rules themselves are in ``paramrules.py``; each provider's spec (``providers.py``) names its
rule function, API versions and default version.

Route params a target refuses are a config error (``route_param_problems``, run by the
sidecar's loader and the operator alike) unless the route says ``unsupportedParams: drop``;
app-sent params a target refuses are dropped by the sidecar and reported.
Parameter names are the chat request's: ``temperature``, ``top_p``, ``top_k``, ``stop``,
``max_tokens``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from modelroute.api.v1alpha1.paramrules import ANTHROPIC_2026 as ANTHROPIC_2026
from modelroute.api.v1alpha1.paramrules import ANTHROPIC_LEGACY as ANTHROPIC_LEGACY
from modelroute.api.v1alpha1.paramrules import NO_RULES, RESPONSES_API, ParamRules, Unsupported, merged
from modelroute.api.v1alpha1.paramrules import RULED as RULED
from modelroute.api.v1alpha1.paramrules import SAMPLING as SAMPLING
from modelroute.api.v1alpha1.providers import PROVIDERS, spec_of
from modelroute.api.v1alpha1.spec import (
    ModelRouteSpec,
    OpenAIApi,
    Params,
    Provider,
    Target,
    UnsupportedParams,
)

__all__ = ["ANTHROPIC_2026", "ANTHROPIC_LEGACY", "API_VERSIONS", "DEFAULT_API_VERSION", "NO_RULES", "RULED", "SAMPLING",
           "ParamRules", "Unsupported", "api_version_of", "api_version_problem", "param_values", "route_param_problems",
           "rules_for", "rules_of", "unsupported_params"]

API_VERSIONS: dict[Provider, tuple[str, ...]] = {p: s.api_versions for p, s in PROVIDERS.items() if s.api_versions}
"""The API versions a target may pin with ``apiVersion``, per provider (none for the others)."""
DEFAULT_API_VERSION: dict[Provider, str] = {p: s.default_api_version for p, s in PROVIDERS.items() if s.default_api_version}
"""What the pinned SDK sends when a target sets no ``apiVersion`` (a test checks the SDK)."""

CAMEL = {"temperature": "temperature", "top_p": "topP", "top_k": "topK", "stop": "stop", "max_tokens": "maxTokens", "n": "n"}


def api_version_of(target: Target) -> str | None:
    """The API version a target's calls use: its ``apiVersion``, else the SDK's default (None: unversioned)."""
    return target.api_version or DEFAULT_API_VERSION.get(target.provider)


@functools.lru_cache(maxsize=512)
def rules_for(provider: Provider, api_version: str | None, model: str) -> ParamRules:
    """The parameter rules of one provider, API version (None: the default) and model id."""
    spec = spec_of(provider)
    if spec.param_rules is None:
        return NO_RULES
    return spec.param_rules(api_version or spec.default_api_version, model)


def rules_of(target: Target) -> ParamRules:
    """``rules_for`` the target's provider, API version and model, plus the Responses API's when ``api: responses``."""
    if target.api is OpenAIApi.RESPONSES:
        return _responses_rules(target.provider, api_version_of(target), target.model)
    return rules_for(target.provider, api_version_of(target), target.model)


@functools.lru_cache(maxsize=128)
def _responses_rules(provider: Provider, api_version: str | None, model: str) -> ParamRules:
    return merged(rules_for(provider, api_version, model), RESPONSES_API)


def param_values(params: Params | None) -> dict[str, Any]:
    """Route params as chat request names -> values (unset ones left out)."""
    if params is None:
        return {}
    values = {"temperature": params.temperature, "top_p": params.top_p, "stop": params.stop, "max_tokens": params.max_tokens}
    return {k: v for k, v in values.items() if v is not None}


def unsupported_params(provider: Provider, api_version: str | None, model: str, params: Mapping[str, Any]) -> list[Unsupported]:
    """The params (chat request names -> values) the target refuses, each with its reason."""
    return rules_for(provider, api_version, model).unsupported(params)


def api_version_problem(target: Target) -> str | None:
    """Why a target's ``apiVersion`` cannot be used, or None."""
    if target.api_version is None:
        return None
    known = API_VERSIONS.get(target.provider, ())  # other providers: refused when the Target is parsed
    if target.api_version not in known:
        return f"target {target.name!r}: apiVersion {target.api_version!r} is not a known {target.provider.value} API version ({', '.join(known)})"
    return None


def route_param_problems(spec: ModelRouteSpec) -> list[tuple[str, str]]:
    """(field path, message) for every apiVersion problem, and every route or target param a
    target refuses (unless the route says ``unsupportedParams: drop``)."""
    out: list[tuple[str, str]] = []
    drop = spec.unsupported_params is UnsupportedParams.DROP
    for ti, t in enumerate(spec.targets):
        p = api_version_problem(t)
        if p is not None:
            out.append((f"spec.targets[{ti}].apiVersion", p))
            continue
        if drop:
            continue
        params = spec.params.merged(t.params)
        values = param_values(params)
        own = set(param_values(t.params))
        version = api_version_of(t)
        for param, reason in rules_of(t).unsupported(values, keep=values):
            where = f"spec.targets[{ti}].params.{CAMEL[param]}" if param in own else f"spec.params.{CAMEL[param]}"
            out.append((where, f"target {t.name!r} ({t.provider.value} {t.model}"
                               f"{f', apiVersion {version}' if version else ''}) cannot take {CAMEL[param]}: {reason}; "
                               f"{_ways_out(t, ti, param, values)}"))
    return out


def _ways_out(t: Target, ti: int, param: str, values: Mapping[str, Any]) -> str:
    ways = [f"remove {CAMEL[param]}"]
    version = api_version_of(t)
    for other in API_VERSIONS.get(t.provider, ()):
        if other != version and all(u.param != param for u in rules_for(t.provider, other, t.model).unsupported(values, keep=values)):
            ways.append(f"set spec.targets[{ti}].apiVersion: {other!r} (it keeps {CAMEL[param]} for {t.model})")
    ways.append("or set spec.unsupportedParams: drop (the param is then not sent to this target)")
    return ", ".join(ways)
