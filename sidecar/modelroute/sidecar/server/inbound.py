"""The app-facing listener: the OpenAI Chat Completions API on loopback (and the native APIs).

Apps point the OpenAI SDK at ``http://127.0.0.1:8787/v1``; ``model`` is a route name. The
handler validates just enough to route (JSON object, ``model``, ``messages``), pins the
config the request starts on (a runtime lease), and hands the body to the router unchanged.
``serve`` is shared with the Anthropic and Gemini inbound APIs (``native.py``); a ``Wire``
renders the answer in the app's own protocol.

Responses keep the provider's ``model`` id (the app sees which model answered; the route is
in ``x-modelroute-route``, the revision that answered in ``x-modelroute-revision`` and, while
a rollout runs, ``x-modelroute-variant`` says stable or canary: see ``rollout.py``). Streams are SSE ``data: {chunk}`` lines ending in ``data: [DONE]``;
a failure after the first chunk ends the stream with ``data: {"error": {...}}`` and no
``[DONE]``, which the OpenAI SDK raises as ``openai.APIError``: never a clean-looking end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import hdrs, web

from modelroute.sidecar.errors import DeadlineExceeded, RouteFailed, UpstreamError, failure_class
from modelroute.sidecar.routing import router
from modelroute.sidecar.routing.runtime import RouteRuntime
from modelroute.sidecar.routing.stream import StreamingCompletion
from modelroute.sidecar.server.body import BodyError, decode_content, parse_json
from modelroute.sidecar.server.dropped import note_dropped
from modelroute.sidecar.server.envelope import error_body, error_middleware, error_response, failure_body
from modelroute.sidecar.server.rollout import RolloutRequest, chat_rollout
from modelroute.sidecar.server.sseout import SseResponse
from modelroute.sidecar.server.state import STATE, SidecarState
from modelroute.sidecar.server.wire import ANTHROPIC, GEMINI, JSON, OPENAI, Wire
from modelroute.sidecar.translate import cachemarks
from modelroute.sidecar.translate.errors import StreamError, TranslationError

log = logging.getLogger(__name__)

H_ROUTE = "x-modelroute-route"
H_TARGET = "x-modelroute-target"
H_VERSION = "x-modelroute-config-version"
H_PROMPT = "x-modelroute-prompt-version"
H_REVISION = "x-modelroute-revision"
H_VARIANT = "x-modelroute-variant"

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024

_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def reject(state: SidecarState, wire: Wire, status: int, message: str, type_: str = "invalid_request_error", *,
           param: str | None = None, code: str | None = None) -> web.Response:
    """An error before routing (counted in stats as a rejection)."""
    state.stats.on_rejected(status)
    return wire.error(status, error_body(message, type_, param=param, code=code))


async def read_json(request: web.Request, state: SidecarState, wire: Wire) -> Any | web.Response:
    """The request body as JSON, or the error response (413, 415, 400) to send instead (see ``body``)."""
    limit = state.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return reject(state, wire, 413, f"request body is {request.content_length} bytes; the limit is {limit} bytes",
                      code="request_too_large")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return reject(state, wire, 413, f"request body exceeds the limit of {limit} bytes", code="request_too_large")
    except web.RequestPayloadError as e:  # e.g. broken chunked framing
        return reject(state, wire, 400, f"the request body could not be read: {str(e).strip()[:200]}")
    try:
        raw = decode_content(raw, request.headers.get(hdrs.CONTENT_ENCODING), limit)
        if not raw:
            return reject(state, wire, 400, "the request body is empty; expected a JSON object")
        return parse_json(raw)
    except BodyError as e:
        code = "request_too_large" if e.status == 413 else None
        return reject(state, wire, e.status, e.message, param=e.param, code=code)


T = TypeVar("T")


async def read_translated(request: web.Request, state: SidecarState, wire: Wire, translate: Callable[[Any], T]) -> T | web.Response:
    """The body read (``read_json``) and translated, or the error response to send instead (a
    ``TranslationError`` is a 400 naming the field; other exceptions of ``translate`` propagate)."""
    body = await read_json(request, state, wire)
    if isinstance(body, web.Response):
        return body
    try:
        return translate(body)
    except TranslationError as e:
        return reject(state, wire, 400, str(e), param=e.param)


def _check_chat(body: Any) -> tuple[str, str | None] | None:
    """(message, param) when an OpenAI chat body cannot be routed; None when it can."""
    if not isinstance(body, dict):
        return "the request body must be a JSON object", None
    model = body.get("model")
    if model is None:
        return "missing required field 'model' (the route name)", "model"
    if not isinstance(model, str) or not model:
        return "field 'model' must be a non-empty string (the route name)", "model"
    messages = body.get("messages")
    if messages is None:
        return "missing required field 'messages'", "messages"
    if not isinstance(messages, list) or not messages:
        return "field 'messages' must be a non-empty array", "messages"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            return f"messages[{i}] must be an object with a string 'role'", f"messages[{i}].role"
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        return "field 'stream' must be a boolean", "stream"
    return None


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state: SidecarState = request.app[STATE]
    body = await read_json(request, state, OPENAI)
    if isinstance(body, web.Response):
        return body
    problem = _check_chat(body)
    if problem is not None:
        return reject(state, OPENAI, 400, problem[0], param=problem[1])
    return await serve(request, state, body, OPENAI)


async def serve(request: web.Request, state: SidecarState, body: dict[str, Any], wire: Wire) -> web.StreamResponse:
    """Route a canonical chat request (``model`` = route) and answer in ``wire``'s protocol.

    ``x-modelroute-prompt-cache`` (any inbound API) adds prompt-cache breakpoints for Anthropic
    targets (``translate.cachemarks``; a bad value is a 400 naming the header)."""
    asked = request.headers.get(cachemarks.HEADER)
    if asked is not None:
        try:
            body = cachemarks.mark(body, *cachemarks.parse_header(asked))
        except TranslationError as e:
            return reject(state, wire, 400, str(e), param=e.param)
    tel = state.telemetry
    if tel is None:
        return await _serve(request, state, body, wire)
    with tel.server_span(request) as span:  # continues the app's traceparent
        resp = await _serve(request, state, body, wire)
        span.finish(resp)
        runtime = state.holder.current
        route = runtime.routes.get(body["model"]) if runtime is not None else None
        if route is not None and route.spec.telemetry is not None and route.spec.telemetry.record_content:
            span.record_content(body, resp)  # the route opted in; never otherwise
        return resp


async def _serve(request: web.Request, state: SidecarState, body: dict[str, Any], wire: Wire) -> web.StreamResponse:
    model: str = body["model"]
    if state.holder.current is None:
        return reject(state, wire, 503, "the sidecar has no config yet (waiting for --config, the route bundle or a push)",
                      "service_unavailable_error", code="not_ready")
    with state.holder.lease() as runtime:  # this request finishes on this config, whatever swaps meanwhile
        route = runtime.routes.get(model)
        if route is None:
            known = ", ".join(sorted(runtime.routes)) or "(none)"
            return reject(state, wire, 404, f"route {model!r} does not exist; known routes: {known}",
                          param="model", code="model_not_found")
        rollout = None
        if route.canary is not None:  # a rollout is on: pick the variant, maybe mirror, count evidence
            rollout = chat_rollout(state, runtime, route, route.canary, request.headers, body)
            route = rollout.route
        headers = {H_ROUTE: model, H_VERSION: runtime.version, H_REVISION: route.revision, H_VARIANT: route.variant}
        if route.prompt_version is not None:
            headers[H_PROMPT] = route.prompt_version
        if rollout is None:
            return await _answer(request, route, body, headers, wire, None)
        try:
            return await _answer(request, route, body, headers, wire, rollout)
        finally:
            rollout.close()


async def _answer(request: web.Request, route: RouteRuntime, body: dict[str, Any], headers: dict[str, str], wire: Wire,
                  tap: RolloutRequest | None) -> web.StreamResponse:
    if body.get("stream"):
        return await _stream(request, route, body, headers, wire, tap)
    try:
        done = await router.complete(route, body)
    except (RouteFailed, DeadlineExceeded) as e:
        if tap is not None:
            tap.failed(failure_class(e))
        return failure_response(route.name, e, headers, wire)
    if tap is not None:
        tap.answered(done.target, done.response)
    headers[H_TARGET] = done.target
    note_dropped(request, route, done.target, body, headers)
    return web.Response(body=wire.response(done.response), content_type=JSON, headers=headers)


def failure_response(route: str, exc: RouteFailed | DeadlineExceeded, headers: dict[str, str], wire: Wire) -> web.Response:
    status, payload = failure_body(route, exc)
    resp = wire.error(status, payload)
    if exc.attempts:
        headers[H_TARGET] = exc.attempts[-1].target
    resp.headers.update(headers)
    return resp


async def _stream(request: web.Request, route: RouteRuntime, body: dict[str, Any], headers: dict[str, str],
                  wire: Wire, tap: RolloutRequest | None) -> web.StreamResponse:
    try:
        sc = await router.open_stream(route, body)
    except (RouteFailed, DeadlineExceeded) as e:
        if tap is not None:
            tap.failed(failure_class(e))
        return failure_response(body["model"], e, headers, wire)
    headers[H_TARGET] = sc.target
    note_dropped(request, route, sc.target, body, headers)
    resp = SseResponse(status=200, headers={**headers, **_SSE_HEADERS})
    try:
        await _relay(request, resp, sc, wire, tap, body["model"])
    finally:
        await sc.aclose()  # idempotent; drops the upstream connection if the app went away
    return resp


async def _relay(request: web.Request, resp: SseResponse, sc: StreamingCompletion, wire: Wire,
                 tap: RolloutRequest | None, route: str) -> None:
    """Write ``sc`` to the app in ``wire``'s protocol, ending in-protocol on a failure mid-way."""
    enc = wire.stream(sc.first)
    feed_all = enc.feed_all
    try:
        await resp.prepare(request)
        try:
            # Chunks that came together (the head held back until content, the events of one
            # upstream read) go out in one send: the first with the headers (``SseResponse``).
            batches = sc.batches()
            async for batch in batches:
                if tap is not None:
                    for chunk in batch:
                        tap.feed(chunk)
                data = feed_all(batch)
                if data:
                    await resp.write(data)
                    if resp.direct():
                        # The rest in a task of its own (``_pump``): a read then resumes (and
                        # suspends) its frames only, not also the ~9 of aiohttp's request handling,
                        # the middleware and ``serve`` above this one. Its failures come out of this
                        # await; cancelling this handler cancels it (awaiting a task passes it on).
                        await asyncio.get_running_loop().create_task(_pump(batches, resp, feed_all, tap))
                        break
            end = enc.finish()
            if tap is not None:
                tap.streamed(sc.target, sc.usage)
        except (UpstreamError, StreamError) as e:
            # Past the first byte there is no fallback: tell the app, in its protocol, that the
            # answer is incomplete. No clean end follows, so no client mistakes this for one.
            kind = e.kind.value if isinstance(e, UpstreamError) else "bad_response"
            if tap is not None:
                tap.failed(kind)
            log.warning("stream on route %s failed after the first chunk from %s: %s", route, sc.target, e)
            end = enc.error(f"the stream from target {sc.target!r} failed mid-way: {e.message}", kind)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            # Headers are sent: the catch-all middleware cannot answer any more, so end in-protocol.
            log.exception("unexpected error while streaming route %s", route)
            if tap is not None:
                tap.failed("internal_error")
            end = enc.error("internal error in the modelroute sidecar (logged)", None)
        await resp.write(end)
        await resp.write_eof()
    except ConnectionResetError:
        log.debug("app closed the stream on route %s early", route)  # the handler's finally stops the upstream


