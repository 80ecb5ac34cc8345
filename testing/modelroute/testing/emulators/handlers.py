"""The provider endpoints: parse, record, apply faults, answer (JSON or SSE).

One generic flow serves all three providers; the dialect supplies the wire format.
The hot path (no fault, no script) does one JSON parse, one render and one write.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from .answers import default_reply, finalize
from .dialects import DIALECTS, OPENAI_RESPONSES, BadRequest, Dialect
from .dialects.base import dumps
from .embeddings import embed_response, gemini_inputs, openai_inputs
from .faults import Decision, Fault
from .promptcache import OPENAI_STEP
from .reqlog import RecordedRequest, key_fingerprint
from .state import EmulatorState
from .windows import too_long

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_JSON = "application/json"
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
_LINGER_RST = struct.pack("ii", 1, 0)


def _error(
    dialect: Dialect,
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.Response(
        status=status,
        body=dialect.error_body(status, message, error_type, param, code),
        content_type=_JSON,
        headers=headers,
    )


def reset_connection(request: web.Request) -> None:
    """Abort the connection with a TCP RST (SO_LINGER 0), nothing written."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    transport.abort()


def _request_id(dialect: Dialect, seq: int) -> dict[str, str]:
    """The request-id header each provider sends (OpenAI x-request-id, Anthropic request-id)."""
    name = dialect.request_id_header
    return {name: f"req_emu{seq}"} if name else {}


def _fault_headers(fault: Fault) -> dict[str, str]:
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        ra = fault.retry_after
        headers["retry-after"] = str(int(ra)) if float(ra).is_integer() else str(ra)
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = str(fault.retry_after_ms)
    return headers


def _fault_message(fault: Fault) -> str:
    return fault.message or f"Emulated fault: HTTP {fault.status}"


async def _cut(request: web.Request, resp: web.StreamResponse, data: bytes) -> web.StreamResponse:
    """Write `data`, then close the connection without ending the body."""
    await resp.write(data)
    if request.transport is not None:
        request.transport.close()  # flushes what was written, then FIN: no terminating chunk
    return resp


