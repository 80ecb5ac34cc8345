"""Adapter for OpenAI and OpenAI-compatible endpoints: the ``openai`` SDK builds, the transport sends.

Embeddings (``embed``) go to ``/embeddings`` with a second prepared request of the same client.
Targets with ``api: responses`` call the Responses API instead (``OpenAIResponsesAdapter``,
translators in ``translate.openai_responses``).

The pivot format is OpenAI's, so this is the lean path: the translator only sets model,
params and system prompt. The ``AsyncOpenAI`` client (``max_retries=0``: the router owns
retries) prepares the request once per key (``openai_anthropic.StainlessAdapter``); the body is
sent on the target's pool and parsed once with ``json.loads``.
"""

from __future__ import annotations

from typing import Any

from modelroute.api.v1alpha1.providers import spec_of
from modelroute.api.v1alpha1.spec import OpenAIApi, Params, Target
from modelroute.sidecar.providers.base import KeyFn
from modelroute.sidecar.providers.build_send import StreamTranslator, dumps, loads_object
from modelroute.sidecar.providers.errors import bad_response
from modelroute.sidecar.providers.leanimport import lean_package
from modelroute.sidecar.providers.openai_anthropic import StainlessAdapter, _Builder, builder_client
from modelroute.sidecar.providers.transport import Prepared
from modelroute.sidecar.translate.chat import RawChunk, wants_usage
from modelroute.sidecar.translate.embeddings import embeddings_to_openai_request, openai_to_embeddings
from modelroute.sidecar.translate.openai import (
    OpenAIStreamToChat,
    chat_response,
    chat_to_openai_request,
)
from modelroute.sidecar.translate.openai_responses import (
    ResponsesStreamToChat,
    chat_to_responses_request,
    responses_to_chat_response,
)

# The SDK without its package __init__s (and their type trees): leanimport says why.
openai = lean_package("openai")

Json = dict[str, Any]

NO_KEY = "no-key"  # keyless openai-compatible servers: the SDK insists on some credential


class OpenAIAdapter(StainlessAdapter):
    """One OpenAI(-compatible) target."""

    PATH = "/chat/completions"
    DEFAULT_KEY = NO_KEY

    def __init__(self, target: Target, key: KeyFn | None, *, params: Params | None = None, system: str | None = None) -> None:
        # OpenAI proper wants max_completion_tokens; older compatible servers only know max_tokens.
        self._max_field = spec_of(target.provider).max_tokens_field
        super().__init__(target, key, params=params, system=system)
        self._embed_builder: _Builder | None = None

    def sdk_client(self, key: str, base_url: str | None) -> Any:
        kwargs: Json = {"base_url": base_url} if base_url else {}
        return openai.AsyncOpenAI(api_key=key, max_retries=0, http_client=builder_client(), **kwargs)

    def body(self, request: Json, stream: bool) -> Json:
        kwargs = chat_to_openai_request(
            request, model=self.target.model, params=self._params, system=self._system, max_tokens_field=self._max_field,
            accepts=self._accepts,
        )
        extra = kwargs.pop("extra_body", None)
        if extra:
            kwargs.update(extra)
        if stream:
            kwargs["stream"] = True
        else:
            kwargs.pop("stream", None)
            kwargs.pop("stream_options", None)
        return kwargs

    def answer(self, data: Json) -> Json:
        if not isinstance(data.get("choices"), list):
            raise bad_response(self._provider, "no choices in the answer")
        return chat_response(data, model=self.target.model)

    def answer_body(self, raw: bytes) -> Json:
        """``answer``; an answer passed on unchanged keeps its text (``chat.RawChunk``), so the
        OpenAI wire relays it as it came instead of serializing the dict again."""
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            return super().answer_body(raw)
        if text.startswith("\ufeff"):  # a BOM: read as json.loads reads bytes, never relayed
            return super().answer_body(raw)
        parsed = loads_object(text, self._provider)
        intact = bool(parsed.get("model"))  # else chat_response sets it
        data = self.answer(parsed)
        return RawChunk(data, text) if intact and data is parsed else data  # Responses answers are new dicts

    def stream_translator(self, request: Json) -> StreamTranslator:
        return OpenAIStreamToChat(model=self.target.model, include_usage=wants_usage(request))

    async def build_embed(self, request: Json) -> tuple[Prepared, bytes]:
        if self._embed_builder is None:  # most targets never embed: built on first use
            self._embed_builder = self.builder_for("/embeddings")
        body = embeddings_to_openai_request(request, model=self.target.model, dimensions=self.target.dimensions)
        return await self._embed_builder.prepare(), dumps(body)

    def embed_answer(self, data: Json, request: Json) -> Json:
        try:
            return openai_to_embeddings(data, model=self.target.model, count=len(request["input"]))
        except ValueError as e:
            raise bad_response(self._provider, str(e)) from None


class OpenAIResponsesAdapter(OpenAIAdapter):
    """A target with ``api: responses``: the same client and pool, calls to ``/responses``."""

    PATH = "/responses"

    def body(self, request: Json, stream: bool) -> Json:
        kwargs = chat_to_responses_request(request, model=self.target.model, params=self._params, system=self._system,
                                           accepts=self._accepts)
        if stream:
            kwargs["stream"] = True
        return kwargs

    def answer(self, data: Json) -> Json:
        if not isinstance(data.get("output"), list):
            raise bad_response(self._provider, "no output in the answer")
        if data.get("status") == "failed":
            err = data.get("error") or {}
            raise bad_response(self._provider, f"the response failed: {err.get('message') if isinstance(err, dict) else err}")
        return responses_to_chat_response(data, model=self.target.model)

    def stream_translator(self, request: Json) -> StreamTranslator:
        return ResponsesStreamToChat(model=self.target.model, include_usage=wants_usage(request))


def build(target: Target, key: KeyFn | None, *, params: Params | None = None, system: str | None = None) -> OpenAIAdapter:
    """The registry's adapter entry for OpenAI wire targets: chat completions, or ``api: responses``."""
    cls = OpenAIResponsesAdapter if target.api is OpenAIApi.RESPONSES else OpenAIAdapter
    return cls(target, key, params=params, system=system)
