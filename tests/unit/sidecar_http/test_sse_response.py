"""A streamed answer's headers leave with its first bytes (``inbound.SseResponse``), in one send."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from modelroute.sidecar.server.inbound import SseResponse

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
