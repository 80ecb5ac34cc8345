"""Pure wire-format translators, with OpenAI Chat Completions (plain dicts) as the pivot.

No I/O and no SDK imports here: the provider adapters call these functions with dicts and
pass the results to the SDKs. One module per provider; names say the direction:

* ``chat_to_<provider>_request(request, *, model, params, system, ...) -> kwargs`` for the SDK call;
* ``<provider>_to_chat_response(response_dict, *, created, id, model) -> chat.completion dict``;
* ``<Provider>StreamToChat(model=, id=, created=, include_usage=)`` with
  ``feed(event) -> [chunk, ...]``, ``finish() -> [chunk, ...]``, ``.usage``, ``.finish_reason``.

Reverse directions (inbound Anthropic / Gemini APIs, ``anthropic_inbound.py`` and
``gemini_inbound.py``) use the mirrored names: ``anthropic_to_chat_request(body)``,
``chat_to_anthropic_response(completion)``, ``ChatStreamToAnthropic(model=, id=)``,
``gemini_to_chat_request(body, route=, stream=)``, ``chat_to_gemini_response(completion)``,
``ChatStreamToGemini(model=, id=)``, plus error envelopes and SSE framing. Failures: ``TranslationError`` (the request cannot be
expressed for the provider) and ``StreamError`` (the upstream stream failed or was cut).
"""

from modelroute.sidecar.translate.anthropic import (
    AnthropicStreamToChat,
    anthropic_to_chat_response,
    chat_to_anthropic_request,
)
from modelroute.sidecar.translate.anthropic_inbound import (
    ChatStreamToAnthropic,
    anthropic_error,
    anthropic_error_from_openai,
    anthropic_sse,
    anthropic_to_chat_request,
    chat_to_anthropic_response,
)
from modelroute.sidecar.translate.chat import wants_usage
from modelroute.sidecar.translate.errors import StreamError, TranslationError
from modelroute.sidecar.translate.gemini import (
    GeminiStreamToChat,
    chat_to_gemini_request,
    gemini_to_chat_response,
)
from modelroute.sidecar.translate.gemini_inbound import (
    ChatStreamToGemini,
    chat_to_gemini_response,
    gemini_error,
    gemini_error_from_openai,
    gemini_sse,
    gemini_to_chat_request,
)
from modelroute.sidecar.translate.openai import (
    OpenAIStreamToChat,
    chat_response,
    chat_to_openai_request,
    stamp_route,
)
from modelroute.sidecar.translate.params import apply_params, effective_params

__all__ = [
    "AnthropicStreamToChat",
    "ChatStreamToAnthropic",
    "ChatStreamToGemini",
    "GeminiStreamToChat",
    "OpenAIStreamToChat",
    "StreamError",
    "TranslationError",
    "anthropic_error",
    "anthropic_error_from_openai",
    "anthropic_sse",
    "anthropic_to_chat_request",
    "anthropic_to_chat_response",
    "apply_params",
    "chat_response",
    "chat_to_anthropic_request",
    "chat_to_anthropic_response",
    "chat_to_gemini_request",
    "chat_to_gemini_response",
    "chat_to_openai_request",
    "effective_params",
    "gemini_error",
    "gemini_error_from_openai",
    "gemini_sse",
    "gemini_to_chat_request",
    "gemini_to_chat_response",
    "stamp_route",
    "wants_usage",
]
