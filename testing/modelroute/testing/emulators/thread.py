"""Run an emulator on its own event loop in a daemon thread, for synchronous code.

    with EmulatorThread() as emu:      # emu is the EmulatorServer (url, faults, requests...)
        openai.OpenAI(base_url=emu.openai_url, api_key="k").chat.completions.create(...)

It shares the GIL with the caller: benchmarks should run the CLI in its own process.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any

from .server import EmulatorServer


class EmulatorThread:
    def __init__(self, **server_kwargs: Any) -> None:
        self.server = EmulatorServer(**server_kwargs)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> EmulatorServer:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.server.start())
            except BaseException as exc:  # reported to the starting thread
                self._error = exc
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.server.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="modelroute-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if self._error is not None:
            raise self._error
        return self.server

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
