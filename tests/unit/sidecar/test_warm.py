"""Adapters are warmed when built: the first request does not pay for the SDK's one-time work."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from modelroute.api.v1alpha1.spec import Target
from modelroute.sidecar.providers.build_send import SdkBuiltAdapter, _run_now
from modelroute.sidecar.providers.openai_anthropic import StainlessAdapter
from modelroute.sidecar.providers.registry import build_adapter

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}


def _target(provider: str) -> Target:
    return Target.model_validate({"name": provider, "provider": provider, "model": MODELS[provider],
                                  "baseUrl": "http://127.0.0.1:9", "apiKey": {"env": "K"}})


@pytest.mark.parametrize("provider", sorted(MODELS))
async def test_a_built_adapter_is_warm(provider: str) -> None:
    adapter = build_adapter(_target(provider), lambda: "sk-test")
    try:
        assert isinstance(adapter, SdkBuiltAdapter)
        assert adapter.warm() is True  # all of it ran without waiting
        proxies = adapter.transport._proxies
        assert len(proxies) == 2 if provider == "gemini" else len(proxies) == 1  # one URL per (plain, stream)
        builder: Any = getattr(adapter, "_builder", None)
        if provider != "gemini":
            assert builder.prepared is not None and builder.prepared_for == "sk-test"
    finally:
        await adapter.aclose()


async def test_a_key_that_cannot_be_read_leaves_the_work_to_the_first_request() -> None:
    calls: list[int] = []

    def flaky_key() -> str:  # read once by the client's construction, then gone (a rotating key file)
        calls.append(1)
        if len(calls) > 1:
            raise OSError("the key file is being replaced")
        return "sk-test"

    adapter = build_adapter(_target("openai"), flaky_key)  # building succeeds, warming gives up quietly
    try:
        assert isinstance(adapter, StainlessAdapter)
        assert len(calls) >= 2
        assert adapter._builder.prepared is None
    finally:
        await adapter.aclose()


async def test_run_now_gives_up_on_a_coroutine_that_waits() -> None:
    async def immediate() -> int:
        return 7

    ran_on: list[str] = []

    async def waits() -> int:
        try:
            await asyncio.sleep(0)
            ran_on.append("after the wait")
            return 1
        finally:
            ran_on.append("closed")

    assert _run_now(immediate()) == 7
    assert _run_now(waits()) is None
    assert ran_on == ["closed"]
