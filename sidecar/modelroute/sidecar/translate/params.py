"""Route and target settings applied to a chat request, before any wire translation.

The rules (docs/architecture.md, "Canonical request"):

* ``temperature``, ``topP`` and ``stop`` set by the route (or target) replace the request's;
* ``maxTokens`` clamps the request's ``max_tokens`` / ``max_completion_tokens``, and is
  used when the request sets neither;
* the prompt's ``system`` goes before the app's messages, as a system message.

The result is still a chat request (pivot format), so every provider translator starts
from it. The input is never mutated: the result is a shallow copy, and ``messages`` is a
new list only when a system prompt is added (message dicts themselves are shared).
"""

from __future__ import annotations

from typing import Any

from modelroute.api.v1alpha1 import Params, Target

Json = dict[str, Any]

MAX_TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")


def effective_params(route_params: Params, target: Target) -> Params:
    """The params a target uses: the route's, with every field the target sets replaced.

    Pure but allocates a model: compute it once per target when the config is compiled.
    """
    return route_params.merged(target.params)


def apply_params(
    request: Json,
    params: Params | None,
    system: str | None = None,
    *,
    max_tokens_field: str = "max_tokens",
) -> Json:
    """``request`` with ``params`` and the prompt's ``system`` applied (a shallow copy).

    ``max_tokens_field`` names the field written when the request sets no limit and
    ``params.max_tokens`` is set (``max_completion_tokens`` for OpenAI proper,
    ``max_tokens`` for OpenAI-compatible servers; Anthropic/Gemini translators read either).
    Limits the request did set are clamped in place, under the name the app used.
    """
    out = dict(request)
    if params is not None:
        if params.temperature is not None:
            out["temperature"] = params.temperature
        if params.top_p is not None:
            out["top_p"] = params.top_p
        if params.stop is not None:
            out["stop"] = list(params.stop)
        if params.max_tokens is not None:
            cap = params.max_tokens
            present = False
            for field in MAX_TOKEN_FIELDS:
                value = out.get(field)
                if value is not None:
                    present = True
                    if not isinstance(value, int) or value > cap:
                        out[field] = cap
            if not present:
                out[max_tokens_field] = cap
    if system:
        messages = request.get("messages") or []
        out["messages"] = [{"role": "system", "content": system}, *messages]
    return out
