"""Embeddings through the sidecar: the openai SDK's ``embeddings.create`` and google-genai's ``embed_content``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest
from google import genai
from google.genai import errors as genai_errors

from modelroute.testing.emulators.embeddings import vector
from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.sidecars import Json, route, target

from .conftest import Running

Start = Callable[..., Awaitable[Running]]
EMBED = {"openai": "text-embedding-3-small", "gemini": "gemini-embedding-001"}
DIMS = {"openai": 1536, "gemini": 3072}


def openai_client(sc: Running) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=sc.sidecar.inbound_url + "/v1", api_key="unused", max_retries=0)


async def post(sc: Running, path: str, body: Json) -> tuple[int, dict[str, str], Any]:
    async with sc.http.post(sc.url + path, json=body) as r:
        return r.status, dict(r.headers), await r.json()


def gemini_client(sc: Running) -> genai.Client:
    return genai.Client(api_key="unused", http_options={"base_url": sc.sidecar.inbound_url})


@pytest.mark.parametrize("provider", ["openai", "gemini"])
async def test_openai_sdk_embeddings(emu: EmulatorServer, start: Start, provider: str) -> None:
    sc = await start([route("e", [target(emu, provider, model=EMBED[provider])])])
    client = openai_client(sc)
    one = await client.embeddings.create(model="e", input="hello")  # the SDK asks for base64 by default
    assert len(one.data) == 1 and len(one.data[0].embedding) == DIMS[provider]
    assert one.data[0].embedding == pytest.approx(vector(EMBED[provider], "hello", DIMS[provider]), abs=1e-6)
    assert one.model == EMBED[provider] and one.usage.prompt_tokens > 0
    many = await client.embeddings.create(model="e", input=["a b", "c"], encoding_format="float")
    assert [d.index for d in many.data] == [0, 1]
    assert many.data[1].embedding == pytest.approx(vector(EMBED[provider], "c", DIMS[provider]), abs=1e-6)
    small = await client.embeddings.create(model="e", input=["x"], dimensions=64)
    assert len(small.data[0].embedding) == 64
    await client.close()


@pytest.mark.parametrize("provider", ["openai", "gemini"])
async def test_gemini_sdk_embed_content(emu: EmulatorServer, start: Start, provider: str) -> None:
    sc = await start([route("e", [target(emu, provider, model=EMBED[provider])])])
    client = gemini_client(sc)
    texts: list[Any] = ["hello", "world"]
    resp = await client.aio.models.embed_content(model="e", contents=texts)
    assert resp.embeddings is not None and len(resp.embeddings) == 2
    assert resp.embeddings[1].values == pytest.approx(vector(EMBED[provider], "world", DIMS[provider]), abs=1e-6)
    small = await client.aio.models.embed_content(model="e", contents="hi", config={"output_dimensionality": 32})
    assert small.embeddings is not None and len(small.embeddings[0].values or []) == 32
    status, _, body = await post(sc, "/v1beta/models/e:embedContent", {"content": {"parts": [{"text": "hi"}]}})
    assert status == 200 and len(body["embedding"]["values"]) == DIMS[provider]


async def test_fallback_on_503_to_a_target_of_the_same_dimension(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("e", [target(emu, "openai", "primary", model="text-embedding-3-large", dimensions=768),
                                  target(emu, "gemini", "backup", model="gemini-embedding-001", dimensions=768)])])
    emu.fault(kind="status", status=503, provider="openai")
    resp = await openai_client(sc).embeddings.with_raw_response.create(model="e", input="hello")
    assert resp.headers["x-modelroute-target"] == "backup"
    assert len(resp.parse().data[0].embedding) == 768
    stats = (await sc.stats())["routes"]["e"]
    assert stats["targets"]["primary"]["outcomes"] == {"server_error": 1}
    assert stats["targets"]["backup"]["outcomes"].get("ok") == 1


async def test_usage_and_cost_in_stats(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("e", [target(emu, "openai", model="text-embedding-3-small")])])
    resp = await openai_client(sc).embeddings.create(model="e", input=["one two three"] * 10)
    tokens = resp.usage.prompt_tokens
    stats = (await sc.stats())["routes"]["e"]["targets"]["openai"]
    assert stats["tokens"] == {"prompt": tokens, "completion": 0}
    assert stats["costUsd"] == pytest.approx(tokens * 0.02 / 1e6, abs=1e-9)


async def test_bad_input_is_a_4xx_naming_the_field(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("e", [target(emu, "openai", model="text-embedding-3-small")]),
                      route("chat", [target(emu, "openai")])])
    client = openai_client(sc)
    with pytest.raises(openai.BadRequestError) as bad:
        await client.embeddings.create(model="e", input=[[1, 2, 3]])
    assert isinstance(bad.value.body, dict) and bad.value.body.get("param") == "input[0]"
    with pytest.raises(openai.BadRequestError) as dims:
        await client.embeddings.create(model="e", input="x", dimensions=0)
    assert "dimensions" in str(dims.value)
    with pytest.raises(openai.BadRequestError) as chat:
        await client.embeddings.create(model="chat", input="x")
    assert "serves chat, not embeddings" in str(chat.value)
    with pytest.raises(openai.NotFoundError):
        await client.embeddings.create(model="nope", input="x")
    with pytest.raises(genai_errors.ClientError) as ce:
        await gemini_client(sc).aio.models.embed_content(model="e", contents=[])
    assert ce.value.code == 400
    status, _, body = await post(sc, "/v1beta/models/e:embedContent", {"content": {"parts": [{"text": "x"}]},
                                                                           "bogus": 1})
    assert status == 400 and "bogus" in body["error"]["message"] and body["error"]["status"] == "INVALID_ARGUMENT"


async def test_openai_compatible_target_with_its_own_dimensions(emu: EmulatorServer, start: Start) -> None:
    compat = {"name": "local", "provider": "openai-compatible", "model": "bge-m3", "baseUrl": emu.openai_url,
              "dimensions": 1024}
    sc = await start([route("e", [compat])])
    got = await openai_client(sc).embeddings.create(model="e", input="hello")
    assert len(got.data[0].embedding) == 1024
    sent = emu.requests(provider="openai")[-1].body
    assert sent == {"model": "bge-m3", "input": ["hello"], "encoding_format": "float", "dimensions": 1024}
