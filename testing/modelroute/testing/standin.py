"""Admin-API stand-ins: many pods' sidecar admin listeners in one process, for fleet-scale operator runs.

1,000 real sidecars do not fit on a small machine (each is a process of 60-120 MB). A stand-in
serves, per pod, the sidecar's own admin app (``server.admin.build_app``) over the sidecar's own
``SidecarState`` and ``AuthSettings``: signature, audience (namespace, name, UID), replay floor,
validation, compile and swap are the sidecar's code, and so is every answer the operator reads.
Only the provider adapters are inert (no SDK client is built: nothing is proxied). One process
serves many pods, each on its own loopback address; a black-holed pod accepts TCP connections
and never answers (what a hung node looks like to the operator).

A control listener reports, per pod, when each config was swapped in (``time.monotonic``, the
same clock in every process of the machine) and how many admin requests arrived, so a benchmark
can time a change to its last pod and count pushes.

    python -m modelroute.testing.standin --pods pods.json --operator-public-key op.pub --control 127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from modelroute.api import signing
from modelroute.api.config import PodRef, SidecarConfig
from modelroute.api.v1alpha1.spec import Params, Target
from modelroute.sidecar.errors import FailureKind, UpstreamError
from modelroute.sidecar.providers.base import Adapter, KeyFn
from modelroute.sidecar.server.admin import build_app
from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.state import Applied, SidecarState


@dataclass(frozen=True)
class StandinPod:
    """One pod a stand-in process serves."""

    namespace: str
    name: str
    uid: str
    ip: str
    port: int
    blackhole: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class InertAdapter:
    """A target whose provider is never called (the stand-in serves the admin API only)."""

    def __init__(self, target: Target) -> None:
        self.target = target

    async def complete(self, request: dict[str, Any], *, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        raise UpstreamError(FailureKind.CONNECTION, "stand-in: no provider behind this sidecar")

    async def stream(self, request: dict[str, Any], *, timeout: float) -> AsyncIterator[dict[str, Any]]:  # noqa: ASYNC109
        raise UpstreamError(FailureKind.CONNECTION, "stand-in: no provider behind this sidecar")
        yield {}  # pragma: no cover (an async generator, as the protocol asks)

    def bound(self, params: Params | None, system: str | None) -> Adapter:
        return self

    async def aclose(self) -> None:
        return None


def inert_adapter(target: Target, key: KeyFn | None) -> Adapter:
    return InertAdapter(target)


class RecordingState(SidecarState):
    """The sidecar's state, noting when each config was swapped in (monotonic clock)."""

    def __init__(self) -> None:
        super().__init__(adapters=inert_adapter)
        self.applied: list[tuple[float, str]] = []

    def apply_locked(self, config: SidecarConfig, *, source: str, issued_at: datetime | None = None) -> Applied:
        applied = super().apply_locked(config, source=source, issued_at=issued_at)
        if applied.changed:
            self.applied.append((time.monotonic(), applied.version))
        return applied


@dataclass
class _Served:
    pod: StandinPod
    state: RecordingState | None
    requests: Counter[str] = field(default_factory=Counter)

    @property
    def version(self) -> str | None:
        current = self.state.current() if self.state is not None else None
        return current.version if current is not None else None


class _Silent(asyncio.Protocol):
    """Accepts the connection, reads and never answers."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _counting(served: _Served) -> Middleware:
    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        served.requests[f"{request.method} {request.path}"] += 1
        return await handler(request)
    return count


class StandinFleet:
    """Serves the admin API of ``pods`` in this process (``start``/``close``), and a control app."""

    def __init__(self, pods: list[StandinPod], operator_key: Any) -> None:
        self.pods = pods
        self.operator_key = operator_key
        self.served: dict[str, _Served] = {}
        self._runners: dict[str, web.AppRunner] = {}
        self._silent: list[asyncio.AbstractServer] = []

    async def start(self) -> None:
        for pod in self.pods:
            if pod.blackhole:
                await self._blackhole(pod)
                continue
            state = RecordingState()
            served = self.served[pod.key] = _Served(pod, state)
            auth = AuthSettings(operator_key=self.operator_key, pod=PodRef(namespace=pod.namespace, name=pod.name, uid=pod.uid))
            app = build_app(state, auth)
            app.middlewares.insert(0, _counting(served))
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            await web.TCPSite(runner, pod.ip, pod.port, backlog=128).start()
            self._runners[pod.key] = runner

    async def _blackhole(self, pod: StandinPod) -> None:
        self.served[pod.key] = _Served(pod, None)
        self._silent.append(await asyncio.get_running_loop().create_server(_Silent, pod.ip, pod.port, backlog=128))

    async def blackhole(self, keys: list[str]) -> None:
        """From now on these pods accept connections and never answer (their admin app is gone)."""
        for key in keys:
            runner = self._runners.pop(key)
            await runner.cleanup()
            await self._blackhole(self.served[key].pod)

    def report(self) -> dict[str, Any]:
        """Per pod: ``applied`` [[monotonic time, version], ...] and ``requests`` {"PUT /config": n, ...}."""
        return {key: {"applied": s.state.applied if s.state is not None else [], "requests": dict(s.requests),
                      "version": s.version} for key, s in self.served.items()}

    def control_app(self) -> web.Application:
        async def report(request: web.Request) -> web.Response:
            return web.json_response(self.report())
        async def blackhole(request: web.Request) -> web.Response:
            await self.blackhole(list((await request.json())["pods"]))
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_get("/report", report)
        app.router.add_post("/blackhole", blackhole)
        return app

    async def close(self) -> None:
        for server in self._silent:
            server.close()
        for runner in self._runners.values():
            await runner.cleanup()


async def _serve(pods: list[StandinPod], public_key_pem: bytes, control: tuple[str, int], ready_file: Path | None) -> None:
    fleet = StandinFleet(pods, signing.load_public_key(public_key_pem))
    await fleet.start()
    runner = web.AppRunner(fleet.control_app(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, control[0], control[1]).start()
    if ready_file is not None:
        await asyncio.to_thread(ready_file.write_text, "ready\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await fleet.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=Path, required=True, help="JSON list of {namespace, name, uid, ip, port, blackhole}")
    parser.add_argument("--operator-public-key", type=Path, required=True)
    parser.add_argument("--control", required=True, help="HOST:PORT of the control listener (GET /report)")
    parser.add_argument("--ready-file", type=Path, default=None, help="written once every pod listens")
    args = parser.parse_args(argv)
    pods = [StandinPod(**p) for p in json.loads(args.pods.read_text())]
    host, _, port = args.control.rpartition(":")
    asyncio.run(_serve(pods, args.operator_public_key.read_bytes(), (host, int(port)), args.ready_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
