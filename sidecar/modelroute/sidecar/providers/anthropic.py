"""Adapter for Anthropic Messages: the ``anthropic`` SDK builds, the transport sends.

Same shape as the OpenAI adapter (both SDKs are Stainless-generated, see ``openai_anthropic``):
an ``AsyncAnthropic`` client per target (``max_retries=0``, SDK tracing off: the sidecar
traces requests itself) prepares the request with its auth and ``anthropic-version``
headers (a target's ``apiVersion`` replaces the SDK's version through ``default_headers``); the answer is parsed once into a dict and translated by ``translate.anthropic``.
Streams are read as raw SSE and fed to ``AnthropicStreamToChat``; an ``error`` event
(``overloaded_error`` mid-stream) becomes an ``UpstreamError`` of the matching kind, and so
does a 200 that carries Anthropic's error envelope.
"""

from __future__ import annotations

import os
import time
from typing import Any

from modelroute.sidecar.output.native import anthropic_native_schema
from modelroute.sidecar.providers.build_send import StreamTranslator
from modelroute.sidecar.providers.errors import bad_response, from_status
from modelroute.sidecar.providers.leanimport import lean_package
from modelroute.sidecar.providers.openai_anthropic import (
    ANTHROPIC_SEND_ONLY,
    StainlessAdapter,
    builder_client,
)
from modelroute.sidecar.translate.anthropic import (
    AnthropicStreamToChat,
    anthropic_to_chat_response,
    chat_to_anthropic_request,
)
from modelroute.sidecar.translate.chat import wants_usage

# The SDK without its package __init__s (and their type trees): leanimport says why.
anthropic = lean_package("anthropic", on_call=ANTHROPIC_SEND_ONLY)

Json = dict[str, Any]

_ENVELOPE_STATUS = {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500}


def _chat_id() -> str:
    return "chatcmpl-" + os.urandom(12).hex()


class AnthropicAdapter(StainlessAdapter):
    """One Anthropic target."""

    PATH = "/v1/messages"

    def sdk_client(self, key: str, base_url: str | None) -> Any:
        kwargs: Json = {"base_url": base_url} if base_url else {}
        if self.target.api_version:  # the SDK sends its own version unless told otherwise
            kwargs["default_headers"] = {"anthropic-version": self.target.api_version}
        return anthropic.AsyncAnthropic(api_key=key, max_retries=0, http_client=builder_client(),
                                        open_telemetry=False, **kwargs)

    def body(self, request: Json, stream: bool) -> Json:
        body = chat_to_anthropic_request(request, model=self.target.model, params=self._params, system=self._system,
                                         native_json_schema=anthropic_native_schema(self.target.model),
                                         accepts=self._accepts)
        if stream:
            body["stream"] = True
        else:
            body.pop("stream", None)
        return body

    def answer(self, data: Json) -> Json:
        if data.get("type") == "error":  # a 200 carrying the error envelope: as the status its type implies
            err = data.get("error")
            etype = err.get("type") if isinstance(err, dict) else None
            raise from_status(_ENVELOPE_STATUS.get(str(etype), 400), None, data, provider="anthropic")
        if not isinstance(data.get("content"), list):
            raise bad_response("anthropic", "no content in the answer")
        return anthropic_to_chat_response(data, created=int(time.time()))

    def stream_translator(self, request: Json) -> StreamTranslator:
        return AnthropicStreamToChat(
            model=self.target.model, id=_chat_id(), created=int(time.time()), include_usage=wants_usage(request)
        )
