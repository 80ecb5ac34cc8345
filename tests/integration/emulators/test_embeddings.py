"""The emulators serve embeddings: deterministic vectors of the model's dimension, strict bodies, SDK-readable."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import pytest
from google import genai

from modelroute.testing.emulators import EmulatorServer
from modelroute.testing.emulators.embeddings import vector

from .conftest import KEY


async def _post(url: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
        return r.status, await r.json()


async def test_openai_sdk_reads_emulated_embeddings(oai: openai.AsyncOpenAI) -> None:
    got = await oai.embeddings.create(model="text-embedding-3-small", input=["a", "b"])  # base64 by default
    assert [len(d.embedding) for d in got.data] == [1536, 1536]
    assert got.data[1].embedding == pytest.approx(vector("text-embedding-3-small", "b", 1536), abs=1e-6)
    small = await oai.embeddings.create(model="text-embedding-3-large", input="a", dimensions=12, encoding_format="float")
    assert len(small.data[0].embedding) == 12 and small.usage.prompt_tokens > 0


async def test_gemini_sdk_reads_emulated_embeddings(gem: genai.Client) -> None:
    texts: list[Any] = ["a", "b"]
    got = await gem.aio.models.embed_content(model="gemini-embedding-001", contents=texts)
    assert got.embeddings is not None and [len(e.values or []) for e in got.embeddings] == [3072, 3072]


async def test_strict_embedding_bodies(emu: EmulatorServer) -> None:
    status, body = await _post(emu.openai_url + "/embeddings", {"model": "text-embedding-3-small", "input": "a", "top_k": 1},
                               {"Authorization": f"Bearer {KEY}"})
    assert status == 400 and body["error"]["param"] == "top_k"
    status, body = await _post(emu.url + "/v1beta/models/gemini-embedding-001:embedContent",
                               {"content": {"parts": [{"text": "a"}]}, "bogus": 1}, {"x-goog-api-key": KEY})
    assert status == 400 and "bogus" in body["error"]["message"] and body["error"]["status"] == "INVALID_ARGUMENT"
    status, body = await _post(emu.url + "/v1beta/models/gemini-embedding-001:batchEmbedContents", {"requests": []},
                               {"x-goog-api-key": KEY})
    assert status == 400


async def test_embeddings_take_the_same_faults_as_chat(emu: EmulatorServer) -> None:
    """Status and reset faults answer embeddings as they answer chat (one fault preamble serves both), and are logged."""
    url, body, headers = emu.openai_url + "/embeddings", {"model": "text-embedding-3-small", "input": "a"}, {"Authorization": f"Bearer {KEY}"}
    emu.fault(kind="status", status=429, retry_after=2, provider="openai", times=1)
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=body, headers=headers) as r:
            assert (r.status, r.headers["retry-after"]) == (429, "2")
            assert "Emulated fault: HTTP 429" in (await r.json())["error"]["message"]
        emu.fault(kind="reset", provider="gemini", times=1)
        with pytest.raises(aiohttp.ClientError):
            await http.post(emu.url + "/v1beta/models/gemini-embedding-001:embedContent",
                            json={"content": {"parts": [{"text": "a"}]}}, headers={"x-goog-api-key": KEY})
    assert (await _post(url, body, headers))[0] == 200
    assert [(r.provider, r.model, r.fault, r.status) for r in emu.requests()] == [
        ("openai", "text-embedding-3-small", "status", 429), ("gemini", "gemini-embedding-001", "reset", 0),
        ("openai", "text-embedding-3-small", None, 200)]
