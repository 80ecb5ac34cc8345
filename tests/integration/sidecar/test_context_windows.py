"""Context windows through the real sidecar and SDKs against the strict emulators.

The emulators enforce each model's window with the real API's 400 (``emulators/windows.py``);
the sidecar skips a target its registry says the request cannot fit, and falls through on a
provider's context-too-long 400 without tripping the breaker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from modelroute.api.v1alpha1.registry import ModelRegistry
from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.sidecars import MODELS, route, target

from .conftest import Running

Start = Callable[..., Awaitable[Running]]
PAIRS = [("openai", "anthropic"), ("anthropic", "gemini"), ("gemini", "openai")]
LONG: list[ChatCompletionMessageParam] = [{"role": "user", "content": "word " * 60}]
SHORT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "ping"}]


def small(provider: str, context: int) -> ModelRegistry:
    return ModelRegistry.model_validate({"windows": [
        {"provider": provider, "model": MODELS[provider], "contextWindow": context, "maxOutputTokens": 16}]})


async def outcomes(sc: Running) -> dict[str, dict[str, int]]:
    stats = await sc.stats()
    return {t: v["outcomes"] for t, v in stats["routes"]["r"]["targets"].items()}


@pytest.mark.parametrize(("primary", "backup"), PAIRS)
async def test_a_providers_context_400_falls_through_without_tripping_the_breaker(start: Start, primary: str,
                                                                                   backup: str) -> None:
    async with EmulatorServer(registry=small(primary, 50)) as emu:  # the provider's window: 50 tokens
        sc = await start([route("r", [target(emu, primary, "primary"), target(emu, backup, "backup")],
                                circuitBreaker={"failureThreshold": 1})])  # the sidecar knows the real window
        for _ in range(2):
            raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=LONG, max_tokens=8)
            assert raw.headers["x-modelroute-target"] == "backup"
        assert emu.count(primary) == 2, "failureThreshold 1: a blamed failure would have opened the breaker"
        raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=SHORT, max_tokens=8)
        assert raw.headers["x-modelroute-target"] == "primary"
        assert (await outcomes(sc))["primary"] == {"context_window": 2, "ok": 1}


@pytest.mark.parametrize(("primary", "backup"), PAIRS)
async def test_a_request_beyond_the_known_window_is_skipped_before_any_call(start: Start, primary: str,
                                                                            backup: str) -> None:
    async with EmulatorServer() as emu:
        sc = await start([route("r", [target(emu, primary, "primary"), target(emu, backup, "backup")])],
                         registry=small(primary, 50))
        raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=LONG, max_tokens=8)
        assert raw.headers["x-modelroute-target"] == "backup"
        assert emu.count(primary) == 0
        assert (await outcomes(sc))["primary"] == {"context_window": 1}


async def test_too_long_for_every_target_is_a_400_with_the_attempts(start: Start) -> None:
    async with EmulatorServer() as emu:
        sc = await start([route("r", [target(emu, "openai", "a"), target(emu, "gemini", "b")])],
                         registry=ModelRegistry.model_validate({"windows": [
                             {"provider": p, "model": MODELS[p], "contextWindow": 50, "maxOutputTokens": 16}
                             for p in ("openai", "gemini")]}))
        with pytest.raises(openai.BadRequestError) as caught:
            await sc.client.chat.completions.create(model="r", messages=LONG)
        assert caught.value.code == "context_length_exceeded"
        assert "context window of gemini-2.5-flash" in caught.value.message
        assert emu.count() == 0


async def test_the_emulator_enforces_the_builtin_window_as_openai_does() -> None:
    async with EmulatorServer() as emu:
        client = openai.AsyncOpenAI(base_url=emu.openai_url, api_key="k", max_retries=0)
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="gpt-4o-mini", max_tokens=1000,
                                                 messages=[{"role": "user", "content": "a " * 127_500}])
        await client.close()
        assert caught.value.code == "context_length_exceeded" and caught.value.param == "messages"
        assert "maximum context length is 128000 tokens" in caught.value.message
