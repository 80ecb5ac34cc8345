"""The emulator as an aiohttp app and as an async context manager bound to a real port.

async with EmulatorServer() as emu:          # 127.0.0.1, ephemeral port
    emu.url, emu.openai_url, emu.faults.add(kind="status", status=429), emu.requests()
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Unpack

from aiohttp import web

from .control import control_routes
from .dialects import compile_schemas
from .faults import Fault, FaultBook
from .handlers import provider_routes
from .model import Reply
from .reqlog import RecordedRequest
from .script import Script
from .state import EmulatorOptions, EmulatorState

STATE_KEY: web.AppKey[EmulatorState] = web.AppKey("emulator_state", EmulatorState)


def build_app(state: EmulatorState) -> web.Application:
    """An aiohttp app serving the providers of `state` and the `/_emulator/` control API."""
    if state.strict:
        compile_schemas(state.providers)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = state
    app.add_routes(provider_routes(state))
    app.add_routes(control_routes(state))
    return app


class EmulatorServer:
    """One emulator listening on host:port (port 0 picks a free one).

    Python API (same effect as the HTTP control API):
      faults                 FaultBook: add(Fault(...)) or add(kind=..., ...), remove(id), clear(), seed(n)
      script                 Script: when(reply, contains=, provider=, model=, times=), enqueue(...), clear()
      requests(provider=, model=) -> list[RecordedRequest]; count(provider=, model=) -> int
      reset()                clear faults, script and request log
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **options: Unpack[EmulatorOptions]) -> None:
        self.host = host
        self.port = port
        self.state = EmulatorState(**options)
        self.app = build_app(self.state)
        self._runner: web.AppRunner | None = None

    # lifecycle ---------------------------------------------------------------------------
    async def start(self) -> EmulatorServer:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> EmulatorServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # addresses ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:41234 (anthropic and google-genai base_url)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def openai_url(self) -> str:
        """base_url for the openai SDK (…/v1)."""
        return self.url + "/v1"

    @property
    def anthropic_url(self) -> str:
        return self.url

    @property
    def gemini_url(self) -> str:
        return self.url

    # state -------------------------------------------------------------------------------
    @property
    def faults(self) -> FaultBook:
        return self.state.faults

    @property
    def script(self) -> Script:
        return self.state.script

    def fault(self, **kwargs: Any) -> Fault:
        """Shorthand for `faults.add(Fault(**kwargs))`."""
        return self.state.faults.add(Fault(**kwargs))

    def reply(self, reply: Reply | str, **match: Any) -> None:
        """Shorthand for `script.when(reply, **match)`."""
        self.state.script.when(reply, **match)

    def requests(self, provider: str | None = None, model: str | None = None) -> list[RecordedRequest]:
        return self.state.log.items(provider, model)

    def count(self, provider: str | None = None, model: str | None = None) -> int:
        return self.state.log.count(provider, model)

    def clear_requests(self) -> None:
        self.state.log.clear()

    def reset(self) -> None:
        self.state.reset()
