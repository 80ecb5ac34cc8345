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
  (1.0), and no ``top_p``;
* gemini (``GenerateContentConfig`` takes temperature, top_p, top_k, stop sequences and a
  token limit) and openai-compatible servers: no rules.

Route params a target refuses are a config error (``route_param_problems``, run by the
sidecar's loader and the operator alike) unless the route says ``unsupportedParams: drop``;
app-sent params a target refuses are dropped by the sidecar and reported.
Parameter names are the chat request's: ``temperature``, ``top_p``, ``top_k``, ``stop``,
``max_tokens``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from modelroute.api.v1alpha1.spec import ModelRouteSpec, Params, Provider, Target, UnsupportedParams

ANTHROPIC_LEGACY = "2023-06-01"
ANTHROPIC_2026 = "2026-10-21"
API_VERSIONS: dict[Provider, tuple[str, ...]] = {Provider.ANTHROPIC: (ANTHROPIC_LEGACY, ANTHROPIC_2026)}
"""The API versions a target may pin with ``apiVersion``, per provider (none for the others)."""
DEFAULT_API_VERSION: dict[Provider, str] = {Provider.ANTHROPIC: ANTHROPIC_2026}
"""What the pinned SDK sends when a target sets no ``apiVersion`` (a test checks the SDK)."""

SAMPLING = ("temperature", "top_p", "top_k")
RULED = (*SAMPLING, "stop", "max_tokens")
CAMEL = {"temperature": "temperature", "top_p": "topP", "top_k": "topK", "stop": "stop", "max_tokens": "maxTokens"}

# Claude models released after Claude Opus 4.6 (2026-02-05); unknown versions above 4.6 count as later.
_CLAUDE = re.compile(r"^claude-(?:(?P<tier>haiku|sonnet|opus)-(?P<major>\d+)(?:-(?P<minor>\d{1,2}))?"
                     r"|(?P<omajor>\d+)(?:-(?P<ominor>\d{1,2}))?-(?P<otier>haiku|sonnet|opus))(?:-|$)")
_AFTER_OPUS_4_6_AT_4_6 = frozenset({"sonnet"})  # Sonnet 4.6 came out after Opus 4.6
_OPENAI_REASONING = re.compile(r"^(o\d+(-mini|-pro)?|gpt-5(\.\d+)?(-mini|-nano|-pro|-codex)?)(-\d{4}-\d{2}-\d{2})?$")


class Unsupported(NamedTuple):
    """One parameter a target refuses, and why."""

    param: str
    reason: str


@dataclass(frozen=True)
class ParamRules:
    """What one (provider, API version, model) refuses. Empty rules are falsy."""

    rejected: Mapping[str, str] = field(default_factory=dict)      # param -> why it is refused
    only: Mapping[str, tuple[float, str]] = field(default_factory=dict)  # param -> (the one accepted value, why)
    exclusive: tuple[str, ...] = ()                                # at most one of these
    exclusive_reason: str = ""

    def __bool__(self) -> bool:
        return bool(self.rejected or self.only or self.exclusive)

    def unsupported(self, values: Mapping[str, Any], keep: Collection[str] = ()) -> list[Unsupported]:
        """The params set (not None) in ``values`` that the target refuses.

        In an exclusive group the first param named in ``keep`` (the route's) stays, else the
        first of the group; the others are refused.
        """
        out: list[Unsupported] = []
        for param in RULED:
            value = values.get(param)
            if value is None:
                continue
            why = self.rejected.get(param)
            if why is None and param in self.only:
                accepted, reason = self.only[param]
                if value != accepted:
                    why = reason
            if why is not None:
                out.append(Unsupported(param, why))
        if self.exclusive:
            refused = {u.param for u in out}
            present = [p for p in self.exclusive if values.get(p) is not None and p not in refused]
            if len(present) > 1:
                winner = next((p for p in present if p in keep), present[0])
                out += [Unsupported(p, self.exclusive_reason) for p in present if p != winner]
        return out


NO_RULES = ParamRules()


def api_version_of(target: Target) -> str | None:
    """The API version a target's calls use: its ``apiVersion``, else the SDK's default (None: unversioned)."""
    return target.api_version or DEFAULT_API_VERSION.get(target.provider)


def _claude_version(model: str) -> tuple[str, int, int] | None:
    m = _CLAUDE.match(model)
    if m is None:
        return None
    if m["tier"]:
        return m["tier"], int(m["major"]), int(m["minor"] or 0)
    return m["otier"], int(m["omajor"]), int(m["ominor"] or 0)


@functools.lru_cache(maxsize=512)
def rules_for(provider: Provider, api_version: str | None, model: str) -> ParamRules:
    """The parameter rules of one provider, API version (None: the default) and model id."""
    if provider is Provider.ANTHROPIC:
        version = api_version or DEFAULT_API_VERSION[provider]
        if version != ANTHROPIC_LEGACY:
            why = f"anthropic-version {version} removed sampling parameters"
            return ParamRules(rejected=dict.fromkeys(SAMPLING, why))
        claude = _claude_version(model)
        if claude is None:
            return NO_RULES
        tier, major, minor = claude
        only: dict[str, tuple[float, str]] = {}
        if (major, minor) > (4, 6) or ((major, minor) == (4, 6) and tier in _AFTER_OPUS_4_6_AT_4_6):
            only["temperature"] = (1.0, f"{model} (released after Claude Opus 4.6) accepts only temperature 1.0")
        if major >= 4:
            return ParamRules(only=only, exclusive=("temperature", "top_p"),
                              exclusive_reason=f"{model} (Claude 4 and later) refuses temperature and top_p together")
        return ParamRules(only=only)
    if provider is Provider.OPENAI:
        no_top_k = {"top_k": "OpenAI Chat Completions has no top_k (the API refuses unknown arguments)"}
        if _OPENAI_REASONING.match(model) and "-chat" not in model:
            return ParamRules(
                rejected={**no_top_k, "top_p": f"{model} is a reasoning model: top_p is not supported"},
                only={"temperature": (1.0, f"{model} is a reasoning model: only the default temperature (1) is supported")},
            )
        return ParamRules(rejected=no_top_k)
    return NO_RULES


def rules_of(target: Target) -> ParamRules:
    """``rules_for`` the target's provider, API version and model."""
    return rules_for(target.provider, api_version_of(target), target.model)


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
