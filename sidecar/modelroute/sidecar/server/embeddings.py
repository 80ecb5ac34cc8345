"""Embeddings on the inbound listener: OpenAI ``POST /v1/embeddings`` and Gemini ``:embedContent``
/ ``:batchEmbedContents`` (``/v1beta/models/{route}:...``, also ``/v1/``).

Why a handler of its own: an embeddings request is not a chat request, so it skips the chat
pipeline (canary variants, cache, output contract) and runs on the route's stable targets
through ``router.embed`` (the same attempt loop: fallback, breakers, retries, deadline, stats).
The route must be an embedding route (its targets embed, at one dimension: checked when the
config loads). Errors are answered in the envelope of the API the request came in on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from modelroute.api.v1alpha1.embeddings import target_dimension
from modelroute.sidecar.errors import DeadlineExceeded, RouteFailed
from modelroute.sidecar.routing import router
from modelroute.sidecar.server.inbound import (
    H_REVISION,
    H_ROUTE,
    H_TARGET,
    H_VERSION,
    failure_response,
    read_translated,
    reject,
)
from modelroute.sidecar.server.state import STATE
from modelroute.sidecar.server.wire import GEMINI, JSON, OPENAI, Wire
from modelroute.sidecar.translate.embeddings import (
    embeddings_to_gemini,
    embeddings_to_openai,
    gemini_batch_to_request,
    gemini_embed_to_request,
    openai_to_embeddings_request,
)

Json = dict[str, Any]
Translate = Callable[[Any], tuple[Json, Callable[[Json], Json]]]


async def openai_embeddings(request: web.Request) -> web.StreamResponse:
    def translate(body: Any) -> tuple[Json, Callable[[Json], Json]]:
        canonical, fmt = openai_to_embeddings_request(body)
        return canonical, lambda answer: embeddings_to_openai(answer, fmt)

    return await _serve(request, OPENAI, translate)


async def gemini_embed(request: web.Request, route: str, batch: bool) -> web.StreamResponse:
    def translate(body: Any) -> tuple[Json, Callable[[Json], Json]]:
        canonical = gemini_batch_to_request(body, route=route) if batch else gemini_embed_to_request(body, route=route)
        return canonical, lambda answer: embeddings_to_gemini(answer, batch=batch)

    return await _serve(request, GEMINI, translate)


async def _serve(request: web.Request, wire: Wire, translate: Translate) -> web.StreamResponse:
    tel = request.app[STATE].telemetry
    if tel is None:
        return await _answer(request, wire, translate)
    with tel.server_span(request) as span:  # continues the app's traceparent; attempts are its children
        resp = await _answer(request, wire, translate)
        span.finish(resp)
        return resp


async def _answer(request: web.Request, wire: Wire, translate: Translate) -> web.StreamResponse:
    state = request.app[STATE]
    got = await read_translated(request, state, wire, translate)
    if isinstance(got, web.StreamResponse):
        return got
    canonical, render = got
    if state.holder.current is None:
        return reject(state, wire, 503, "the sidecar has no config yet (waiting for --config, the route bundle or a push)",
                      "service_unavailable_error", code="not_ready")
    name: str = canonical["model"]
    with state.holder.lease() as runtime:
        route = runtime.routes.get(name)
        if route is None:
            known = ", ".join(sorted(runtime.routes)) or "(none)"
            return reject(state, wire, 404, f"route {name!r} does not exist; known routes: {known}",
                          param="model", code="model_not_found")
        first = route.targets[0].target
        if target_dimension(first.provider, first.model, first.dimensions) is None:
            return reject(state, wire, 400, f"route {name!r} serves chat, not embeddings: its targets are not embedding "
                          "models (give it targets such as text-embedding-3-small or gemini-embedding-001)", param="model")
        headers = {H_ROUTE: name, H_VERSION: runtime.version, H_REVISION: route.revision}
        try:
            done = await router.embed(route, canonical)
        except (RouteFailed, DeadlineExceeded) as e:
            return failure_response(name, e, headers, wire)
        headers[H_TARGET] = done.target
        payload = json.dumps(render(done.response), separators=(",", ":")).encode()
        return web.Response(body=payload, content_type=JSON, headers=headers)
