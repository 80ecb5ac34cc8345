"""The transport: which SDK headers are sent and their bytes on the wire, proxies from the environment, no key in a repr."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from modelroute.sidecar.providers.transport import Prepared, Transport, api_headers, env_proxy


def test_api_headers_drop_what_the_http_client_manages() -> None:
    built = [("Host", "x"), ("Content-Length", "2"), ("Connection", "keep-alive"), ("accept-encoding", "br"),
             ("x-stainless-read-timeout", "600"), ("X-Stainless-Timeout", "NOT_GIVEN"),
             ("authorization", "Bearer k"), ("anthropic-version", "2023-06-01"), ("user-agent", "AsyncAnthropic/x")]
    assert api_headers(built) == {"authorization": "Bearer k", "anthropic-version": "2023-06-01",
                                  "user-agent": "AsyncAnthropic/x"}


def test_prepared_never_shows_its_headers() -> None:
    p = Prepared("https://api.example/v1", {"authorization": "Bearer sk-secret-1234"}, ("sk-secret-1234",))
    assert "sk-secret" not in repr(p) and "sk-secret" not in str(p)


def test_proxies_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert env_proxy("https://api.openai.com/v1/chat/completions") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw@proxy.corp:3128")
    found = env_proxy("https://api.openai.com/v1/chat/completions")
    assert found is not None and str(found[0]) == "http://proxy.corp:3128" and found[1] is not None
    assert found[1].login == "user"
    assert env_proxy("http://127.0.0.1:8080/v1") is None  # no HTTP_PROXY set
    monkeypatch.setenv("NO_PROXY", "api.openai.com")
    assert env_proxy("https://api.openai.com/v1/chat/completions") is None


async def _heads(*sends: Callable[[str], Awaitable[object]]) -> list[bytes]:
    """The request bytes each ``send(url)`` puts on the wire (one server for all), up to the body's end."""
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(v for k, _, v in (ln.partition(b": ") for ln in head.split(b"\r\n")) if k.lower() == b"content-length"))
        seen.append(head + await reader.readexactly(length))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for send in sends:
            await send(f"http://127.0.0.1:{port}/v1/chat/completions")
    finally:
        server.close()
        await server.wait_closed()
    return seen


SDK_HEADERS = {  # as the openai SDK prepares them (api_headers), and a bare set without a user agent
    "openai": {"accept": "application/json", "content-type": "application/json", "user-agent": "AsyncOpenAI/Python 2.8.1",
               "x-stainless-lang": "python", "x-stainless-package-version": "2.8.1", "x-stainless-os": "Linux",
               "x-stainless-arch": "x64", "x-stainless-runtime": "CPython", "x-stainless-runtime-version": "3.12.3",
               "authorization": "Bearer sk-wire", "x-stainless-async": "async:asyncio", "x-stainless-retry-count": "0"},
    "bare": {"Content-Type": "application/json", "x-goog-api-key": "k-wire"},
}


@pytest.mark.parametrize("headers", SDK_HEADERS.values(), ids=SDK_HEADERS.keys())
async def test_the_transport_sends_the_bytes_aiohttp_sends_for_the_same_headers(headers: dict[str, str]) -> None:
    """Prepared headers handed over whole (``_Request``) go out as aiohttp's own per-header merge
    sent them (a session that skips aiohttp's User-Agent): same headers, same order, same bytes."""
    body = b'{"model":"m","messages":[]}'

    async def reference(url: str) -> object:
        async with aiohttp.ClientSession(skip_auto_headers=("User-Agent",)) as s, s.post(url, data=body, headers=headers) as r:
            return await r.read()

    async def transport(url: str) -> object:
        t = Transport("openai")
        try:
            return await t.send(Prepared(url, headers), body, timeout=5)
        finally:
            await t.aclose()

    expected, sent = await _heads(reference, transport)
    assert sent == expected
    assert b"\r\nHost: 127.0.0.1:" in sent and sent.lower().count(b"\r\nuser-agent:") == (1 if "user-agent" in headers else 0)
