"""A streamed answer's headers leave with its first bytes (``sseout.SseResponse``), in one send; later writes are ``send``s."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from modelroute.sidecar.server.sseout import SseResponse

FIRST = b'data: {"role":"assistant"}\n\ndata: {"content":"hi"}\n\n'


@pytest.fixture
async def server() -> AsyncIterator[tuple[TestServer, list[int]]]:
    sent: list[int] = []  # bytes on the wire after prepare, then after the first write

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = SseResponse(status=200, headers={"Content-Type": "text/event-stream"})
        writer = await resp.prepare(request)
        assert writer is not None
        sent.append(writer.output_size)
        await resp.write(FIRST)
        sent.append(writer.output_size)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/", handler)
    srv = TestServer(app)
    await srv.start_server()
    try:
        yield srv, sent
    finally:
        await srv.close()


async def test_headers_wait_for_the_first_bytes(server: tuple[TestServer, list[int]]) -> None:
    srv, sent = server
    async with aiohttp.ClientSession() as s, s.get(srv.make_url("/")) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/event-stream"
        assert await r.read() == FIRST
    assert sent[0] == 0  # nothing sent at prepare
    assert sent[1] > len(FIRST)  # headers and the first chunk together


# ---- ``send``: the writes after the first, straight to the transport (``sseout``) ------------------

PARTS = [b'data: {"content":"a"}\n\n', b'data: {"content":"\xc3\xa9"}\n\n' * 40, b"data: [DONE]\n\n"]


async def _serve(handler: Any) -> TestServer:
    app = web.Application()
    app.router.add_get("/", handler)
    srv = TestServer(app)
    await srv.start_server()
    return srv


async def test_send_puts_the_same_bytes_on_the_wire_as_write() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        direct = request.query.get("direct") == "1"
        resp = SseResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(FIRST)
        assert resp.direct()
        for part in PARTS:
            if direct:
                assert resp.send(part) is False  # a reading app: never paused here
            else:
                await resp.write(part)
        await resp.write_eof()
        return resp

    srv = await _serve(handler)
    try:
        raw = []
        for direct in ("0", "1"):
            reader, writer = await asyncio.open_connection(srv.host, srv.port)
            writer.write(f"GET /?direct={direct} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            raw.append(await reader.read())
            writer.close()
        without_date = [re.sub(rb"Date: [^\r]*\r\n", b"", r) for r in raw]
        assert without_date[0] == without_date[1]  # framing included
        assert without_date[1].endswith(b"\r\n".join(b"%x\r\n%s" % (len(p), p) for p in PARTS) + b"\r\n0\r\n\r\n")
    finally:
        await srv.close()


async def test_no_direct_sends_on_a_compressed_answer() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = SseResponse(status=200, headers={"Content-Type": "text/event-stream"})
        resp.enable_compression(web.ContentCoding.gzip)
        await resp.prepare(request)
        await resp.write(FIRST)
        assert not resp.direct()  # only ``write`` compresses
        await resp.write_eof()
        return resp

    srv = await _serve(handler)
    try:
        async with aiohttp.ClientSession() as s, s.get(srv.make_url("/"), headers={"Accept-Encoding": "gzip"}) as r:
            assert await r.read() == FIRST
    finally:
        await srv.close()


async def test_a_slow_app_bounds_what_send_buffers() -> None:
    """The relay's loop against an app that does not read: ``send`` says when the transport paused,
    ``drained`` waits; the transport's buffer never holds more than its high-water mark and one write."""
    part = b"data: " + b"x" * 20_000 + b"\n\n"
    paused = asyncio.Event()
    most = {"buffered": 0, "high": 0, "sent": 0}

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = SseResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(FIRST)
        assert resp.direct() and request.transport is not None
        most["high"] = request.transport.get_write_buffer_limits()[1]
        for _ in range(300):  # 6 MB, far more than the socket buffers take
            stop = resp.send(part)
            most["sent"] += 1
            most["buffered"] = max(most["buffered"], request.transport.get_write_buffer_size())
            if stop:
                paused.set()
                await resp.drained()
        await resp.write_eof()
        return resp

    srv = await _serve(handler)
    try:
        reader, writer = await asyncio.open_connection(srv.host, srv.port, limit=2**16)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await paused.wait()  # the app has read nothing yet: the sidecar stopped
        assert most["sent"] < 300
        body = await reader.read()  # the app reads: the rest follows
        writer.close()
        assert most["sent"] == 300 and body.count(b"x" * 20_000) == 300
        assert most["buffered"] <= most["high"] + len(part) + 16
    finally:
        await srv.close()
