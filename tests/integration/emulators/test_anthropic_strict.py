"""The Anthropic emulator refuses what the real Messages API refuses: unknown top-level fields,
sampling params under ``anthropic-version: 2026-10-21``, the per-model rules under 2023-06-01.

Each refusal is a 400 ``invalid_request_error`` in Anthropic's envelope, which the real
anthropic SDK raises as ``BadRequestError``.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import anthropic
import pytest

from modelroute.testing.emulators import EmulatorServer

from .conftest import KEY

BASE: dict[str, Any] = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


async def _post(emu: EmulatorServer, body: dict[str, Any], version: str) -> tuple[int, Any]:
    headers = {"x-api-key": KEY, "anthropic-version": version}
    async with aiohttp.ClientSession() as http, http.post(emu.url + "/v1/messages", json=body, headers=headers) as r:
        return r.status, await r.json()


@pytest.mark.parametrize(("extra", "version", "message"), [
    ({"extra_body": {"temperature": 0.2}}, "2023-06-01", "extra_body: Extra inputs are not permitted"),
    ({"extra_body": {"temperature": 0.2}}, "2026-10-21", "extra_body: Extra inputs are not permitted"),
    ({"temperature": 1.0}, "2026-10-21", "temperature: Extra inputs are not permitted"),
    ({"top_p": 0.9}, "2026-10-21", "top_p: Extra inputs are not permitted"),
    ({"top_k": 5}, "2026-10-21", "top_k: Extra inputs are not permitted"),
    ({"frequency_penalty": 0.5}, "2023-06-01", "frequency_penalty: Extra inputs are not permitted"),
    ({"temperature": 0.5, "top_p": 0.9}, "2023-06-01", "top_p: claude-haiku-4-5 (Claude 4 and later) refuses temperature and top_p together"),
    ({"model": "claude-opus-5", "temperature": 0.5}, "2023-06-01",
     "temperature: claude-opus-5 (released after Claude Opus 4.6) accepts only temperature 1.0"),
])
async def test_refused_in_anthropic_envelope(emu: EmulatorServer, extra: dict[str, Any], version: str, message: str) -> None:
    status, body = await _post(emu, {**BASE, **extra}, version)
    assert status == 400
    assert body == {"type": "error", "error": {"type": "invalid_request_error", "message": message}}


@pytest.mark.parametrize("extra", [
    {"temperature": 0.5}, {"top_p": 0.9}, {"top_k": 5},
    {"model": "claude-opus-5", "temperature": 1.0},
    {"model": "claude-3-5-haiku", "temperature": 0.5, "top_p": 0.9},  # before Claude 4: both together are fine
])
async def test_legacy_version_accepts_what_the_model_allows(emu: EmulatorServer, extra: dict[str, Any]) -> None:
    status, body = await _post(emu, {**BASE, **extra}, "2023-06-01")
    assert status == 200, body


async def test_unknown_version_is_refused(emu: EmulatorServer) -> None:
    status, body = await _post(emu, BASE, "2099-01-01")
    assert status == 400 and "anthropic-version" in body["error"]["message"]


async def test_the_real_sdk_sees_a_bad_request(anth: anthropic.AsyncAnthropic) -> None:
    """What the sidecar used to send: the SDK's default version, temperature in extra_body -> on the wire."""
    with pytest.raises(anthropic.BadRequestError) as ei:
        await anth.messages.create(**BASE, extra_body={"temperature": 0.2})
    assert ei.value.status_code == 400
    assert "temperature: Extra inputs are not permitted" in str(ei.value)
    # The SDK's own request, with nothing extra, passes.
    message = await anth.messages.create(**BASE)
    assert message.content[0].type == "text"