async def _stream(
    request: web.Request, dialect: Dialect, frames: list[bytes], decision: Decision, seq: int,
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    resp = web.StreamResponse(headers={**_SSE_HEADERS, **(headers or _request_id(dialect, seq))})
    try:
        return await _write_stream(request, resp, dialect, frames, decision)
    except ConnectionResetError:  # the client went away (e.g. it timed out): nothing to do
        return resp


async def _write_stream(
    request: web.Request, resp: web.StreamResponse, dialect: Dialect, frames: list[bytes], decision: Decision
) -> web.StreamResponse:
    await resp.prepare(request)
    fault = decision.fault
    if fault is not None and fault.kind in ("stream_cut", "stream_error"):
        head = frames[: max(0, fault.after_chunks)]
        if fault.kind == "stream_cut":
            if decision.chunk_delay_s:
                for f in head[:-1]:
                    await resp.write(f)
                    await asyncio.sleep(decision.chunk_delay_s)
                head = head[-1:]
            return await _cut(request, resp, b"".join(head))
        frames = [*head, dialect.stream_error_frame(fault.status, _fault_message(fault), fault.error_type)]
    if decision.chunk_delay_s:
        # On a fixed schedule (frame i at start + i * delay): a slow write or wake-up does not
        # push every later frame back, so the interval stays what was asked on a busy host.
        loop = asyncio.get_running_loop()
        due = loop.time()
        for f in frames:
            await resp.write(f)
            due += decision.chunk_delay_s
            await asyncio.sleep(max(0.0, due - loop.time()))
    else:
        await resp.write(b"".join(frames))
    await resp.write_eof()
    return resp


async def _read_and_record(
    request: web.Request, state: EmulatorState, dialect: Dialect, url_model: str | None, url_stream: bool | None
) -> tuple[Any, str | None, RecordedRequest]:
    """The body (None and a 400 message if it is not JSON), recorded in the log before anything is answered."""
    raw = await request.read()
    try:
        body: Any = json.loads(raw) if raw else None
        parse_error: str | None = None
    except ValueError:
        body, parse_error = None, "Request body is not valid JSON."
    model = url_model or (body.get("model") if isinstance(body, dict) else None) or ""
    stream = url_stream if url_stream is not None else bool(isinstance(body, dict) and body.get("stream"))
    rec = state.log.record(time=time.time(), provider=dialect.provider, model=str(model), method=request.method,
                           path=request.path, query=request.query, headers=request.headers.items(), body=body,
                           stream=stream)
    return body, parse_error, rec


async def _early_fault(
    request: web.Request, state: EmulatorState, dialect: Dialect, model: str, stream: bool, rec: RecordedRequest
) -> tuple[Decision, web.Response | None]:
    """The configured delay slept, then the fault decided for this request: recorded, and answered here if it is
    an error status or a reset; other kinds (garbage, stream faults) are the caller's to apply."""
    decision = state.faults.decide(dialect.provider, model, stream)
    if decision.delay_s:
        await asyncio.sleep(decision.delay_s)
    fault = decision.fault
    if fault is None:
        return decision, None
    rec.fault = fault.kind
    if fault.kind == "status":
        return decision, _error(dialect, fault.status, _fault_message(fault), error_type=fault.error_type,
                                headers=_fault_headers(fault))
    if fault.kind == "reset":
        reset_connection(request)
        return decision, web.Response(status=200)  # never written: the transport is gone
    return decision, None


async def serve(
    request: web.Request,
    state: EmulatorState,
    dialect: Dialect,
    url_model: str | None = None,
    url_stream: bool | None = None,
) -> web.StreamResponse:
    body, parse_error, rec = await _read_and_record(request, state, dialect, url_model, url_stream)
    resp = await _answer(request, state, dialect, body, parse_error, url_model, url_stream, rec)
    rec.status = 0 if rec.fault == "reset" else resp.status
    return resp


async def _answer(
    request: web.Request,
    state: EmulatorState,
    dialect: Dialect,
    body: Any,
    parse_error: str | None,
    url_model: str | None,
    url_stream: bool | None,
    rec: RecordedRequest,
) -> web.StreamResponse:
    refused = _refusal(request, state, dialect, body, parse_error)
    if refused is not None:
        return refused
    try:
        prompt = dialect.parse(body, url_model, url_stream)
    except BadRequest as exc:
        return _error(dialect, exc.status, exc.message, param=exc.param)
    if state.strict_models and prompt.model not in state.models.get(dialect.provider, ()):
        return _error(dialect, 404, f"The model `{prompt.model}` does not exist (emulator).")
    if state.strict and (over := too_long(state.registry, prompt, dialect is OPENAI_RESPONSES)) is not None:
        return _error(dialect, over.status, over.message, param=over.param, code=over.code)

    decision, faulted = await _early_fault(request, state, dialect, prompt.model, prompt.stream, rec)
    if faulted is not None:
        return faulted
    fault = decision.fault
    if fault is not None and fault.kind == "garbage":
        if prompt.stream:
            return await _stream(request, dialect, [b"data: " + fault.body.encode() + b"\n\n"], decision, rec.seq)
        return web.Response(status=200, body=fault.body.encode(), content_type=fault.content_type)

    reply = state.script.reply_for(prompt) or default_reply(prompt, state.stream_words)
    answer = finalize(prompt, reply, lambda: state.next_id(dialect.tool_id_prefix))
    headers = _request_id(dialect, rec.seq)
    if state.rate_limits is not None:
        verdict = state.rate_limits.admit(f"{dialect.provider}:{key_fingerprint(_credential(request))}",
                                          answer.input_tokens + answer.output_tokens)
        headers.update(verdict.headers)
        if not verdict.admitted:
            rec.fault = "rate_limit"
            retry = "86400" if verdict.retry_after == float("inf") else str(max(1, math.ceil(verdict.retry_after)))
            return _error(dialect, 429, "Rate limit reached for requests or tokens per minute (emulator).",
                          headers={**verdict.headers, "retry-after": retry})
    if prompt.cache_points:
        read, written = state.prompt_cache.use(prompt.cache_points, explicit=prompt.cache_explicit,
                                               step=OPENAI_STEP if dialect.provider == "openai" else 1)
        if read or written:
            read = min(read, answer.input_tokens)
            written = min(written, answer.input_tokens - read)
            last = next(p for p in reversed(prompt.cache_points) if p.write)
            answer = replace(answer, cache_read=read, cache_write=written, cache_write_1h=written if last.ttl == "1h" else 0)
    created = int(time.time())
    if prompt.stream:
        return await _stream(
            request, dialect, dialect.stream_frames(prompt, answer, rec.seq, created), decision, rec.seq, headers
        )
    payload = dumps(dialect.response(prompt, answer, rec.seq, created))
    if fault is not None and fault.kind == "stream_cut":
        resp = web.StreamResponse(headers={"Content-Type": _JSON})
        resp.content_length = len(payload)
        try:
            await resp.prepare(request)
            return await _cut(request, resp, payload[: len(payload) // 2])
        except ConnectionResetError:
            return resp
    return web.Response(body=payload, content_type=_JSON, headers=headers)


def _refusal(
    request: web.Request, state: EmulatorState, dialect: Dialect, body: Any, parse_error: str | None
) -> web.Response | None:
    """The 401/400 a request gets before any answer (auth, key, JSON, strict schema), or None."""
    auth = dialect.check_auth(request.headers, request.query)
    if auth is not None:
        return _error(dialect, auth.status, auth.message)
    keys = state.api_keys.get(dialect.provider)
    if keys is not None and _credential(request) not in keys:
        return _error(dialect, 401, "Incorrect API key provided (emulator).")
    if parse_error is not None:
        return _error(dialect, 400, parse_error)
    refused = dialect.validate(body, request.headers, request.path) if state.strict else None
    if refused is not None:
        return _error(dialect, refused.status, refused.message, param=refused.param, code=refused.code)
    return None


async def serve_embeddings(
    request: web.Request, state: EmulatorState, dialect: Dialect, url_model: str | None = None, batch: bool = False
) -> web.StreamResponse:
    """OpenAI ``/v1/embeddings`` (``url_model`` None) or Gemini ``:embedContent`` / ``:batchEmbedContents``."""
    body, parse_error, rec = await _read_and_record(request, state, dialect, url_model, False)
    resp = _refusal(request, state, dialect, body, parse_error)
    if resp is None:
        resp = await _embed_answer(request, state, dialect, body, rec.model, url_model is not None, batch, rec)
    rec.status = 0 if rec.fault == "reset" else resp.status
    return resp


async def _embed_answer(request: web.Request, state: EmulatorState, dialect: Dialect, body: Any, model: str,
                        gemini: bool, batch: bool, rec: RecordedRequest) -> web.Response:
    try:
        texts, dims = (gemini_inputs(body, batch) if gemini else openai_inputs(body))
        encoding = "float" if gemini or not isinstance(body, dict) else str(body.get("encoding_format") or "float")
        payload = embed_response(dialect.provider, model.removeprefix("models/"), texts, dims, gemini=gemini, batch=batch,
                                 encoding=encoding)
    except BadRequest as exc:
        return _error(dialect, exc.status, exc.message, param=exc.param)
    _, faulted = await _early_fault(request, state, dialect, model, False, rec)
    if faulted is not None:
        return faulted
    return web.Response(body=dumps(payload), content_type=_JSON, headers=_request_id(dialect, rec.seq))


def _credential(request: web.Request) -> str:
    h = request.headers
    auth = h.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return h.get("x-api-key") or h.get("x-goog-api-key") or request.query.get("key", "")


def provider_routes(state: EmulatorState) -> list[web.RouteDef]:
    """Routes for the providers `state` serves."""
    routes: list[web.RouteDef] = []
    oa, an, ge = DIALECTS["openai"], DIALECTS["anthropic"], DIALECTS["gemini"]

    if "openai" in state.providers:

        async def chat(request: web.Request) -> web.StreamResponse:
            return await serve(request, state, oa)

        async def responses(request: web.Request) -> web.StreamResponse:
            return await serve(request, state, OPENAI_RESPONSES)

        async def embeddings(request: web.Request) -> web.StreamResponse:
            return await serve_embeddings(request, state, oa)

        routes.append(web.post("/v1/chat/completions", chat))
        routes.append(web.post("/v1/embeddings", embeddings))
        routes.append(web.post("/v1/responses", responses))
    if "anthropic" in state.providers:

        async def messages(request: web.Request) -> web.StreamResponse:
            return await serve(request, state, an)

        routes.append(web.post("/v1/messages", messages))

    async def list_models(request: web.Request) -> web.StreamResponse:
        # OpenAI and Anthropic share GET /v1/models; the anthropic-version header tells them apart.
        if "anthropic-version" in request.headers and "anthropic" in state.providers:
            return web.json_response(an.models_body(state.models["anthropic"]))
        if "openai" in state.providers:
            return web.json_response(oa.models_body(state.models["openai"]))
        raise web.HTTPNotFound()

    routes.append(web.get("/v1/models", list_models))

    if "gemini" in state.providers:

        async def generate(request: web.Request) -> web.StreamResponse:
            model, _, method = request.match_info["tail"].rpartition(":")
            if method == "generateContent":
                return await serve(request, state, ge, model, False)
            if method == "streamGenerateContent":
                return await serve(request, state, ge, model, True)
            if method in ("embedContent", "batchEmbedContents"):
                return await serve_embeddings(request, state, ge, model, method == "batchEmbedContents")
            return _error(ge, 404, f"Method {method!r} is not emulated.")

        async def gemini_models(request: web.Request) -> web.StreamResponse:
            return web.json_response(ge.models_body(state.models["gemini"]))

        for version in ("v1beta", "v1", "v1alpha"):
            routes.append(web.post(f"/{version}/models/{{tail}}", generate))
            if version != "v1":
                routes.append(web.get(f"/{version}/models", gemini_models))
    return routes