async def _pump(batches: AsyncIterator[list[dict[str, Any]]], resp: SseResponse,
                feed_all: Callable[[list[dict[str, Any]]], bytes], tap: RolloutRequest | None) -> None:
    """``_relay``'s loop after the first write: each batch in one ``send`` (``sseout``), waiting
    for the app whenever its transport has paused."""
    async for batch in batches:
        if tap is not None:
            for chunk in batch:
                tap.feed(chunk)
        data = feed_all(batch)
        if data and resp.send(data):  # the app reads slower than the upstream sends: wait for it
            await resp.drained()


def _model_entry(name: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": "modelroute"}


async def list_models(request: web.Request) -> web.Response:
    state: SidecarState = request.app[STATE]
    runtime = state.current()
    names = sorted(runtime.routes) if runtime is not None else []
    created = int(state.loaded_at)
    return web.json_response({"object": "list", "data": [_model_entry(n, created) for n in names]})


async def get_model(request: web.Request) -> web.Response:
    state: SidecarState = request.app[STATE]
    name = request.match_info["route"]
    runtime = state.current()
    if runtime is None or name not in runtime.routes:
        known = ", ".join(sorted(runtime.routes)) if runtime is not None and runtime.routes else "(none)"
        return error_response(404, f"route {name!r} does not exist; known routes: {known}", "invalid_request_error",
                              param="model", code="model_not_found")
    return web.json_response(_model_entry(name, int(state.loaded_at)))


_STATUS_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
                 415: "invalid_request_error"}


