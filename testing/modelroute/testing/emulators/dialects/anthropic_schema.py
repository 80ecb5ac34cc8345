"""What the Anthropic Messages API accepts, per ``anthropic-version``: the emulator refuses the rest.

The real API answers a request with an unknown top-level field (``extra_body``, or
``temperature`` under 2026-10-21, which removed the sampling params) with a 400
``invalid_request_error`` saying ``<field>: Extra inputs are not permitted``; under
2023-06-01 it applies per-model sampling rules. The field list is derived from the request
types the pinned anthropic SDK ships (``MessageCreateParams``, which follow the SDK's
version); the per-model rules are the model registry's capability table. Only top-level
fields are checked here, and the ``cache_control`` marks (type, ttl, at most 4 blocks:
``_cache_marks``): full schema validation (types, nested objects, other providers)
slots in as further checks in ``validate`` (issue 12).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from anthropic.types import message_create_params as sdk_params

from modelroute.api.v1alpha1 import Provider
from modelroute.api.v1alpha1.capabilities import ANTHROPIC_2026, ANTHROPIC_LEGACY, SAMPLING, rules_for

from .base import BadRequest

SDK_FIELDS = frozenset(sdk_params.MessageCreateParamsStreaming.__annotations__) | frozenset(
    sdk_params.MessageCreateParamsNonStreaming.__annotations__
)
FIELDS: dict[str, frozenset[str]] = {
    ANTHROPIC_2026: SDK_FIELDS,
    ANTHROPIC_LEGACY: SDK_FIELDS | frozenset(SAMPLING),
}


MAX_BREAKPOINTS = 4
TTLS = ("5m", "1h")


def _cache_marks(body: dict[str, Any]) -> BadRequest | None:
    """``cache_control`` marks as the API checks them: ``{"type": "ephemeral", "ttl"?: "5m"|"1h"}``, at most 4
    blocks (tools, system, message content; the top-level mark is not a block)."""
    places: list[tuple[str, Any]] = [(f"tools.{i}", t) for i, t in enumerate(body.get("tools") or ())]
    system = body.get("system")
    places += [(f"system.{i}", b) for i, b in enumerate(system)] if isinstance(system, list) else []
    for i, m in enumerate(body.get("messages") or ()):
        content = m.get("content") if isinstance(m, dict) else None
        for j, b in enumerate(content if isinstance(content, list) else ()):
            places.append((f"messages.{i}.content.{j}", b))
            inner = b.get("content") if isinstance(b, dict) and b.get("type") == "tool_result" else None
            places += [(f"messages.{i}.content.{j}.content.{k}", c) for k, c in enumerate(inner if isinstance(inner, list) else ())]
    blocks = [(f"{where}.cache_control", b["cache_control"]) for where, b in places
              if isinstance(b, dict) and b.get("cache_control") is not None]
    top = [("cache_control", body["cache_control"])] if body.get("cache_control") is not None else []
    for where, mark in [*top, *blocks]:
        if not isinstance(mark, dict) or mark.get("type") != "ephemeral":
            return BadRequest(f"{where}.type: Input should be 'ephemeral'", param=where)
        extra = sorted(set(mark) - {"type", "ttl"})
        if extra:
            return BadRequest(f"{where}.{extra[0]}: Extra inputs are not permitted", param=where)
        if "ttl" in mark and mark["ttl"] not in TTLS:
            return BadRequest(f"{where}.ttl: Input should be '5m' or '1h'", param=where)
    if len(blocks) > MAX_BREAKPOINTS:
        return BadRequest(f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(blocks)}.")
    return None


def validate(body: Any, headers: Mapping[str, str]) -> BadRequest | None:
    """The 400 the real API gives this request, or None."""
    if not isinstance(body, dict):
        return None  # the dialect's parse says what is wrong
    version = headers.get("anthropic-version", "")
    fields = FIELDS.get(version)
    if fields is None:
        return BadRequest(f"anthropic-version: {version!r} is not a valid version ({', '.join(sorted(FIELDS))})")
    for key in body:
        if key not in fields:
            return BadRequest(f"{key}: Extra inputs are not permitted", param=key)
    bad_marks = _cache_marks(body)
    if bad_marks is not None:
        return bad_marks
    if version == ANTHROPIC_LEGACY:
        model = body.get("model")
        refused = rules_for(Provider.ANTHROPIC, version, model if isinstance(model, str) else "").unsupported(body)
        if refused:
            param, reason = refused[0]
            return BadRequest(f"{param}: {reason}", param=param)
    return None
