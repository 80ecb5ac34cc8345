"""Fault book, script, request log and the `/_emulator/` HTTP control API."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

import aiohttp
import openai
import pytest

from modelroute.testing.emulators import (
    EmulatorClient,
    EmulatorServer,
    EmulatorThread,
    Fault,
    FaultBook,
    Reply,
    ToolCall,
)
from modelroute.testing.sdkviews import function_call

from .conftest import KEY

# Typed as JSON would bring it: the check under test is the one at run time.
UNKNOWN_KIND: Any = "explode"

MSG: list[Any] = [{"role": "user", "content": "hi"}]


def test_fault_times_and_matching() -> None:
    book = FaultBook()
    book.add(kind="status", status=429, provider="openai", model="a", times=2)
    assert book.decide("openai", "b", False).fault is None
    assert book.decide("anthropic", "a", False).fault is None
    assert book.decide("openai", "a", False).fault is not None
    assert book.decide("openai", "a", True).fault is not None
    assert book.decide("openai", "a", False).fault is None
    assert len(book) == 0


def test_latency_adds_up_and_first_outcome_wins() -> None:
    book = FaultBook()
    book.add(kind="latency", latency_ms=10)
    book.add(kind="status", status=503, latency_ms=5, times=1)
    later = book.add(kind="reset", times=1)
    d = book.decide("gemini", "m", False)
    assert d.delay_s == pytest.approx(0.015)
    assert d.fault is not None and d.fault.kind == "status"
    assert later.times == 1  # not consumed: an outcome was already decided
    assert book.decide("gemini", "m", False).fault is later


def test_probability_is_seeded_and_repeatable() -> None:
    def run(seed: int) -> list[bool]:
        book = FaultBook(seed)
        book.add(kind="status", status=503, probability=0.2)
        return [book.decide("openai", "m", False).fault is not None for _ in range(1000)]

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert 150 < sum(first) < 250


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault(kind=UNKNOWN_KIND)
    with pytest.raises(ValueError, match="unknown fault field"):
        Fault.from_json({"kind": "status", "sttaus": 500})


async def test_script_rules_and_queue(emu: EmulatorServer, oai: openai.AsyncOpenAI) -> None:
    emu.script.enqueue("first", "second", provider="openai", model="m")
    emu.reply(Reply(text="pong"), contains="ping")
    emu.reply(Reply(tool_calls=(ToolCall("lookup", {"q": 1}),)), model="tools")

    async def ask(model: str, text: str) -> openai.types.chat.ChatCompletion:
        return await oai.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])

    assert (await ask("m", "x")).choices[0].message.content == "first"
    assert (await ask("m", "ping")).choices[0].message.content == "second"
    assert (await ask("m", "ping")).choices[0].message.content == "pong"
    assert (await ask("m", "x")).choices[0].message.content == "[openai:m] x"
    r = await ask("tools", "x")
    assert r.choices[0].finish_reason == "tool_calls"
    assert function_call(r.choices[0].message).function.name == "lookup"


async def test_http_control_api(emu: EmulatorServer, oai: openai.AsyncOpenAI) -> None:
    async with EmulatorClient(emu.url) as c:
        added = await c.add_fault({"kind": "status", "status": 500, "provider": "openai", "times": 1})
        assert added["id"] >= 1 and added["times"] == 1
        assert len(await c.faults()) == 1
        await c.add_rule({"reply": {"text": "scripted"}, "contains": "hi"})
        with pytest.raises(openai.InternalServerError):
            await oai.chat.completions.create(model="m", messages=MSG)
        r = await oai.chat.completions.create(model="m", messages=MSG)
        assert r.choices[0].message.content == "scripted"
        reqs = await c.requests(provider="openai")
        assert [(q["status"], q["fault"]) for q in reqs] == [(500, "status"), (200, None)]
        assert reqs[0]["body"]["messages"] == MSG
        assert KEY not in json.dumps(reqs)
        assert len(await c.requests(since=reqs[0]["seq"])) == 1
        await c.seed(3)
        await c.reset()
        assert await c.requests() == [] and await c.faults() == []
    async with aiohttp.ClientSession() as s:
        async with s.post(emu.url + "/_emulator/faults", json={"kind": "nope"}) as resp:
            assert resp.status == 400
        async with s.post(emu.url + "/_emulator/faults", json={"faults": [{"kind": "latency"}]}) as resp:
            fid = (await resp.json())["faults"][0]["id"]
        async with s.delete(f"{emu.url}/_emulator/faults/{fid}") as resp:
            assert resp.status == 200
        async with s.delete(f"{emu.url}/_emulator/faults/{fid}") as resp:
            assert resp.status == 404


async def test_api_keys_and_strict_models() -> None:
    async with EmulatorServer(api_keys={"openai": ["good"]}, strict_models=True) as emu:
        good = openai.AsyncOpenAI(base_url=emu.openai_url, api_key="good", max_retries=0)
        bad = openai.AsyncOpenAI(base_url=emu.openai_url, api_key="bad", max_retries=0)
        try:
            with pytest.raises(openai.AuthenticationError):
                await bad.chat.completions.create(model="gpt-4o-mini", messages=MSG)
            with pytest.raises(openai.NotFoundError) as err:
                await good.chat.completions.create(model="nope", messages=MSG)
            assert err.value.code == "model_not_found"
            r = await good.chat.completions.create(model="gpt-4o-mini", messages=MSG)
            assert r.choices[0].message.content == "[openai:gpt-4o-mini] hi"
            assert emu.count("openai") == 3 and emu.count("openai", "nope") == 1
        finally:
            await good.close()
            await bad.close()


async def test_single_provider_serves_only_its_paths() -> None:
    async with (
        EmulatorServer(providers=["anthropic"]) as emu,
        aiohttp.ClientSession() as s,
        s.post(emu.openai_url + "/chat/completions", json={}) as r,
    ):
        assert r.status == 404


async def test_cli_runs_until_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "modelroute.testing.emulators",
        "--port",
        "0",
        "--provider",
        "openai",
        "--fault",
        '{"kind": "status", "status": 418, "times": 1}',
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line.startswith("modelroute emulator listening on http://127.0.0.1:")
        url = line.split()[4]
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
        with pytest.raises(openai.APIStatusError) as err:
            await client.chat.completions.create(model="m", messages=MSG)
        assert err.value.status_code == 418
        r = await client.chat.completions.create(model="m", messages=MSG)
        assert r.choices[0].message.content == "[openai:m] hi"
        await client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0


def test_thread_runner_serves_sync_sdk() -> None:
    with EmulatorThread() as emu:
        client = openai.OpenAI(base_url=emu.openai_url, api_key=KEY, max_retries=0)
        emu.fault(kind="status", status=503, times=1)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=MSG)
        r = client.chat.completions.create(model="m", messages=MSG)
        assert r.choices[0].message.content == "[openai:m] hi"
        assert emu.count("openai", "m") == 2
        client.close()
