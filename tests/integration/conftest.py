"""Fixtures shared by the integration suites: one provider emulator per test on an ephemeral port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from modelroute.testing.emulators.server import EmulatorServer


@pytest.fixture
async def emu() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer() as server:
        yield server
