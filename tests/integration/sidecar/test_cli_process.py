"""`modelroute sidecar` as a real process: start-up, readiness, bundle start-up, signed pushes, SIGTERM drain."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
import yaml
from openai.types.chat import ChatCompletionMessageParam

from modelroute.api.config import ConfigPush, PodRef, RouteBundle, SidecarConfig
from modelroute.api.signing import (
    SIGNATURE_HEADER,
    generate_private_key_pem,
    load_private_key,
    public_key_pem,
    sign,
)
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.scrape import sample
from modelroute.testing.sidecars import ENV, MODELS, route, target

MSG: list[ChatCompletionMessageParam] = [{"role": "user", "content": "ping"}]
LISTENING = re.compile(r"inbound on (http://\S+), admin on (http://\S+)")


class Proc:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.log: list[str] = []
        self.inbound = self.admin = ""

    async def wait_listening(self, within: float = 20) -> None:
        async with asyncio.timeout(within):
            while True:
                assert self.proc.stderr is not None
                line = (await self.proc.stderr.readline()).decode()
                if not line:
                    raise AssertionError("sidecar exited:\n" + "".join(self.log))
                self.log.append(line)
                m = LISTENING.search(line)
                if m:
                    self.inbound, self.admin = m.group(1).rstrip(","), m.group(2)
                    asyncio.get_running_loop().create_task(self._drain_log())
                    return

    async def _drain_log(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.log.append(line.decode())


async def spawn(*args: str, env: dict[str, str] | None = None) -> Proc:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "modelroute.cli", "sidecar", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", *args,
        env={**os.environ, **ENV, **(env or {})}, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL)
    return Proc(proc)


@pytest.fixture
async def procs() -> AsyncIterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:
        if p.proc.returncode is None:
            p.proc.kill()
            await p.proc.wait()


@pytest.fixture
async def emu() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer() as server:
        yield server


async def test_config_errors_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump({**route("r", [{"name": "t", "provider": "nope", "model": "m"}])}))
    proc = await spawn("--config", str(f))
    _, err = await proc.proc.communicate()
    assert proc.proc.returncode == 2
    assert err.decode().strip() == (f"modelroute sidecar: {f} doc 1 (r): spec.targets[0].provider: "
                                    "Input should be 'openai', 'anthropic', 'gemini' or 'openai-compatible'")


async def test_standalone_serves_and_drains_on_sigterm(tmp_path: Path, emu: EmulatorServer, procs: list[Proc]) -> None:
    f = tmp_path / "routes.yaml"
    f.write_text(yaml.safe_dump_all([route("r", [target(emu, "openai"), target(emu, "anthropic")])]))
    p = await spawn("--config", str(f), "--grace-seconds", "10")
    procs.append(p)
    await p.wait_listening()
    async with aiohttp.ClientSession() as http:
        async with http.get(p.admin + "/readyz") as r:
            assert r.status == 200
        client = openai.AsyncOpenAI(base_url=p.inbound + "/v1", api_key="x", max_retries=0)
        emu.fault(kind="status", status=503, provider="openai", times=1)
        resp = await client.chat.completions.create(model="r", messages=MSG)
        assert resp.model == MODELS["anthropic"]  # fell back
        emu.fault(kind="latency", latency_ms=1500, chunk_latency_ms=100)

        async def streamed() -> str:
            stream = await client.chat.completions.create(model="r", messages=MSG, stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

        slow = asyncio.ensure_future(client.chat.completions.create(model="r", messages=MSG))
        slow_stream = asyncio.ensure_future(streamed())
        for _ in range(500):  # both requests are in flight in the sidecar
            async with http.get(p.admin + "/metrics") as r:
                if sample(await r.text(), "modelroute_inflight_requests") == 2:
                    break
            await asyncio.sleep(0.01)
        p.proc.send_signal(signal.SIGTERM)
        done = await slow  # the requests in flight finish
        assert done.choices[0].message.content == f"[openai:{MODELS['openai']}] ping"
        assert await slow_stream == f"[openai:{MODELS['openai']}] ping"
        assert await asyncio.wait_for(p.proc.wait(), 10) == 0
        await client.close()


def signed_bundle(directory: Path, key: Any, docs: list[dict[str, Any]]) -> None:
    bundle = RouteBundle(namespace="team-a", issued_at=datetime.now(UTC), routes=[ModelRoute.model_validate(d) for d in docs])
    body = json.dumps(bundle.model_dump(mode="json", by_alias=True, exclude_none=True)).encode()
    (directory / "bundle.sig.tmp").write_text(sign(key, body))
    (directory / "bundle.json").write_bytes(body)
    (directory / "bundle.sig.tmp").rename(directory / "bundle.sig")


async def test_operator_mode_bundle_then_signed_push(tmp_path: Path, emu: EmulatorServer, procs: list[Proc]) -> None:
    priv = generate_private_key_pem()
    key = load_private_key(priv)
    (tmp_path / "operator.pub").write_bytes(public_key_pem(priv))
    bundle_dir = tmp_path / "bundle"
    bundle_dir.mkdir()
    (tmp_path / "labels").write_text('app="web"\nmodelroute.dev/sidecar="true"\n')
    p = await spawn("--operator-public-key", str(tmp_path / "operator.pub"), "--bundle-dir", str(bundle_dir),
                    "--pod-labels-file", str(tmp_path / "labels"),
                    env={"MODELROUTE_POD_NAMESPACE": "team-a", "MODELROUTE_POD_NAME": "web-1"})
    procs.append(p)
    await p.wait_listening()
    async with aiohttp.ClientSession() as http:
        async with http.get(p.admin + "/readyz") as r:
            assert r.status == 503  # not ready until it has a config
        web = route("web", [target(emu, "openai")], selector={"matchLabels": {"app": "web"}})
        batch = route("batch", [target(emu, "gemini")], selector={"matchLabels": {"app": "batch"}})
        signed_bundle(bundle_dir, key, [web, batch])
        async with asyncio.timeout(10):
            while True:
                async with http.get(p.admin + "/readyz") as r:
                    if r.status == 200:
                        break
                await asyncio.sleep(0.1)
        async with http.get(p.admin + "/config") as r:
            view = await r.json()
        assert view["source"] == "bundle" and [x["spec"]["route"] for x in view["routes"]] == ["web"]

        # unauthenticated and forged pushes are refused; a signed one for this pod is served
        push = ConfigPush(audience=PodRef(namespace="team-a", name="web-1"), issued_at=datetime.now(UTC),
                          config=SidecarConfig(routes=[ModelRoute.model_validate(batch)]))
        body = json.dumps(push.model_dump(mode="json", by_alias=True, exclude_none=True)).encode()
        async with http.put(p.admin + "/config", data=body) as r:
            assert r.status == 401
        forged = load_private_key(generate_private_key_pem())
        async with http.put(p.admin + "/config", data=body, headers={SIGNATURE_HEADER: sign(forged, body)}) as r:
            assert r.status == 403
        async with http.put(p.admin + "/config", data=body, headers={SIGNATURE_HEADER: sign(key, body)}) as r:
            assert r.status == 200
        client = openai.AsyncOpenAI(base_url=p.inbound + "/v1", api_key="x", max_retries=0)
        resp = await client.chat.completions.create(model="batch", messages=MSG)
        assert resp.model == MODELS["gemini"]
        await client.close()
    p.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(p.proc.wait(), 10) == 0
