"""The inbound fuzz suite's budget and its sidecar under watch.

Budget: ``MODELROUTE_FUZZ_EXAMPLES`` (default ``CI_EXAMPLES``) is each property's
``max_examples``; CI runs the default (about two minutes for the whole suite), ``hack/fuzz``
a long run. Hypothesis's example database stays in ``.hypothesis/`` (not committed).

``Watched`` runs a real sidecar (real runtime, SDK adapters) in front of the provider
emulators, on its own event loop in a thread, so hypothesis and schemathesis drive it with
plain blocking HTTP. Its routes: one per provider (``fz-openai``, ``fz-anthropic``,
``fz-gemini``) and one per embedding provider (``fz-embed-openai``, ``fz-embed-gemini``). While a case runs, an audit hook records every ``open()`` and socket
``connect`` made on the sidecar's thread, and a trap HTTP server on loopback counts hits:
input must never cause file or network access other than the emulator.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, settings

from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState
from modelroute.testing.emulators.server import EmulatorServer

CI_EXAMPLES = 150
EXAMPLES = int(os.environ.get("MODELROUTE_FUZZ_EXAMPLES", CI_EXAMPLES))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= CI_EXAMPLES,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
"""Settings of every property in the suite (derandomized in CI: a failure reproduces)."""

ENV = {"FZ_OPENAI": "sk-fuzz-openai-key", "FZ_ANTHROPIC": "sk-ant-fuzz-key", "FZ_GEMINI": "gemini-fuzz-key"}
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}
ROUTES = [f"fz-{p}" for p in MODELS]
EMBED_MODELS = {"openai": "text-embedding-3-small", "gemini": "gemini-embedding-001"}
EMBED_ROUTES = [f"fz-embed-{p}" for p in EMBED_MODELS]
REPO = Path(__file__).resolve().parents[2]
_ALLOWED_OPEN = tuple(str(p) for p in {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), REPO,
                                       Path(sys.prefix), Path(sys.base_prefix)})


def _route_docs(emu: EmulatorServer, prefix: str, models: dict[str, str]) -> list[dict[str, Any]]:
    """One single-target route per provider, named ``{prefix}{provider}``, on the emulator."""
    return [{"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": f"{prefix}{provider}"},
             "spec": {"route": f"{prefix}{provider}", "timeoutSeconds": 10,
                      "retry": {"attempts": 1, "backoff": {"initialMs": 0, "maxMs": 0}},
                      "targets": [{"name": provider, "provider": provider, "model": model,
                                   "baseUrl": emu.openai_url if provider == "openai" else emu.url,
                                   "apiKey": {"env": f"FZ_{provider.upper()}"}}]}}
            for provider, model in models.items()]


def _routes(emu: EmulatorServer) -> SidecarConfig:
    docs = _route_docs(emu, "fz-", MODELS) + _route_docs(emu, "fz-embed-", EMBED_MODELS)
    return SidecarConfig(routes=[ModelRoute.model_validate(d) for d in docs])


@dataclass
class Audit:
    """What the sidecar's thread opened and connected to while ``active``."""

    thread: int | None = None
    active: bool = False
    opened: list[str] = field(default_factory=list)
    connected: list[Any] = field(default_factory=list)

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active or threading.get_ident() != self.thread:
            return
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            self.opened.append(os.fsdecode(args[0]))
        elif event == "socket.connect":
            self.connected.append(args[1])

    def foreign_opens(self) -> list[str]:
        """Files opened that are not the interpreter's or the repository's (lazy imports are)."""
        return [p for p in self.opened if not os.path.abspath(p).startswith(_ALLOWED_OPEN)]


AUDIT = Audit()
sys.addaudithook(AUDIT.hook)  # audit hooks cannot be removed: it does nothing unless AUDIT.active


class Watched:
    """A sidecar in front of the emulators, on its own loop in a thread, with a trap server beside it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.trap_hits: list[str] = []
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fuzz-sidecar", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self._stop())
        self.loop.close()

    async def _start(self) -> None:
        self.emu = await EmulatorServer(log_size=10_000_000).start()
        state = SidecarState(keys=KeyResolver(environ=dict(ENV)), max_body_bytes=1024 * 1024)
        await state.apply(_routes(self.emu), source="file")
        self.sidecar = Sidecar(state, grace_seconds=1)
        await self.sidecar.start()

        async def hit(request: web.Request) -> web.Response:
            self.trap_hits.append(request.path)
            return web.json_response({"type": "string"})
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", hit)
        self._trap = web.AppRunner(app, access_log=None)
        await self._trap.setup()
        await web.TCPSite(self._trap, "127.0.0.1", 0).start()
        self.trap_url = f"http://127.0.0.1:{self._trap.addresses[0][1]}"

    async def _stop(self) -> None:
        await self.sidecar.stop()
        await self.emu.stop()
        await self._trap.cleanup()

    def start(self) -> Watched:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        AUDIT.thread = self._thread.ident
        self._warm_up()
        return self

    def _warm_up(self) -> None:
        """One valid request per route and API before watching: SDKs read platform files once, lazily."""
        import requests

        msg = [{"role": "user", "content": "hi"}]
        with requests.Session() as s:
            for route in ROUTES:
                for stream in (False, True):
                    s.post(self.url + "/v1/chat/completions", json={"model": route, "messages": msg, "stream": stream},
                           timeout=30).raise_for_status()
                s.post(self.url + "/v1/messages", json={"model": route, "max_tokens": 5, "messages": msg},
                       timeout=30).raise_for_status()
                s.post(self.url + f"/v1beta/models/{route}:generateContent",
                       json={"contents": [{"parts": [{"text": "hi"}]}]}, timeout=30).raise_for_status()
            for route in EMBED_ROUTES:
                s.post(self.url + "/v1/embeddings", json={"model": route, "input": "hi"}, timeout=30).raise_for_status()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(15)

    @property
    def url(self) -> str:
        return self.sidecar.inbound_url

    def upstream_count(self) -> int:
        return self.emu.count()

    def breakers_open(self) -> list[str]:
        runtime = self.sidecar.state.holder.current
        assert runtime is not None
        return [f"{r}/{t.name}" for r, route in runtime.routes.items() for t in route.targets if t.breaker.is_open]

    def check_clean(self) -> None:
        """The invariants that hold after any number of cases: nothing fetched, nothing foreign opened."""
        assert self.trap_hits == [], f"input made the sidecar call the trap server: {self.trap_hits}"
        foreign = AUDIT.foreign_opens()
        AUDIT.opened.clear()
        assert foreign == [], f"input made the sidecar open files: {foreign[:10]}"
        allowed = {("127.0.0.1", self.emu.port)}
        stray = [a for a in AUDIT.connected if tuple(a[:2]) not in allowed]
        AUDIT.connected.clear()
        assert stray == [], f"input made the sidecar connect elsewhere: {stray[:10]}"


@pytest.fixture(scope="module")
def watched() -> Iterator[Watched]:
    w = Watched().start()
    AUDIT.active = True
    try:
        yield w
    finally:
        AUDIT.active = False
        w.stop()
