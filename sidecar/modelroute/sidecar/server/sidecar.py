"""One sidecar process's listeners and background work, startable in-process.

The CLI builds a ``Sidecar`` from its options and runs it until SIGTERM; tests start one on
ephemeral ports (``listen=("127.0.0.1", 0)``) and read ``inbound_url`` / ``admin_url``::

    state = SidecarState()
    await state.apply(config, source="file")
    async with Sidecar(state, AuthSettings(admin_token="t")) as sc:   # both apps on port 0
        client = openai.AsyncOpenAI(base_url=sc.inbound_url + "/v1", api_key="x")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType

from aiohttp import web

from modelroute.sidecar.server import admin, guard, inbound, native, tasks
from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.bundle import POLL_SECONDS, BundleSource
from modelroute.sidecar.server.state import SidecarState

log = logging.getLogger(__name__)

Address = tuple[str, int]


def _url(addr: Address) -> str:
    host = f"[{addr[0]}]" if ":" in addr[0] else addr[0]
    return f"http://{host}:{addr[1]}"


class Sidecar:
    def __init__(
        self,
        state: SidecarState,
        auth: AuthSettings | None = None,
        *,
        listen: Address = ("127.0.0.1", 0),
        admin_listen: Address = ("127.0.0.1", 0),
        bundle: BundleSource | None = None,
        bundle_poll_seconds: float = POLL_SECONDS,
        grace_seconds: float = 20.0,
        admin_limits: guard.AdminLimits | None = None,
    ) -> None:
        self.state = state
        self.auth = auth or AuthSettings()
        self.listen = listen
        self.admin_listen = admin_listen
        self.bundle = bundle
        self.bundle_poll_seconds = bundle_poll_seconds
        self.grace_seconds = grace_seconds
        self.admin_limits = admin_limits or guard.AdminLimits()
        self._runners: list[web.AppRunner] = []
        self._bound: list[Address] = []
        self._watcher: asyncio.Task[None] | None = None

    @property
    def inbound_url(self) -> str:
        return _url(self._bound[0])

    @property
    def admin_url(self) -> str:
        return _url(self._bound[1])

    async def start(self) -> None:
        """Bind both listeners (admin first, so probes answer while the bundle loads) and start watching."""
        app = inbound.build_app(self.state)
        native.add_routes(app)  # the Anthropic and Gemini APIs beside the OpenAI one
        tasks.add_routes(app)   # POST /v1/classify, /v1/extract
        # Inbound bodies are decompressed by ``body.decode_content`` (bounded, errors in the app's envelope).
        apps = [(app, self.listen, False), (admin.build_app(self.state, self.auth, self.admin_limits), self.admin_listen, True)]
        bound: list[Address] = []
        try:
            for app, (host, port), decompress in apps:
                # No access log: it costs more than the whole hot path; /stats and /metrics count requests.
                runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.grace_seconds, handle_signals=False,
                                       auto_decompress=decompress)
                await runner.setup()
                self._runners.append(runner)
                await web.TCPSite(runner, host, port, reuse_address=True, backlog=1024).start()
                addr = runner.addresses[0]
                bound.append((str(addr[0]), int(addr[1])))
        except BaseException:
            await self._cleanup_runners()
            raise
        self._bound = bound
        if self.bundle is not None:
            self._watcher = asyncio.get_running_loop().create_task(self.bundle.watch(self.state, self.bundle_poll_seconds))
        log.info("modelroute sidecar: inbound on %s, admin on %s (config writes: %s)",
                 self.inbound_url, self.admin_url, self.auth.mode())

    async def _cleanup_runners(self) -> None:
        for runner in self._runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()
        self._runners = []

    async def stop(self) -> None:
        """Graceful stop: not ready at once, stop accepting, let requests in flight finish (up to the grace period)."""
        self.state.draining = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        inflight = self.state.inflight()
        if inflight:
            log.info("draining %d request(s) in flight (up to %.0fs)", inflight, self.grace_seconds)
        # AppRunner.cleanup closes the listening socket first, then waits up to shutdown_timeout for handlers.
        await self._cleanup_runners()
        await self.state.aclose(grace=1.0)

    async def __aenter__(self) -> Sidecar:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