def wire_of(request: web.Request) -> Wire:
    """The API a request came in on, from its path alone (so even a 404 or a 500 answers in it)."""
    path = request.path
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return ANTHROPIC
    if path.startswith("/v1beta/") or (path.startswith("/v1/models/") and (request.method != "GET" or ":" in path)):
        return GEMINI
    return OPENAI


def _http_error(request: web.Request, e: web.HTTPException) -> web.StreamResponse:
    msg = f"{request.method} {request.path}: {e.reason}"
    if e.status == 404:
        msg = (f"no such endpoint {request.method} {request.path} (the sidecar serves /v1/chat/completions, "
               "/v1/models, /v1/responses, /v1/classify, /v1/extract, /v1/messages and /v1beta/models/{route}:generateContent)")
    resp = wire_of(request).error(e.status, error_body(msg, _STATUS_TYPES.get(e.status, "api_error")))
    if hdrs.ALLOW in e.headers:
        resp.headers[hdrs.ALLOW] = e.headers[hdrs.ALLOW]
    return resp


# Every error leaves in the envelope of the request's API; an unexpected exception is logged, never shown.
api_errors = error_middleware("inbound", _http_error, lambda request: wire_of(request).error(
    500, error_body("internal error in the modelroute sidecar (logged)", "server_error", code="internal_error")))


def build_app(state: SidecarState) -> web.Application:
    """The inbound app. The body limit is enforced by aiohttp's reader and checked up front."""
    app = web.Application(client_max_size=state.max_body_bytes, middlewares=[api_errors])
    app[STATE] = state
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{route:.+}", get_model)
    return app
