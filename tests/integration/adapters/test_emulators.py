"""The adapters against the shared provider emulators (modelroute.testing): wire formats and faults
as another implementation of the providers' documented APIs sees them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelroute.api.v1alpha1.spec import Target
from modelroute.sidecar.errors import FailureKind, UpstreamError
from modelroute.sidecar.providers.base import Adapter
from modelroute.sidecar.providers.registry import build_adapter
from modelroute.testing.emulators import EmulatorServer

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}
REQ: dict[str, Any] = {"model": "route", "messages": [{"role": "user", "content": "hi"}]}

FAULTS: list[tuple[dict[str, Any], FailureKind]] = [
    ({"kind": "status", "status": 429, "retry_after": 3}, FailureKind.RATE_LIMITED),
    ({"kind": "status", "status": 529}, FailureKind.OVERLOADED),
    ({"kind": "status", "status": 503}, FailureKind.SERVER),
    ({"kind": "status", "status": 400}, FailureKind.CLIENT),
    ({"kind": "reset"}, FailureKind.CONNECTION),
    ({"kind": "garbage"}, FailureKind.BAD_RESPONSE),
    ({"kind": "latency", "latency_ms": 3000}, FailureKind.TIMEOUT),
    ({"kind": "stream_cut", "after_chunks": 2}, FailureKind.CONNECTION),
]


@pytest.fixture
async def emu() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer() as server:
        yield server


def adapter_for(emu: EmulatorServer, provider: str) -> Adapter:
    url = {"openai": emu.openai_url, "anthropic": emu.anthropic_url, "gemini": emu.gemini_url}[provider]
    return build_adapter(Target(name="t", provider=provider, model=MODELS[provider], base_url=url,
                                api_key={"env": "K"}), lambda: "test-key-not-secret")


async def run(adapter: Adapter, stream: bool, attempt_timeout: float = 10.0) -> str:
    if stream:
        chunks = [c async for c in adapter.stream({**REQ, "stream": True}, timeout=attempt_timeout)]
        return "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    r = await adapter.complete(REQ, timeout=attempt_timeout)
    return str(r["choices"][0]["message"]["content"])


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("provider", list(MODELS))
async def test_emulated_providers(emu: EmulatorServer, provider: str, stream: bool) -> None:
    adapter = adapter_for(emu, provider)
    try:
        emu.faults.clear()
        assert await run(adapter, stream)
        for fault, kind in FAULTS:
            if fault["kind"] == "stream_cut" and not stream:
                continue
            emu.faults.clear()
            emu.fault(provider=provider, times=1, **fault)
            limit = 1.0 if fault["kind"] == "latency" else 10.0
            with pytest.raises(UpstreamError) as info:
                await run(adapter, stream, limit)
            assert info.value.kind is kind, (fault, info.value)
            if kind is FailureKind.RATE_LIMITED:
                assert info.value.retry_after == 3.0
        emu.faults.clear()
        assert await run(adapter, stream)  # the pool is still usable after every fault
    finally:
        emu.faults.clear()
        await adapter.aclose()
