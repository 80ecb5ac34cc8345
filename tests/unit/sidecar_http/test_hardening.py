"""Issue 14: bad input is a 4xx in the envelope of the API it came in on; nothing is fetched.

Each case was a 500, a breaker trip or a fetch before (items 1, 3, 4): bodies nested 100,000
levels deep, integers over 4,300 digits, NaN and lone surrogates, bodies that do not decompress,
malformed Anthropic and Gemini bodies, classify labels that differ only in case, extract schemas
with remote or relative ``$ref``s or nested too deeply, a non-ASCII ``Authorization`` header.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState

Json = dict[str, Any]
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
GEMINI = "/v1beta/models/classify:generateContent"


@pytest.fixture
async def sidecar(builder: Any, keys: Any, make_config: Any, make_doc: Any) -> AsyncIterator[Sidecar]:
    state = SidecarState(adapters=builder, keys=keys, max_body_bytes=64 * 1024)
    await state.apply(make_config(make_doc("c", "classify")), source="file")
    async with Sidecar(state, AuthSettings(admin_token="tok")) as sc:
        yield sc


def assert_envelope(path: str, status: int, body: Json) -> str:
    """The error's message, after checking the body is the envelope of ``path``'s API."""
    if path == MESSAGES:
        assert body["type"] == "error" and isinstance(body["error"]["type"], str)
        return str(body["error"]["message"])
    err = body["error"]
    if path.startswith("/v1beta/"):
        assert err["code"] == status and isinstance(err["status"], str)
    else:
        assert isinstance(err["type"], str) and "param" in err
    return str(err["message"])


async def post_raw(http: aiohttp.ClientSession, url: str, data: bytes, **headers: str) -> tuple[int, Json]:
    async with http.post(url, data=data, headers={"Content-Type": "application/json", **headers}) as r:
        return r.status, await r.json(content_type=None)


def chat_body(path: str, text: str = "hi") -> Json:
    if path == MESSAGES:
        return {"model": "classify", "max_tokens": 5, "messages": [{"role": "user", "content": text}]}
    if path == GEMINI:
        return {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    return {"model": "classify", "messages": [{"role": "user", "content": text}]}


PATHS = [CHAT, MESSAGES, GEMINI, "/v1/extract"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("raw", "status", "says"), [
    (b"[" * 30_000 + b"]" * 30_000, 400, "too deeply"),
    (b'{"a":' * 500 + b"1" + b"}" * 500, 400, "nested deeper than 128"),
    (b'{"model":"classify","n":' + b"9" * 5000 + b"}", 400, "4300 digits"),
    (b'{"model":"classify","temperature":NaN}', 400, "temperature: NaN is not a finite number"),
    (b'{"model":"classify","temperature":1e999}', 400, "temperature: 1e999 is not a finite number"),
    (b'{"model":"classify","x":[-Infinity]}', 400, "x[0]: -Infinity"),
    (b'{"messages":[{"role":"user","content":"a\\ud800"}]}', 400, "messages[0].content: the string holds a lone"),
    (b'{"\\udfff":1}', 400, "key '\\\\udfff'"),
    (b'{"a":"\xed\xa0\x80"}', 400, "not UTF-8"),
    (b"", 400, "empty"),
    (b"{", 400, "not valid JSON"),
])
async def test_bodies_no_upstream_could_take_are_400s(sidecar: Sidecar, http: aiohttp.ClientSession, builder: Any,
                                                      path: str, raw: bytes, status: int, says: str) -> None:
    code, body = await post_raw(http, sidecar.inbound_url + path, raw)
    assert code == status, body
    assert says in assert_envelope(path, code, body)
    assert not any(a.calls for a in builder.adapters.values())


async def test_a_valid_surrogate_pair_is_fine(sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
    raw = json.dumps(chat_body(CHAT, "smile \U0001f600")).encode()  # ensure_ascii: "\ud83d\ude00"
    assert b"\\ud83d" in raw
    code, _ = await post_raw(http, sidecar.inbound_url + CHAT, raw)
    assert code == 200


@pytest.mark.parametrize("path", [CHAT, MESSAGES, GEMINI])
@pytest.mark.parametrize(("encoding", "compress", "status"), [
    ("gzip", gzip.compress, 200),
    ("deflate", zlib.compress, 200),
    ("deflate", lambda b: zlib.compress(b)[2:-4], 200),   # raw deflate
    ("gzip", lambda b: b, 400),                            # not compressed at all
    ("deflate", lambda b: b, 400),
    ("gzip", lambda b: gzip.compress(b)[:-12], 400),       # truncated
    ("br", lambda b: b, 415),
])
async def test_content_encoding(sidecar: Sidecar, http: aiohttp.ClientSession, path: str, encoding: str,
                                compress: Any, status: int) -> None:
    raw = compress(json.dumps(chat_body(path)).encode())
    code, body = await post_raw(http, sidecar.inbound_url + path, raw, **{"Content-Encoding": encoding})
    assert code == status, body
    if status != 200:
        assert encoding in assert_envelope(path, code, body)


async def test_a_decompression_bomb_is_413(sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
    bomb = gzip.compress(b" " * (1024 * 1024))   # 1 MiB of spaces: ~1 KiB compressed, limit 64 KiB
    code, body = await post_raw(http, sidecar.inbound_url + CHAT, bomb, **{"Content-Encoding": "gzip"})
    assert code == 413 and body["error"]["code"] == "request_too_large"


@pytest.mark.parametrize(("body", "says"), [
    ({"system": [{"type": "text", "text": {}}]}, "system[0].text must be a string, not an object"),
    ({"tools": 5}, "tools must be an array, not a number"),
    ({"tools": [5]}, "tools[0] must be an object"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]}, "messages[0].content[0].text must be a string"),
    ({"messages": [{"role": "user", "content": [7]}]}, "messages[0].content[0] must be an object"),
    ({"temperature": "hot"}, "temperature must be a number"),
])
async def test_malformed_anthropic_bodies(sidecar: Sidecar, http: aiohttp.ClientSession, body: Json, says: str) -> None:
    code, out = await post_raw(http, sidecar.inbound_url + MESSAGES, json.dumps({**chat_body(MESSAGES), **body}).encode())
    assert code == 400
    assert says in assert_envelope(MESSAGES, code, out)


@pytest.mark.parametrize(("body", "says"), [
    ({"tools": [{"functionDeclarations": 5}]}, "tools[0].functionDeclarations must be an array"),
    ({"tools": [5]}, "tools[0] must be an object"),
    ({"tools": [{"functionDeclarations": [3]}]}, "tools[0].functionDeclarations[0] must be an object"),
    ({"contents": [{"parts": [{"text": ["a"]}]}]}, "contents[0].parts[0].text must be a string, not an array"),
    ({"contents": [{"parts": [5]}]}, "contents[0].parts[0] must be an object"),
    ({"contents": [{"role": "model", "parts": [{"functionCall": 1}]}]}, "contents[0].parts[0].functionCall must be an object"),
    ({"contents": [{"parts": [{"inlineData": {"mimeType": 4}}]}]}, "contents[0].parts[0].inlineData.mimeType must be a string"),
    ({"systemInstruction": {"parts": [{"text": 1}]}}, "systemInstruction.parts[0].text must be a string"),
    ({"generationConfig": {"stopSequences": 5}}, "generationConfig.stopSequences must be an array"),
])
async def test_malformed_gemini_bodies(sidecar: Sidecar, http: aiohttp.ClientSession, body: Json, says: str) -> None:
    code, out = await post_raw(http, sidecar.inbound_url + GEMINI, json.dumps({**chat_body(GEMINI), **body}).encode())
    assert code == 400
    assert says in assert_envelope(GEMINI, code, out)


async def test_classify_labels_that_differ_only_in_case_are_400(sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
    body = {"route": "classify", "input": "x", "labels": ["a", "A"]}
    code, out = await post_raw(http, sidecar.inbound_url + "/v1/classify", json.dumps(body).encode())
    assert code == 400 and out["error"]["param"] == "labels"
    assert "differ only in case" in out["error"]["message"]


class Trap:
    """A loopback HTTP server that must never be called: it counts every request."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.url = ""

    async def __aenter__(self) -> Trap:
        async def hit(request: web.Request) -> web.Response:
            self.hits.append(request.path)
            return web.json_response({"type": "string"})
        app = web.Application()
        app.router.add_get("/{tail:.*}", hit)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


