"""OpenAI's per-chunk ``obfuscation`` padding through the sidecar: relayed as it came to OpenAI-wire apps,
never written into another API's events, and ``stream_options.include_obfuscation`` reaches OpenAI."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.sidecars import route, target

from .conftest import Running

Start = Callable[..., Awaitable[Running]]
WORDS = "one two three four"


def _data(raw: bytes) -> list[str]:
    return [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ") and line != "data: [DONE]"]


@pytest.mark.parametrize("options", [None, {"include_usage": True}, {"include_obfuscation": True}])
async def test_openai_wire_apps_get_each_chunk_as_openai_padded_it(emu: EmulatorServer, start: Start,
                                                                  options: dict[str, Any] | None) -> None:
    sc = await start([route("r", [target(emu, "openai")])])
    body: dict[str, Any] = {"model": "r", "messages": [{"role": "user", "content": WORDS}], "stream": True}
    if options is not None:
        body["stream_options"] = options
    status, _, raw = await sc.post(body)
    assert status == 200
    texts = _data(raw)
    assert len(texts) >= 6  # role, the words, finish (and usage)
    for text in texts:  # the emulator's text unchanged: its padding last, 1 (mod 16) characters long
        assert list(json.loads(text))[-1] == "obfuscation" and len(text) % 16 == 1
    sent = emu.requests("openai")[-1].body["stream_options"]
    assert "include_obfuscation" not in sent or sent["include_obfuscation"] is True


async def test_include_obfuscation_false_reaches_openai(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("r", [target(emu, "openai")])])
    status, _, raw = await sc.post({"model": "r", "messages": [{"role": "user", "content": WORDS}], "stream": True,
                                    "stream_options": {"include_obfuscation": False}})
    assert status == 200 and len(_data(raw)) >= 6
    assert b"obfuscation" not in raw
    assert emu.requests("openai")[-1].body["stream_options"] == {"include_obfuscation": False, "include_usage": True}


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/messages", {"model": "r", "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": WORDS}]}),
    ("/v1beta/models/r:streamGenerateContent?alt=sse", {"contents": [{"role": "user", "parts": [{"text": WORDS}]}]}),
    ("/v1/responses", {"model": "r", "input": WORDS, "stream": True}),
])
async def test_other_apis_never_see_it(emu: EmulatorServer, start: Start, path: str, body: dict[str, Any]) -> None:
    sc = await start([route("r", [target(emu, "openai")])])
    async with sc.http.post(sc.url + path, json=body) as r:
        raw = await r.read()
        assert r.status == 200, raw
    assert WORDS.split()[-1].encode() in raw
    assert b"obfuscation" not in raw
    assert "include_obfuscation" not in emu.requests("openai")[-1].body["stream_options"]  # OpenAI pads: its default
