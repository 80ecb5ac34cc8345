"""Adapter for OpenAI and OpenAI-compatible endpoints, through the ``openai`` SDK.

The pivot format is OpenAI's, so this is the lean path: the translator only sets model,
params and system prompt; the SDK client (``max_retries=0``, aiohttp transport) sends it
with ``client.request(httpx2.Response, options)`` and the body is parsed once with
``json.loads``. Measured against a stub provider in another process (2 cores, machine
busy with other jobs; client CPU per call, which is steadier than wall time here):
``chat.completions.create`` + ``model_dump``: 2.3-2.7 ms; ``with_raw_response``: 2.0 ms;
``client.post`` raw with httpx2's own transport: 2.1 ms (streams 3.6-3.8 ms);
``client.post`` raw with the aiohttp transport: 1.5-1.6 ms (streams 1.9 ms); a bare
aiohttp request: 0.4 ms. Hence aiohttp transport + raw responses. On top of that
(bench/README.md has the figures): ``client.request`` (what ``client.post`` calls) with
prebuilt request options copied per call, the body as ``content`` bytes from one reused
encoder, a prebuilt absolute URL, and ``httpclient.LeanRequests`` (one URL parse per
endpoint, no generic merging).

The API key is read from the key callable on every request and swapped into the client
when it changed (a file rotation), keeping the connection pool.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncGenerator
from typing import Any

import httpx2
import openai
from openai._models import FinalRequestOptions

from modelroute.api.v1alpha1.spec import Params, Provider, Target
from modelroute.sidecar.errors import UpstreamError
from modelroute.sidecar.providers.base import KeyFn
from modelroute.sidecar.providers.errors import bad_response
from modelroute.sidecar.providers.httpclient import LeanRequests, endpoint
from modelroute.sidecar.providers.stainless import RAW_STREAM, dumps, json_events, loads_object, map_exception
from modelroute.sidecar.translate.openai import (
    OpenAIStreamToChat,
    chat_response,
    chat_to_openai_request,
    wants_usage,
)

Json = dict[str, Any]

NO_KEY = "no-key"  # keyless openai-compatible servers: the SDK insists on some credential


class _HttpClient(LeanRequests, openai.DefaultAioHttpClient):
    """The SDK's aiohttp-backed httpx2 client (measurably faster than httpx2's own) with lean request building."""


def make_http_client() -> httpx2.AsyncClient:
    return _HttpClient()


class OpenAIAdapter:
    """One OpenAI(-compatible) target: one ``AsyncOpenAI`` client and pool."""

    def __init__(self, target: Target, key: KeyFn | None, *, params: Params | None = None, system: str | None = None) -> None:
        self.target = target
        self._key = key
        self._params = params
        self._system = system
        self._owner = True  # False on a ``bound`` view: the client is closed by the adapter it came from
        self._provider = target.provider.value
        # OpenAI proper wants max_completion_tokens; older compatible servers only know max_tokens.
        self._max_field = "max_completion_tokens" if target.provider is Provider.OPENAI else "max_tokens"
        kwargs: Json = {}
        if target.base_url:
            kwargs["base_url"] = target.base_url
        self._client = openai.AsyncOpenAI(
            api_key=self._current_key(), max_retries=0, http_client=make_http_client(), **kwargs
        )
        self._url = endpoint(self._client.base_url, "/chat/completions")
        # Built once; each request gets a shallow copy with its body and timeout (the SDK's
        # ``post`` would construct these with all their defaults on every call).
        self._options = {
            False: FinalRequestOptions.construct(method="post", url=self._url),
            True: FinalRequestOptions.construct(method="post", url=self._url, headers=RAW_STREAM),
        }

    def _current_key(self) -> str:
        return (self._key() if self._key is not None else None) or NO_KEY

    def _secrets(self) -> tuple[str | None, ...]:
        return (self._client.api_key,)

    def _body(self, request: Json, timeout: float, stream: bool) -> FinalRequestOptions:
        key = self._current_key()
        if key != self._client.api_key:
            self._client.api_key = key
        kwargs = chat_to_openai_request(
            request, model=self.target.model, params=self._params, system=self._system, max_tokens_field=self._max_field
        )
        extra = kwargs.pop("extra_body", None)
        if extra:
            kwargs.update(extra)
        if stream:
            kwargs["stream"] = True
        else:
            kwargs.pop("stream", None)
            kwargs.pop("stream_options", None)
        return self._options[stream].model_copy(update={"content": dumps(kwargs), "timeout": timeout})

    async def complete(self, request: Json, *, timeout: float) -> Json:  # noqa: ASYNC109
        try:
            response = await self._client.request(httpx2.Response, self._body(request, timeout, stream=False))
            data = loads_object(response.content, self._provider)
            if not isinstance(data.get("choices"), list):
                raise bad_response(self._provider, "no choices in the answer")
            return chat_response(data, model=self.target.model)
        except UpstreamError:
            raise
        except Exception as exc:
            raise map_exception(exc, openai, self._provider, self._secrets()) from None

    async def stream(self, request: Json, *, timeout: float) -> AsyncGenerator[Json, None]:  # noqa: ASYNC109
        response: httpx2.Response | None = None
        try:
            response = await self._client.request(httpx2.Response, self._body(request, timeout, stream=True))
            tr = OpenAIStreamToChat(model=self.target.model, include_usage=wants_usage(request))
            async for event in json_events(response):
                for chunk in tr.feed(event):
                    yield chunk
            for chunk in tr.finish():
                yield chunk
        except UpstreamError:
            raise
        except Exception as exc:
            raise map_exception(exc, openai, self._provider, self._secrets()) from None
        finally:
            if response is not None:
                await response.aclose()

    def bound(self, params: Params | None, system: str | None) -> OpenAIAdapter:
        """A view with other params and system prompt sharing this client, pool and prebuilt options."""
        view = copy.copy(self)
        view._params, view._system, view._owner = params, system, False
        return view

    async def aclose(self) -> None:
        if self._owner:
            await self._client.close()
