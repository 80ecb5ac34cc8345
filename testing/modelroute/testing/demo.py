"""`modelroute demo`: the standalone sidecar, local provider emulators and real SDK calls.

Shows, on one machine and without any network or Kubernetes: a route served by Anthropic
answering an OpenAI-SDK app, a route served by Gemini, a streamed answer, and a fallback
when the primary provider is rate limited and then overloaded. Then a live canary
(``demo_canary``): the operator's pure rollout engine walks a model swap through mirror,
weights and promotion, and aborts a faulty one, on the sidecar's own evidence.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from modelroute.api import signing
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.testing import demo_canary, lifecyclepin
from modelroute.testing.cluster.loopback import free_port
from modelroute.testing.emulators import EmulatorServer

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "standalone" / "routes.yaml"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=EXAMPLE, help="route file to serve (baseUrls are pointed at the emulators)")


def _retarget(config: Path, emulator_url: str) -> str:
    """The example routes with every provider endpoint replaced by the local emulator."""
    docs = [d for d in yaml.safe_load_all(config.read_text()) if d]
    for doc in docs:
        for target in doc["spec"]["targets"]:
            target["baseUrl"] = emulator_url + ("/v1" if target["provider"] in ("openai", "openai-compatible") else "")
    return yaml.safe_dump_all(docs, sort_keys=False)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _say(title: str, detail: str = "") -> None:
    print(f"\n\033[1m== {title}\033[0m" + (f"\n   {detail}" if detail else ""), flush=True)


READY_TIMEOUT = 120.0
"""How long to wait for the sidecar's ``/readyz``. Without bytecode for its optimisation level (PYTHONOPTIMIZE=2
outside the image, which ships ``-OO`` bytecode; PYTHONDONTWRITEBYTECODE set) the sidecar compiles every module it
imports at each start: 4-7 s instead of 2 s on an idle 2-core host, and a loaded CI host stretches that several times.
A sidecar that exits is reported at once, so the bound only matters for one that hangs."""


def _wait_ready(url: str, proc: asyncio.subprocess.Process, timeout: float = READY_TIMEOUT) -> None:
    """Until ``url`` answers 200; ``RuntimeError`` as soon as the process has exited, or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"the sidecar exited with code {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as r:
            if r.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the sidecar did not become ready at {url} within {timeout:g} s")


async def _demo(config: Path) -> int:
    from openai import AsyncOpenAI

    async with EmulatorServer(host="127.0.0.1", port=0) as emu:
        _say("provider emulators", f"OpenAI, Anthropic and Gemini wire formats on {emu.url} (no network needed)")
        port, admin = free_port(), free_port()
        with tempfile.TemporaryDirectory() as tmp:
            routes = Path(tmp) / "routes.yaml"
            routes.write_text(_retarget(config, emu.url))
            pem = signing.generate_private_key_pem()  # the demo plays the operator: it signs canary pushes
            (Path(tmp) / "operator.pub").write_bytes(signing.public_key_pem(pem))
            env = dict(os.environ, OPENAI_API_KEY="sk-demo-openai", ANTHROPIC_API_KEY="sk-demo-anthropic",
                       GEMINI_API_KEY="demo-gemini", MODELROUTE_ADMIN_TOKEN="demo-admin-token")
            lifecyclepin.pin(env)  # the canary names gpt-4o-mini (shut down 2027-01-14): emulators, a fixed day
            cmd = [sys.executable, "-m", "modelroute.cli", "sidecar", "--config", str(routes),
                   "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}",
                   "--operator-public-key", str(Path(tmp) / "operator.pub"),
                   "--pod-namespace", demo_canary.POD_NAMESPACE, "--pod-name", demo_canary.POD_NAME,
                   "--log-level", "warning"]
            _say("starting the sidecar", " ".join(["modelroute", *cmd[3:]]))
            proc = await asyncio.create_subprocess_exec(*cmd, env=env)
            try:
                await asyncio.to_thread(_wait_ready, f"http://127.0.0.1:{admin}/readyz", proc)
                client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
                code = await _calls(client, emu, admin)
                base = [ModelRoute.model_validate(d) for d in yaml.safe_load_all(routes.read_text()) if d]
                code = code or await demo_canary.run_canary(client, emu, admin, signing.load_private_key(pem), base)
                print("\nDone: routing, cross-provider translation, streaming, fallback and a live canary "
                      "all went through real SDKs." if code == 0 else "\nThe demo did not go as expected (see above).")
                return code
            finally:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                await proc.wait()


async def _ask(client: Any, route: str, text: str) -> tuple[str, dict[str, str]]:
    raw = await client.chat.completions.with_raw_response.create(model=route, messages=[{"role": "user", "content": text}])
    completion = raw.parse()
    headers = {k: v for k, v in raw.headers.items() if k.startswith("x-modelroute-")}
    return completion.choices[0].message.content or "", headers


async def _calls(client: Any, emu: EmulatorServer, admin: int) -> int:
    models = await client.models.list()
    _say("GET /v1/models", "routes: " + ", ".join(m.id for m in models.data))

    answer, headers = await _ask(client, "classify", "My card was charged twice")
    _say("classify -> primary target (Anthropic, called through the official anthropic SDK)",
         f"answer: {answer!r}\n   served by: {headers.get('x-modelroute-target')}  prompt version: {headers.get('x-modelroute-prompt-version')}")

    answer, headers = await _ask(client, "summarize", "Summarize: the quarterly report shows growth")
    _say("summarize -> Gemini, answered in OpenAI format", f"answer: {answer!r}\n   served by: {headers.get('x-modelroute-target')}")

    stream = await client.chat.completions.create(model="classify", stream=True, stream_options={"include_usage": True},
                                                  messages=[{"role": "user", "content": "stream this answer please"}])
    parts, usage = [], None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        usage = chunk.usage or usage
    _say("streaming (Anthropic named SSE events -> OpenAI chunks)", f"text: {''.join(parts)!r}  usage: {usage.total_tokens if usage else None} tokens")

    emu.fault(kind="status", status=429, retry_after=0.05, provider="anthropic", times=2)
    answer, headers = await _ask(client, "classify", "Refund please")
    _say("fallback: Anthropic answers 429 (rate limited) twice", f"answer: {answer!r}\n   served by: {headers.get('x-modelroute-target')} (the fallback target)")

    emu.fault(kind="status", status=529, provider="anthropic", times=2)
    answer, headers = await _ask(client, "classify", "The app crashes on login")
    _say("fallback: Anthropic answers 529 (overloaded) twice", f"answer: {answer!r}\n   served by: {headers.get('x-modelroute-target')}")

    stats = await asyncio.to_thread(_get_json, f"http://127.0.0.1:{admin}/stats")
    lines = []
    for route, rs in stats.get("routes", {}).items():
        for target, ts in rs.get("targets", {}).items():
            lines.append(f"{route:10} {target:6} attempts={ts.get('attempts')} outcomes={ts.get('outcomes')}")
    _say("GET /stats (admin port): attempts per route and target", "\n   ".join(lines))
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_demo(args.config))
