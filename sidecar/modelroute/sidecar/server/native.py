"""The OpenAI Responses, Anthropic Messages and Gemini generateContent APIs on the inbound listener.

Apps that use the ``anthropic`` SDK (``base_url=http://127.0.0.1:8787``), ``google-genai``
(``http_options={"base_url": "http://127.0.0.1:8787"}``) or the openai SDK's Responses API
(``client.responses``, the openai-agents default) reach the same routes without code
changes: the body is translated into the canonical chat request (pure translators in
``modelroute.sidecar.translate``), routed like any OpenAI request, and the answer, the errors
and the stream are written back in the app's protocol by its ``Wire``.

* ``POST /v1/responses`` (``model`` = route; ``stream: true`` for typed SSE events); nothing is
  stored, so ``GET``/``DELETE /v1/responses/{id}`` answer 404 saying so;
* ``POST /v1/messages`` (``model`` = route; ``stream: true`` for SSE events);
* ``POST /v1/models/{route}:generateContent`` and ``:streamGenerateContent?alt=sse``
  (also under ``/v1beta/``); ``:embedContent`` and ``:batchEmbedContents`` go to ``embeddings.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from modelroute.sidecar.server.embeddings import gemini_embed, openai_embeddings
from modelroute.sidecar.server.inbound import read_translated, reject, serve
from modelroute.sidecar.server.state import STATE, SidecarState
from modelroute.sidecar.server.wire import ANTHROPIC, GEMINI, OPENAI, ResponsesWire, Wire
from modelroute.sidecar.translate.anthropic_inbound import anthropic_to_chat_request
from modelroute.sidecar.translate.gemini_inbound import gemini_to_chat_request, route_of
from modelroute.sidecar.translate.responses_inbound import response_echo, responses_to_chat_request

log = logging.getLogger(__name__)

GEMINI_METHODS = {"generateContent": False, "streamGenerateContent": True}
GEMINI_EMBED = {"embedContent": False, "batchEmbedContents": True}  # method -> batch


Translate = Callable[[Any], tuple[dict[str, Any], Wire]]


async def _serve_native(request: web.Request, wire: Wire, what: str, translate: Translate) -> web.StreamResponse:
    """Read the body, translate it (the chat request and the wire that answers), route it: errors in ``wire``."""
    state = request.app[STATE]
    try:
        got = await read_translated(request, state, wire, translate)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as e:  # a shape the translator missed
        return _malformed(state, wire, what, e)
    if isinstance(got, web.StreamResponse):
        return got
    chat, answer = got
    return await serve(request, state, chat, answer)


async def anthropic_messages(request: web.Request) -> web.StreamResponse:
    return await _serve_native(request, ANTHROPIC, "an Anthropic Messages request",
                               lambda body: (anthropic_to_chat_request(body), ANTHROPIC))


async def create_response(request: web.Request) -> web.StreamResponse:
    return await _serve_native(request, OPENAI, "an OpenAI Responses request",
                               lambda body: (responses_to_chat_request(body), ResponsesWire(response_echo(body))))


async def stored_response(request: web.Request) -> web.Response:
    """``GET``/``DELETE /v1/responses/{id}[/...]``: nothing is ever stored, so there is nothing to find."""
    state = request.app[STATE]
    return reject(state, OPENAI, 404, f"response {request.match_info['id']!r} is not stored: modelroute keeps no responses "
                  "(every response has store: false); keep the output items and send them back as input",
                  param="response_id", code="response_not_found")


async def gemini_generate(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    model_path, _, method = request.match_info["tail"].rpartition(":")
    if method in GEMINI_EMBED and model_path:
        return await gemini_embed(request, route_of(model_path), GEMINI_EMBED[method])
    if method not in GEMINI_METHODS or not model_path:
        return reject(state, GEMINI, 404, f"unknown method {request.path!r}: expected "
                      "models/{route}:generateContent, :streamGenerateContent, :embedContent or :batchEmbedContents", code="not_found")
    stream = GEMINI_METHODS[method]
    if stream and request.query.get("alt") != "sse":
        return reject(state, GEMINI, 400, "streamGenerateContent is served as server-sent events only: add ?alt=sse")
    route = route_of(model_path)
    return await _serve_native(request, GEMINI, "a Gemini generateContent request",
                               lambda body: (gemini_to_chat_request(body, route=route, stream=stream), GEMINI))


def _malformed(state: SidecarState, wire: Wire, what: str, exc: Exception) -> web.Response:
    """The translators check every field they read (``translate.shape``); this is the net under them."""
    log.warning("inbound translator missed a malformed body (%s: %s)", type(exc).__name__, exc)
    return reject(state, wire, 400, f"the request body is not {what}: {type(exc).__name__}: {exc}"[:500])


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/embeddings", openai_embeddings)
    app.router.add_post("/v1/responses", create_response)
    for method in ("GET", "DELETE"):
        app.router.add_route(method, "/v1/responses/{id}{tail:(/.*)?}", stored_response)
    app.router.add_post("/v1/messages", anthropic_messages)
    for version in ("v1", "v1beta"):
        app.router.add_post(f"/{version}/models/{{tail:.+}}", gemini_generate)
