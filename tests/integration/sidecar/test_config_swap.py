"""Config changes under load: hot swap with requests in flight, key rotation, envelopes for bad requests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.testing.emulators.reqlog import key_fingerprint
from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.sidecars import MODELS, route, target
from modelroute.testing.waiting import eventually

from .conftest import Running

Start = Callable[..., Awaitable[Running]]
MSG: list[ChatCompletionMessageParam] = [{"role": "user", "content": "ping"}]


async def test_hot_swap_with_requests_in_flight(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("r", [target(emu, "openai")])])
    old_version = sc.state.current().version  # type: ignore[union-attr]
    emu.fault(kind="latency", latency_ms=2000, provider="openai")
    emu.fault(kind="latency", chunk_latency_ms=100, provider="openai")

    async def one_stream() -> tuple[str, str]:
        raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=MSG, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
        return raw.headers["x-modelroute-config-version"], text

    async def one() -> tuple[str, str]:
        raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=MSG)
        return raw.headers["x-modelroute-config-version"], raw.parse().choices[0].message.content or ""

    inflight = [asyncio.ensure_future(one()) for _ in range(5)] + [asyncio.ensure_future(one_stream()) for _ in range(3)]
    old = sc.state.current()
    assert old is not None
    await eventually(lambda: old.inflight == len(inflight), "every request to lease the old config")
    status, body = await sc.put_config([route("r", [target(emu, "anthropic")])])
    assert status == 200 and body["changed"] is True
    new = await one()  # new requests see the new config at once, while the old ones still run
    assert new == (body["version"], f"[anthropic:{MODELS['anthropic']}] ping")
    for version, text in await asyncio.gather(*inflight):
        assert version == old_version
        assert text == f"[openai:{MODELS['openai']}] ping"  # finished on the config they started with


async def test_invalid_push_keeps_serving(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("r", [target(emu, "openai")])])
    version = sc.state.current().version  # type: ignore[union-attr]
    status, body = await sc.put_config([route("r", [target(emu, "openai", apiKey={"env": "UNSET_KEY"})])])
    assert status == 422
    assert body["error"]["problems"] == [
        "body doc 1 (r): spec.targets[0].apiKey.env: environment variable UNSET_KEY is not set"]
    resp = await sc.client.chat.completions.with_raw_response.create(model="r", messages=MSG)
    assert resp.headers["x-modelroute-config-version"] == version


async def test_key_file_rotation_reaches_the_provider(tmp_path: Path, start: Start) -> None:
    key = tmp_path / "openai-key"
    key.write_text("sk-first\n")
    async with EmulatorServer(api_keys={"openai": {"sk-first", "sk-second"}}) as emu:
        keys = KeyResolver(environ={}, check_interval=0.05)
        sc = await start([route("r", [target(emu, "openai", apiKey={"file": str(key)})])], keys=keys)
        await sc.client.chat.completions.create(model="r", messages=MSG)
        key.write_text("sk-second\n")
        await asyncio.sleep(0.1)  # about time itself: past check_interval the file is read again
        await sc.client.chat.completions.create(model="r", messages=MSG)
        used = [r.headers["authorization"] for r in emu.requests("openai")]
        assert used == [key_fingerprint("sk-first"), key_fingerprint("sk-second")]
        async with sc.http.get(sc.sidecar.admin_url + "/config") as r:
            assert "sk-" not in await r.text()
        async with sc.http.get(sc.sidecar.admin_url + "/metrics") as r:
            assert "sk-" not in await r.text()


async def test_error_envelopes_through_the_sdk(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("classify", [target(emu, "openai")]), route("summarize", [target(emu, "gemini")])])
    with pytest.raises(openai.NotFoundError) as nf:
        await sc.client.chat.completions.create(model="nope", messages=MSG)
    assert "known routes: classify, summarize" in nf.value.message
    with pytest.raises(openai.BadRequestError) as br:
        await sc.client.chat.completions.create(model="classify", messages=[])
    assert br.value.param == "messages"  # type: ignore[attr-defined]
    huge: list[ChatCompletionMessageParam] = [{"role": "user", "content": "x" * (5 * 1024 * 1024)}]
    with pytest.raises(openai.APIStatusError) as big:
        await sc.client.chat.completions.create(model="classify", messages=huge)
    assert big.value.status_code == 413
    status, _, body = await sc.post({"model": "classify", "messages": MSG, "stream": True})
    assert status == 200 and body.endswith(b"data: [DONE]\n\n")
    models = await sc.client.models.list()
    assert [m.id for m in models.data] == ["classify", "summarize"]
    assert json.loads((await sc.post({"model": 3, "messages": MSG}))[2])["error"]["param"] == "model"
