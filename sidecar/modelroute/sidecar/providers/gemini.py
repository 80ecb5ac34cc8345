"""Adapter for Gemini ``generateContent``: the ``google-genai`` SDK builds, the transport sends.

One google-genai API client per target (the ``BaseApiClient`` a ``genai.Client`` makes) builds each
request as ``models.generate_content`` would: the SDK converts the translator's kwargs to the REST body
(``_GenerateContentParameters_to_mldev``, which validates the contents into its types; a
refusal is the app's request's fault, 400) and builds the URL and headers (``x-goog-api-key``, its client headers) with ``_build_request``. The
body goes out on the target's pool (``transport.Transport``; the SDK's own retry and
send path is not involved) and the raw JSON answer, camelCase, is read by
``translate.gemini``, which accepts the wire spelling. Streams use
``streamGenerateContent?alt=sse``; an ``error`` event mid-stream becomes an
``UpstreamError`` of its kind. Embeddings are built by the SDK as its ``models.embed_content``
would (``batchEmbedContents``). A rotated key replaces the client's key header in place.
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx2
import pydantic

from modelroute.api.v1alpha1.spec import Params, Target
from modelroute.sidecar.errors import UpstreamError
from modelroute.sidecar.providers.base import KeyFn, current_key
from modelroute.sidecar.providers.build_send import SdkBuiltAdapter, StreamTranslator, dumps
from modelroute.sidecar.providers.errors import bad_response, client_error, scrub
from modelroute.sidecar.providers.leandefs import lean_definitions, string_annotations
from modelroute.sidecar.providers.leanimport import lean_package
from modelroute.sidecar.providers.transport import Prepared, Unsent, api_headers, tls_context
from modelroute.sidecar.translate.chat import wants_usage
from modelroute.sidecar.translate.embeddings import gemini_to_embeddings
from modelroute.sidecar.translate.gemini import (
    GeminiStreamToChat,
    chat_to_gemini_request,
    gemini_to_chat_response,
)

# google-genai without its package ``__init__`` (which imports ``client`` and with it every API
# module: batches, caches, files, live, tunings...; leanimport says why), its ``types`` running
# only the statements that define what is used (leandefs), and the modules whose signatures name
# hundreds of types compiled with their annotations unevaluated; set up before any is imported
# (leandefs' finder after leanimport's: it goes first).
lean_package("google.genai")
lean_definitions("google.genai.types")
string_annotations(*(f"google.genai.{m}" for m in ("models", "_transformers", "_extra_utils", "_mcp_utils", "pagers")))

from google.genai import _api_client, _base_url, _common  # noqa: E402
from google.genai import _transformers as genai_transformers  # noqa: E402
from google.genai import models as genai_models  # noqa: E402
from google.genai import types as genai_types  # noqa: E402

Json = dict[str, Any]

PROVIDER = "gemini"


def _chat_id() -> str:
    return "chatcmpl-" + os.urandom(12).hex()


_clients: tuple[httpx2.Client, httpx2.AsyncClient] | None = None


def _builder_clients() -> tuple[httpx2.Client, httpx2.AsyncClient]:
    """One pair of httpx2 clients for every google-genai API client: they build requests, never send them.

    Given these, google-genai makes no clients, SSL contexts or aiohttp settings of its own
    (~2.5 MB per target otherwise); on the ``Unsent`` transport they have no pool either.
    """
    global _clients
    if _clients is None:
        _clients = (httpx2.Client(verify=tls_context(), transport=Unsent()),
                    httpx2.AsyncClient(verify=tls_context(), transport=Unsent()))
    return _clients


class _Builder:
    """The google-genai API client that builds one target's requests, shared by an adapter and its views."""

    def __init__(self, target: Target, key: KeyFn | None) -> None:
        self._key = key
        self.api_key = current_key(key)
        sync, aio = _builder_clients()
        http_options = genai_types.HttpOptions(
            base_url=target.base_url, retry_options=genai_types.HttpRetryOptions(attempts=1),
            httpx_client=sync, httpx_async_client=aio, async_client_args={"ssl": tls_context()},
        )
        # What ``genai.Client(api_key=..., http_options=...)`` makes for the Gemini API (not Vertex):
        # its ``BaseApiClient``, the base URL resolved as the Client resolves it.
        http_options.base_url = _base_url.get_base_url(False, http_options)
        self.client = _api_client.BaseApiClient(api_key=self.api_key, http_options=http_options)

    def _rotate(self) -> None:
        key = current_key(self._key)
        if key == self.api_key:
            return
        self.api_key = key
        api = self.client
        headers = api._http_options.headers
        if headers is not None:
            headers["x-goog-api-key"] = key
        api.api_key = key

    def build(self, kwargs: Json, stream: bool) -> tuple[Prepared, bytes]:
        """URL, headers and body for ``generate_content(**kwargs)`` (or its stream), built by the SDK."""
        self._rotate()
        api = self.client
        # The SDK's converter reads dicts as well as its pydantic types; given the dict it skips
        # validating into GenerateContentConfig and friends (same body: the translator's golden
        # requests convert identically either way, tests/unit/translate/test_sdk_wire.py).
        request = _to_mldev(api, kwargs)
        path = "{model}:streamGenerateContent?alt=sse" if stream else "{model}:generateContent"
        path = path.format_map(request.get("_url") or {})
        request.pop("config", None)
        return self._prepared(api, path, request)

    def build_embed(self, model: str, texts: list[str], dimensions: int | None) -> tuple[Prepared, bytes]:
        """URL, headers and body for ``embed_content`` (``batchEmbedContents``), built by the SDK."""
        self._rotate()
        api = self.client
        config = genai_types.EmbedContentConfig(output_dimensionality=dimensions) if dimensions is not None else None
        params = genai_types._EmbedContentParametersPrivate(model=model, contents=texts, config=config)
        request = genai_models._EmbedContentParametersPrivate_to_mldev(api, params, None, params)
        path = "{model}:batchEmbedContents".format_map(request.get("_url") or {})
        request.pop("config", None)
        return self._prepared(api, path, request)

    def _prepared(self, api: Any, path: str, request: Json) -> tuple[Prepared, bytes]:
        request = _common.encode_unserializable_types(_common.convert_to_dict(request))
        http = api._build_request("post", path, request, None)
        prepared = Prepared(http.url, api_headers(http.headers.items()), (self.api_key,) if self.api_key else ())
        return prepared, http.data if isinstance(http.data, bytes) else dumps(dict(http.data))

    async def aclose(self) -> None:
        await self.client.aclose()
        self.client.close()