def nested_schema(levels: int) -> Json:
    schema: Json = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize(("make", "says"), [
    (lambda url: {"$ref": f"{url}/ref.json"}, "/ref.json' at /$ref is not allowed: only local references"),
    (lambda url: {"$id": f"{url}/root.json", "$ref": "other.json"}, "$ref 'other.json' at /$ref is not allowed"),
    (lambda url: {"properties": {"a": {"$ref": "file:///etc/passwd"}}}, "at /properties/a/$ref is not allowed"),
    (lambda url: {"properties": {"a": {"$id": f"{url}/x", "type": "string"}}}, "$id is only allowed at the root"),
    (lambda url: {"$ref": "#/$defs/missing"}, "points at nothing"),
    (lambda url: nested_schema(30), "nests deeper than 40 levels"),
])
async def test_extract_schemas_fetch_nothing(sidecar: Sidecar, http: aiohttp.ClientSession, builder: Any,
                                             make: Any, says: str) -> None:
    async with Trap() as trap:
        body = {"route": "classify", "input": "x", "schema": make(trap.url)}
        code, out = await post_raw(http, sidecar.inbound_url + "/v1/extract", json.dumps(body).encode())
        assert code == 400, out
        assert out["error"]["param"] == "schema" and says in out["error"]["message"]
        assert trap.hits == []
    assert not any(a.calls for a in builder.adapters.values())


