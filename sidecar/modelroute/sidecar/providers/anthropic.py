"""Adapter for Anthropic Messages, through the ``anthropic`` SDK.

Same shape as the OpenAI adapter (both SDKs are Stainless-generated): an ``AsyncAnthropic``
client per target with ``max_retries=0``, the SDK's aiohttp transport, SDK tracing off (the
sidecar traces requests itself), and ``client.request(httpx2.Response, options)`` (raw response)
so the answer is parsed once into a dict and translated by ``translate.anthropic``. The
request goes out like the OpenAI adapter's: prebuilt options copied per call, the body as
``content`` bytes, a prebuilt absolute URL, ``httpclient.LeanRequests`` mixed into the SDK's
aiohttp client.
Streams are read as raw SSE and fed to ``AnthropicStreamToChat``; an ``error`` event
(``overloaded_error`` mid-stream) becomes an ``UpstreamError`` of the matching kind.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import AsyncGenerator
from typing import Any

import anthropic
import httpx2
from anthropic._models import FinalRequestOptions

from modelroute.api.v1alpha1.spec import Params, Target
from modelroute.sidecar.errors import UpstreamError
from modelroute.sidecar.output.native import anthropic_native_schema
from modelroute.sidecar.providers.base import KeyFn
from modelroute.sidecar.providers.errors import bad_response
from modelroute.sidecar.providers.httpclient import LeanRequests, endpoint
from modelroute.sidecar.providers.stainless import RAW_STREAM, dumps, json_events, loads_object, map_exception
from modelroute.sidecar.translate.anthropic import (
    AnthropicStreamToChat,
    anthropic_to_chat_response,
    chat_to_anthropic_request,
)
from modelroute.sidecar.translate.openai import wants_usage

Json = dict[str, Any]

PATH = "/v1/messages"


class _HttpClient(LeanRequests, anthropic.DefaultAioHttpClient):
    """The SDK's aiohttp-backed httpx2 client with lean request building."""


def _chat_id() -> str:
    return "chatcmpl-" + os.urandom(12).hex()


class AnthropicAdapter:
    """One Anthropic target: one ``AsyncAnthropic`` client and pool."""

    def __init__(self, target: Target, key: KeyFn | None, *, params: Params | None = None, system: str | None = None) -> None:
        self.target = target
        self._key = key
        self._params = params
        self._system = system
        self._owner = True  # False on a ``bound`` view: the client is closed by the adapter it came from
        kwargs: Json = {}
        if target.base_url:
            kwargs["base_url"] = target.base_url
        self._client = anthropic.AsyncAnthropic(
            api_key=self._current_key(),
            max_retries=0,
            http_client=_HttpClient(),
            open_telemetry=False,
            **kwargs,
        )
        self._url = endpoint(self._client.base_url, PATH)
        self._options = {  # built once, copied per request with its body and timeout
            False: FinalRequestOptions.construct(method="post", url=self._url),
            True: FinalRequestOptions.construct(method="post", url=self._url, headers=RAW_STREAM),
        }

    def _current_key(self) -> str:
        return (self._key() if self._key is not None else None) or ""

    def _secrets(self) -> tuple[str | None, ...]:
        return (self._client.api_key,)

    def _prepare(self, request: Json, timeout: float, stream: bool) -> FinalRequestOptions:
        key = self._current_key()
        if key != self._client.api_key:
            self._client.api_key = key
        body = chat_to_anthropic_request(request, model=self.target.model, params=self._params, system=self._system,
                                         native_json_schema=anthropic_native_schema(self.target.model))
        if stream:
            body["stream"] = True
        else:
            body.pop("stream", None)
        return self._options[stream].model_copy(update={"content": dumps(body), "timeout": timeout})

    async def complete(self, request: Json, *, timeout: float) -> Json:  # noqa: ASYNC109
        try:
            response = await self._client.request(httpx2.Response, self._prepare(request, timeout, stream=False))
            message = loads_object(response.content, "anthropic")
            if message.get("type") == "error":
                raise map_exception(_status_error(response, message), anthropic, "anthropic", self._secrets())
            if not isinstance(message.get("content"), list):
                raise bad_response("anthropic", "no content in the answer")
            return anthropic_to_chat_response(message, created=int(time.time()))
        except UpstreamError:
            raise
        except Exception as exc:
            raise map_exception(exc, anthropic, "anthropic", self._secrets()) from None

    async def stream(self, request: Json, *, timeout: float) -> AsyncGenerator[Json, None]:  # noqa: ASYNC109
        response: httpx2.Response | None = None
        try:
            response = await self._client.request(httpx2.Response, self._prepare(request, timeout, stream=True))
            tr = AnthropicStreamToChat(
                model=self.target.model, id=_chat_id(), created=int(time.time()), include_usage=wants_usage(request)
            )
            async for event in json_events(response):
                for chunk in tr.feed(event):
                    yield chunk
            for chunk in tr.finish():
                yield chunk
        except UpstreamError:
            raise
        except Exception as exc:
            raise map_exception(exc, anthropic, "anthropic", self._secrets()) from None
        finally:
            if response is not None:
                await response.aclose()

    def bound(self, params: Params | None, system: str | None) -> AnthropicAdapter:
        """A view with other params and system prompt sharing this client, pool and prebuilt options."""
        view = copy.copy(self)
        view._params, view._system, view._owner = params, system, False
        return view

    async def aclose(self) -> None:
        if self._owner:
            await self._client.close()


def _status_error(response: httpx2.Response, body: Json) -> Exception:
    """A 200 carrying Anthropic's error envelope: treat it like the status its type implies."""
    etype = (body.get("error") or {}).get("type") if isinstance(body.get("error"), dict) else None
    status = {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500}.get(str(etype), 400)
    fake = httpx2.Response(status, headers=response.headers, json=body, request=response.request)
    return anthropic.APIStatusError("error envelope in a 200", response=fake, body=body)
