"""The Anthropic and Gemini inbound endpoints: routing through the same path, errors in each API's envelope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState


@pytest.fixture
async def sidecar(builder: Any, keys: Any, make_config: Any, make_doc: Any) -> AsyncIterator[Sidecar]:
    state = SidecarState(adapters=builder, keys=keys)
    await state.apply(make_config(make_doc("c", "classify", prompt={"version": "v2"})), source="file")
    async with Sidecar(state) as sc:
        yield sc


async def test_anthropic_messages(sidecar: Sidecar, http: aiohttp.ClientSession, builder: Any) -> None:
    body = {"model": "classify", "max_tokens": 10, "system": "sys", "messages": [{"role": "user", "content": "hi"}]}
    async with http.post(sidecar.inbound_url + "/v1/messages", json=body) as r:
        assert r.status == 200
        assert r.headers["x-modelroute-prompt-version"] == "v2"
        msg = await r.json()
    assert msg["type"] == "message" and msg["content"] == [{"type": "text", "text": "hello"}]
    sent = builder.adapters["primary"].calls[0]
    assert sent["model"] == "classify" and sent["messages"][0] == {"role": "system", "content": "sys"}


async def test_anthropic_errors_use_its_envelope(sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
    async with http.post(sidecar.inbound_url + "/v1/messages",
                         json={"model": "classify", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}) as r:
        assert r.status == 400
        err = await r.json()
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    async with http.post(sidecar.inbound_url + "/v1/messages",
                         json={"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}) as r:
        assert r.status == 404
        assert (await r.json())["error"]["type"] == "not_found_error"


async def test_gemini_generate_and_stream(sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    async with http.post(sidecar.inbound_url + "/v1beta/models/classify:generateContent", json=body) as r:
        assert r.status == 200
        out = await r.json()
    assert out["candidates"][0]["content"]["parts"] == [{"text": "hello"}]
    async with http.post(sidecar.inbound_url + "/v1/models/classify:streamGenerateContent?alt=sse", json=body) as r:
        text = (await r.read()).decode()
    assert text.startswith("data: {") and "usageMetadata" in text


@pytest.mark.parametrize(("path", "status"), [
    ("/v1beta/models/classify:streamGenerateContent", 400),   # no alt=sse
    ("/v1beta/models/classify:countTokens", 404),
    ("/v1beta/models/nope:generateContent", 404),
])
async def test_gemini_errors_use_its_envelope(sidecar: Sidecar, http: aiohttp.ClientSession, path: str, status: int) -> None:
    async with http.post(sidecar.inbound_url + path, json={"contents": [{"parts": [{"text": "x"}]}]}) as r:
        assert r.status == status
        err = (await r.json())["error"]
    assert err["code"] == status and isinstance(err["status"], str)


async def test_openai_models_get_is_not_shadowed(sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
    async with http.get(sidecar.inbound_url + "/v1/models/classify") as r:
        assert r.status == 200 and (await r.json())["id"] == "classify"
