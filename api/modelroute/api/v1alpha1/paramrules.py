"""The request parameters each provider's API versions and models refuse, as rule functions.

``providers.ProviderSpec.param_rules`` names one of these per provider that has rules; the
capability table (``capabilities.rules_for``) applies it. Kept apart from ``capabilities`` so the
provider registry can name the functions without importing the spec models.

* anthropic, ``anthropic-version: 2026-10-21`` (what the pinned anthropic SDK 2.x sends):
  ``temperature``, ``top_p`` and ``top_k`` are refused, even at default values;
* anthropic, ``2023-06-01``: allowed, except that models released after Claude Opus 4.6
  accept only ``temperature: 1.0``, and Claude 4.x and later refuse ``temperature`` and
  ``top_p`` together (one of them is sent: the route's, else temperature);
* openai reasoning models (o1, o3, o4-mini, the gpt-5 family): only the default
  ``temperature`` (1.0), no ``top_p`` and no ``stop`` (OpenAI's API reference: stop is "not
  supported with latest reasoning models o3 and o4-mini"; the gpt-5 family refuses it likewise);
* openai targets with ``api: responses``: no ``stop`` (the Responses API has no stop sequences)
  and ``n`` only 1 (one answer per call): ``RESPONSES_API``, added by ``capabilities.rules_of``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

ANTHROPIC_LEGACY = "2023-06-01"
ANTHROPIC_2026 = "2026-10-21"

SAMPLING = ("temperature", "top_p", "top_k")
RULED = (*SAMPLING, "stop", "max_tokens", "n")

# Claude models released after Claude Opus 4.6 (2026-02-05); unknown versions above 4.6 count as later.
_CLAUDE = re.compile(r"^claude-(?:(?P<tier>haiku|sonnet|opus)-(?P<major>\d+)(?:-(?P<minor>\d{1,2}))?"
                     r"|(?P<omajor>\d+)(?:-(?P<ominor>\d{1,2}))?-(?P<otier>haiku|sonnet|opus))(?:-|$)")
_AFTER_OPUS_4_6_AT_4_6 = frozenset({"sonnet"})  # Sonnet 4.6 came out after Opus 4.6
_OPENAI_REASONING = re.compile(r"^(o\d+(-mini|-pro)?|gpt-5(\.\d+)?(-mini|-nano|-pro|-codex)?)(-\d{4}-\d{2}-\d{2})?$")


class Unsupported(NamedTuple):
    """One parameter a target refuses, and why."""

    param: str
    reason: str


class ParamRules(NamedTuple):
    """What one (provider, API version, model) refuses. Empty rules are falsy."""

    rejected: Mapping[str, str] = MappingProxyType({})      # param -> why it is refused
    only: Mapping[str, tuple[float, str]] = MappingProxyType({})  # param -> (the one accepted value, why)
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

RESPONSES_API = ParamRules(
    rejected={"stop": "the OpenAI Responses API (target api: responses) has no stop sequences"},
    only={"n": (1, "the OpenAI Responses API (target api: responses) gives one answer per call (n must be 1)")},
)


def merged(a: ParamRules, b: ParamRules) -> ParamRules:
    """Both rule sets at once (``a``'s exclusive group kept; ``b`` adds refusals and single values)."""
    if not b:
        return a
    return ParamRules(rejected={**a.rejected, **b.rejected}, only={**a.only, **b.only},
                      exclusive=a.exclusive or b.exclusive, exclusive_reason=a.exclusive_reason or b.exclusive_reason)


def _claude_version(model: str) -> tuple[str, int, int] | None:
    m = _CLAUDE.match(model)
    if m is None:
        return None
    if m["tier"]:
        return m["tier"], int(m["major"]), int(m["minor"] or 0)
    return m["otier"], int(m["omajor"]), int(m["ominor"] or 0)


def anthropic_rules(version: str | None, model: str) -> ParamRules:
    """Anthropic Messages: by ``anthropic-version`` (the provider's default already applied) and Claude model."""
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


def openai_rules(version: str | None, model: str) -> ParamRules:
    """OpenAI Chat Completions: no top_k; reasoning models take only the default temperature and no top_p."""
    no_top_k = {"top_k": "OpenAI Chat Completions has no top_k (the API refuses unknown arguments)"}
    if _OPENAI_REASONING.match(model) and "-chat" not in model:
        return ParamRules(
            rejected={**no_top_k, "top_p": f"{model} is a reasoning model: top_p is not supported",
                      "stop": f"{model} is a reasoning model: stop sequences are not supported"},
            only={"temperature": (1.0, f"{model} is a reasoning model: only the default temperature (1) is supported")},
        )
    return ParamRules(rejected=no_top_k)
