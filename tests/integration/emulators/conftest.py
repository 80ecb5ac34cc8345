"""Fixtures: one emulator per test on an ephemeral port, and the three real SDK clients."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import TypeVar

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from modelroute.testing.emulators import EmulatorServer

KEY = "test-key-not-secret"
T = TypeVar("T")


@pytest.fixture
async def oai(emu: EmulatorServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=emu.openai_url, api_key=KEY, max_retries=0, timeout=5.0)
    yield client
    await client.close()


@pytest.fixture
async def anth(emu: EmulatorServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=emu.url, api_key=KEY, max_retries=0, timeout=5.0)
    yield client
    await client.close()


def gemini_client(url: str, timeout_ms: int = 5000) -> genai.Client:
    # attempts=1: no SDK retries, and no implicit 1-10 s sleep-and-retry on connection errors.
    return genai.Client(
        api_key=KEY,
        http_options=types.HttpOptions(
            base_url=url, timeout=timeout_ms, retry_options=types.HttpRetryOptions(attempts=1)
        ),
    )


@pytest.fixture
async def gem(emu: EmulatorServer) -> AsyncIterator[genai.Client]:
    client = gemini_client(emu.url)
    yield client
    await client.aio.aclose()


async def drain(stream: AsyncIterable[T], into: list[T] | None = None) -> list[T]:
    """Consume a stream, appending to `into` as it goes (so items before an error count)."""
    got = [] if into is None else into
    async for item in stream:
        got.append(item)
    return got