def _to_mldev(api: Any, kwargs: Json) -> Json:
    """``_GenerateContentParameters_to_mldev(api, kwargs, None, kwargs)``, the same body at a quarter of the CPU.

    The SDK's ``t_contents`` validates each content dict into its ``Content`` model and the
    converter then reads that model, where every one of a part's ~30 field lookups iterates the
    model's fields (pydantic models have no ``__contains__``): ~0.4 ms per request here. This
    validates each content into ``Content`` just the same (the same refusals) and gives the
    converter that model's dump, a dict it reads directly; ``model``, ``config`` and anything
    other than a list of content dicts take the SDK's own path. ``tests/unit/translate/test_sdk_wire.py``
    compares the body with what ``generate_content`` sends.
    """
    contents = kwargs.get("contents")
    if (kwargs.get("model") is None or not isinstance(contents, list) or not contents
            or not all(isinstance(c, dict) and "parts" in c for c in contents)):
        return genai_models._GenerateContentParameters_to_mldev(api, kwargs, None, kwargs)  # type: ignore[no-any-return]
    out: Json = {}
    _common.set_value_by_path(out, ["_url", "model"], genai_transformers.t_model(api, kwargs["model"]))
    _common.set_value_by_path(out, ["contents"], [
        genai_models._Content_to_mldev(genai_types.Content.model_validate(c).model_dump(exclude_none=True), out, kwargs)
        for c in contents])
    config = kwargs.get("config")
    if config is not None:
        _common.set_value_by_path(out, ["generationConfig"],
                                  genai_models._GenerateContentConfig_to_mldev(api, config, out, kwargs))
    return out


class GeminiAdapter(SdkBuiltAdapter):
    """One Gemini target: one google-genai API client (``_Builder``) and pool."""

    def __init__(self, target: Target, key: KeyFn | None, *, params: Params | None = None, system: str | None = None) -> None:
        super().__init__(target, params=params, system=system)
        self._builder = _Builder(target, key)

    @property
    def sdk(self) -> Any:
        """The SDK client that builds this target's requests."""
        return self._builder.client

    async def build(self, request: Json, stream: bool) -> tuple[Prepared, bytes]:
        kwargs = chat_to_gemini_request(request, model=self.target.model, params=self._params, system=self._system)
        return self._builder.build(kwargs, stream)

    def answer(self, data: Json) -> Json:
        return gemini_to_chat_response(data, created=int(time.time()), model=self.target.model)

    def stream_translator(self, request: Json) -> StreamTranslator:
        return GeminiStreamToChat(
            model=self.target.model, id=_chat_id(), created=int(time.time()), include_usage=wants_usage(request)
        )

    async def build_embed(self, request: Json) -> tuple[Prepared, bytes]:
        return self._builder.build_embed(self.target.model, request["input"],
                                         request.get("dimensions", self.target.dimensions))

    def embed_answer(self, data: Json, request: Json) -> Json:
        try:
            return gemini_to_embeddings(data, model=self.target.model, inputs=request["input"])
        except ValueError as e:
            raise bad_response(PROVIDER, str(e)) from None

    def build_failure(self, exc: Exception) -> UpstreamError:
        if isinstance(exc, pydantic.ValidationError):  # google-genai refused what the app's request became
            errors = exc.errors()
            where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
            what = errors[0]["msg"] if errors else str(exc)
            return client_error(400, scrub(f"gemini: the request cannot be expressed for google-genai: {where}: {what}"))
        return super().build_failure(exc)

    async def close_sdk(self) -> None:
        await self._builder.aclose()


