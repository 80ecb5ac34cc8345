"""The emulator's own rate limit (issue 13): a per-key 60-s window of tokens and requests, 429 beyond it."""

from __future__ import annotations

import openai
import pytest

from modelroute.testing.emulators import EmulatorServer
from modelroute.testing.emulators.ratelimit import RateLimit, RateWindow

from .conftest import KEY


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_counts_tokens_per_minute_and_frees_them_a_minute_later() -> None:
    clock = Clock()
    w = RateWindow(RateLimit(tokens_per_minute=100), clock)
    assert w.admit(60).admitted
    clock.now += 30
    v = w.admit(50)
    assert not v.admitted and v.retry_after == 30.0
    assert v.headers["x-ratelimit-remaining-tokens"] == "40" and v.headers["x-ratelimit-limit-tokens"] == "100"
    assert w.admit(40).admitted          # exactly the limit
    clock.now += 30                      # the first 60 leave the window
    assert w.admit(60).admitted and not w.admit(1).admitted
    assert w.refused == 2
    assert not w.admit(101).admitted     # never fits
    assert w.admit(101).retry_after == float("inf")


def test_window_counts_requests_per_minute() -> None:
    clock = Clock()
    w = RateWindow(RateLimit(requests_per_minute=2), clock)
    assert w.admit(1).admitted and w.admit(1).admitted
    v = w.admit(1)
    assert not v.admitted and v.retry_after == 60.0 and v.headers["x-ratelimit-remaining-requests"] == "0"


async def test_the_sdk_sees_429_with_retry_after_beyond_the_tpm_window() -> None:
    async with EmulatorServer(rate_limit=RateLimit(tokens_per_minute=20)) as emu:
        other = openai.AsyncOpenAI(base_url=emu.openai_url, api_key="another-key", max_retries=0, timeout=5.0)
        oai = openai.AsyncOpenAI(base_url=emu.openai_url, api_key=KEY, max_retries=0, timeout=5.0)
        try:
            msg = [{"role": "user", "content": "one two three four"}]   # 4 in + 5 out ("[openai:...] one two three four")
            first = await oai.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=msg)  # type: ignore[arg-type]
            assert first.headers["x-ratelimit-remaining-tokens"] == "11"
            await oai.chat.completions.create(model="gpt-4o-mini", messages=msg)  # type: ignore[arg-type]  # 18 of 20
            with pytest.raises(openai.RateLimitError) as caught:
                await oai.chat.completions.create(model="gpt-4o-mini", messages=msg)  # type: ignore[arg-type]
            assert caught.value.response.headers["retry-after"] == "60"
            assert caught.value.response.headers["x-ratelimit-remaining-tokens"] == "2"
            # Another key has its own window.
            await other.chat.completions.create(model="gpt-4o-mini", messages=msg)  # type: ignore[arg-type]
            statuses = [r.status for r in emu.requests("openai")]
            assert statuses == [200, 200, 429, 200]
            assert [r.fault for r in emu.requests("openai")][2] == "rate_limit"
        finally:
            await oai.close()
            await other.close()
