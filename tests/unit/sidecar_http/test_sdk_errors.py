"""Issue 14 item 4: the anthropic and google-genai SDKs parse every sidecar error, 500s included.

Each SDK must raise its own error class for the status, carrying the sidecar's message: so
the body must be that API's envelope, not OpenAI's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import pytest
from google import genai
from google.genai import errors as genai_errors

from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState


@pytest.fixture
async def sidecar(builder: Any, keys: Any, make_config: Any, make_doc: Any) -> AsyncIterator[Sidecar]:
    state = SidecarState(adapters=builder, keys=keys)
    await state.apply(make_config(make_doc("c", "classify")), source="file")
    async with Sidecar(state) as sc:
        yield sc


class BrokenTelemetry:
    def server_span(self, request: Any) -> Iterator[Any]:
        raise RuntimeError("boom")


def claude(sc: Sidecar) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=sc.inbound_url, api_key="x", max_retries=0)


def gemini(sc: Sidecar) -> genai.Client:
    return genai.Client(api_key="x", http_options={"base_url": sc.inbound_url,
                                                   "retry_options": {"attempts": 1}})


async def test_anthropic_sdk_raises_its_classes(sidecar: Sidecar) -> None:
    client = claude(sidecar)
    with pytest.raises(anthropic.BadRequestError) as bad:
        await client.messages.create(model="classify", max_tokens=5, extra_body={"system": [{"type": "text", "text": {}}]},
                                     messages=[{"role": "user", "content": "x"}])
    assert "system[0].text must be a string" in bad.value.message and bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as missing:
        await client.messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert "route 'nope' does not exist" in missing.value.message
    sidecar.state.telemetry = BrokenTelemetry()  # type: ignore[assignment]
    with pytest.raises(anthropic.InternalServerError) as internal:
        await client.messages.create(model="classify", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert "internal error in the modelroute sidecar" in internal.value.message
    assert internal.value.body == {"type": "error", "error": {"type": "api_error",
                                                              "message": "internal error in the modelroute sidecar (logged)"}}
    await client.close()


async def test_google_genai_sdk_raises_its_classes(sidecar: Sidecar) -> None:
    client = gemini(sidecar)
    with pytest.raises(genai_errors.ClientError) as bad:
        await client.aio.models.generate_content(model="classify", contents="x",
                                                 config={"http_options": {"extra_body": {"tools": 5}}})
    assert bad.value.code == 400 and bad.value.status == "INVALID_ARGUMENT"
    assert "tools must be a list" in (bad.value.message or "")
    with pytest.raises(genai_errors.ClientError) as missing:
        await client.aio.models.generate_content(model="nope", contents="x")
    assert missing.value.code == 404 and "route 'nope' does not exist" in (missing.value.message or "")
    sidecar.state.telemetry = BrokenTelemetry()  # type: ignore[assignment]
    with pytest.raises(genai_errors.ServerError) as internal:
        await client.aio.models.generate_content(model="classify", contents="x")
    assert internal.value.code == 500 and internal.value.status == "INTERNAL"
    assert "internal error" in (internal.value.message or "")
    await client.aio.aclose()
