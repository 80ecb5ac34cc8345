"""What the Anthropic Messages API accepts, per ``anthropic-version``: the emulator refuses the rest.

The real API answers a request with an unknown top-level field (``extra_body``, or
``temperature`` under 2026-10-21, which removed the sampling params) with a 400
``invalid_request_error`` saying ``<field>: Extra inputs are not permitted``; under
2023-06-01 it applies per-model sampling rules. The field list is derived from the request
types the pinned anthropic SDK ships (``MessageCreateParams``, which follow the SDK's
version); the per-model rules are the model registry's capability table. Only top-level
fields are checked here: full schema validation (types, nested objects, other providers)
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
    if version == ANTHROPIC_LEGACY:
        model = body.get("model")
        refused = rules_for(Provider.ANTHROPIC, version, model if isinstance(model, str) else "").unsupported(body)
        if refused:
            param, reason = refused[0]
            return BadRequest(f"{param}: {reason}", param=param)
    return None
