"""A tiny programmable stub of the three providers' HTTP APIs, for the adapter tests.

Each request pops the next behaviour from ``Stub.plan`` (default: a normal answer) and is
recorded with its headers, so tests can check auth (key rotation) and request bodies.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Json = dict[str, Any]


@dataclass
class Step:
    kind: str = "ok"                 # ok | status | hang | reset | garbage | shape | cut | error_event | stall
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Json | None = None         # error body for "status"
    after: int = 1                   # frames sent before "cut" / "error_event" / "stall" (then nothing, open)


def openai_answer(text: str = "hello") -> Json:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-x",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


def openai_chunks(text: str = "hello") -> list[Json]:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x"}
    return [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**base, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}},
    ]


def anthropic_answer(text: str = "hello") -> Json:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 3, "output_tokens": 1}}


def anthropic_events(text: str = "hello") -> list[tuple[str, Json]]:
    return [
        ("message_start", {"type": "message_start", "message": {**anthropic_answer(""), "content": [],
                                                                 "stop_reason": None}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": text}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 1}}),
        ("message_stop", {"type": "message_stop"}),
    ]


def gemini_answer(text: str = "hello") -> Json:
    return {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP",
                            "index": 0}],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4},
            "modelVersion": "gemini-x", "responseId": "r1"}


def gemini_chunks(text: str = "hello") -> list[Json]:
    return [
        {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}],
         "modelVersion": "gemini-x", "responseId": "r1"},
        {"candidates": [{"content": {"parts": [{"text": "!"}], "role": "model"}, "finishReason": "STOP",
                         "index": 0}],
         "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5},
         "modelVersion": "gemini-x", "responseId": "r1"},
    ]


def error_body(provider: str, status: int, message: str = "nope") -> Json:
    if provider == "anthropic":
        etype = {429: "rate_limit_error", 529: "overloaded_error", 500: "api_error", 401: "authentication_error"}
        return {"type": "error", "error": {"type": etype.get(status, "invalid_request_error"), "message": message}}
    if provider == "gemini":
        gstatus = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 400: "INVALID_ARGUMENT",
                   401: "UNAUTHENTICATED"}
        return {"error": {"code": status, "message": message, "status": gstatus.get(status, "UNKNOWN")}}
    etype2 = {429: "rate_limit_exceeded", 500: "server_error"}
    return {"error": {"message": message, "type": etype2.get(status, "invalid_request_error"), "param": None,
                      "code": None}}


class Stub:
    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.plan: list[Step] = []
        self.seen: list[tuple[dict[str, str], Json]] = []
        self.peers: list[object] = []  # the client's (host, port) per request: shows connection reuse
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> Stub:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        app.router.add_post("/v1/messages", self.handle)
        app.router.add_post("/{version}/models/{tail}", self.handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}" + ("/v1" if self.provider == "openai" else "")
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def auth_values(self) -> list[str]:
        out = []
        for headers, _ in self.seen:
            out.append(headers.get("x-goog-api-key") or headers.get("x-api-key") or headers.get("authorization", ""))
        return out

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen.append(({k.lower(): v for k, v in request.headers.items()}, body))
        self.peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        step = self.plan.pop(0) if self.plan else Step()
        streaming = bool(body.get("stream")) or request.path.endswith(":streamGenerateContent")
        if step.kind == "hang":
            await asyncio.sleep(3600)
        if step.kind == "reset":
            assert request.transport is not None
            request.transport.abort()
            await asyncio.sleep(0.05)
            raise ConnectionResetError
        if step.kind == "status":
            return web.json_response(step.body or error_body(self.provider, step.status), status=step.status,
                                     headers=step.headers)
        if step.kind == "garbage":
            return web.Response(body=b"<html>502 Bad Gateway</html>", content_type="application/json")
        if step.kind == "shape":
            return web.json_response(["not", "an", "object"] if self.provider != "gemini" else {"candidates": 7})
        if streaming:
            return await self.stream(request, step)
        answer = {"openai": openai_answer, "anthropic": anthropic_answer, "gemini": gemini_answer}[self.provider]()
        return web.json_response(answer)

    async def stream(self, request: web.Request, step: Step) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        frames: list[bytes]
        if self.provider == "anthropic":
            frames = [f"event: {e}\ndata: {json.dumps(d)}\n\n".encode() for e, d in anthropic_events()]
        elif self.provider == "gemini":
            frames = [f"data: {json.dumps(d)}\r\n\r\n".encode() for d in gemini_chunks()]
        else:
            frames = [f"data: {json.dumps(d)}\n\n".encode() for d in openai_chunks()] + [b"data: [DONE]\n\n"]
        if step.kind == "cut":
            for f in frames[: step.after]:
                await resp.write(f)
            await asyncio.sleep(0.05)
            assert request.transport is not None
            request.transport.abort()
            return resp
        if step.kind == "stall":
            for f in frames[: step.after]:
                await resp.write(f)
            await asyncio.sleep(3600)
        if step.kind == "error_event":
            for f in frames[: step.after]:
                await resp.write(f)
            if self.provider == "anthropic":
                err = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
                await resp.write(f"event: error\ndata: {json.dumps(err)}\n\n".encode())
            elif self.provider == "gemini":
                err = {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
                await resp.write(f"data: {json.dumps(err)}\r\n\r\n".encode())
            else:
                err = {"error": {"message": "server had an error", "type": "server_error"}}
                await resp.write(f"data: {json.dumps(err)}\n\n".encode())
            await resp.write_eof()
            return resp
        for f in frames:
            await resp.write(f)
        await resp.write_eof()
        return resp