async def test_local_refs_still_work(sidecar: Sidecar, http: aiohttp.ClientSession, builder: Any) -> None:
    builder.adapters["primary"].plan = [
        {"id": "x", "object": "chat.completion", "created": 1, "model": "m",
         "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": '{"a": "b"}'}}]}]
    schema = {"$defs": {"s": {"type": "string"}}, "type": "object", "properties": {"a": {"$ref": "#/$defs/s"}}, "required": ["a"]}
    code, out = await post_raw(http, sidecar.inbound_url + "/v1/extract",
                               json.dumps({"route": "classify", "input": "x", "schema": schema}).encode())
    assert code == 200 and out["data"] == {"a": "b"}


@pytest.mark.parametrize("header", [b"Bearer \xff\xfe", "Bearer tök".encode(), b"\xc3\x28 x"])
async def test_non_ascii_authorization_is_401(sidecar: Sidecar, header: bytes) -> None:
    # aiohttp's client will not send raw bytes in a header: write the request by hand
    import asyncio

    host, port = sidecar.admin_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"PUT /config HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\nAuthorization: "
                 + header + b"\r\n\r\n[]")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"must be ASCII" in answer


class BrokenTelemetry:
    """A telemetry seam that fails: the only way left to make the inbound handler raise."""

    def server_span(self, request: Any) -> Iterator[Any]:
        raise RuntimeError("internal detail that must not leak")


@pytest.mark.parametrize("path", [CHAT, MESSAGES, GEMINI])
async def test_500s_use_each_apis_envelope(sidecar: Sidecar, http: aiohttp.ClientSession, path: str) -> None:
    sidecar.state.telemetry = BrokenTelemetry()  # type: ignore[assignment]
    code, body = await post_raw(http, sidecar.inbound_url + path, json.dumps(chat_body(path)).encode())
    assert code == 500
    message = assert_envelope(path, code, body)
    assert "internal error" in message and "must not leak" not in json.dumps(body)


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", MESSAGES, 405), ("GET", GEMINI, 405), ("POST", "/v1/messages/batches", 404),
    ("POST", "/v1beta/files", 404), ("GET", CHAT, 405),
])
async def test_routing_errors_use_each_apis_envelope(sidecar: Sidecar, http: aiohttp.ClientSession,
                                                     method: str, path: str, status: int) -> None:
    async with http.request(method, sidecar.inbound_url + path) as r:
        assert r.status == status
        body = await r.json()
    shape = MESSAGES if path.startswith(MESSAGES) else GEMINI if path.startswith("/v1beta/") or ":" in path else CHAT
    assert_envelope(shape, status, body)

