"""Every SDK as the app x every provider behind x streaming or not, on a route with an output contract.

The plain matrix (no contract) is in ``tests/integration/sidecar`` (``test_providers.py`` for the
openai SDK, ``test_native_apis.py`` for anthropic and google-genai). Here the route declares
labels: the small model answers in prose, the sidecar checks and normalises the answer, and
every app receives the bare label in its own protocol, streamed (a checked answer is
replayed) or not.
"""

from __future__ import annotations

import anthropic
import openai
import pytest
from google import genai

from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.sidecars import route, target

from .conftest import PROVIDERS, Running, Start

SDKS = ["openai", "anthropic", "google-genai"]
LABELS = ["billing", "shipping", "other"]
PROSE = "Sure! The label is: **Shipping**."


async def ask(sc: Running, sdk: str, stream: bool, text: str) -> str:
    if sdk == "openai":
        oa = openai.AsyncOpenAI(base_url=sc.url + "/v1", api_key="x", max_retries=0)
        messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": text}]
        try:
            if not stream:
                r = await oa.chat.completions.create(model="labels", messages=messages)
                return r.choices[0].message.content or ""
            out = ""
            async for chunk in await oa.chat.completions.create(model="labels", messages=messages, stream=True):
                if chunk.choices and chunk.choices[0].delta.content:
                    out += chunk.choices[0].delta.content
            return out
        finally:
            await oa.close()
    if sdk == "anthropic":
        an = anthropic.AsyncAnthropic(base_url=sc.url, api_key="x", max_retries=0)
        try:
            if not stream:
                m = await an.messages.create(model="labels", max_tokens=64, messages=[{"role": "user", "content": text}])
                return "".join(b.text for b in m.content if b.type == "text")
            out = ""
            async with an.messages.stream(model="labels", max_tokens=64, messages=[{"role": "user", "content": text}]) as s:
                async for t in s.text_stream:
                    out += t
                final = await s.get_final_message()
            assert final.stop_reason == "end_turn"
            return out
        finally:
            await an.close()
    g = genai.Client(api_key="x", http_options={"base_url": sc.url})
    if not stream:
        resp = await g.aio.models.generate_content(model="labels", contents=text)
        return resp.text or ""
    chunks = [c async for c in await g.aio.models.generate_content_stream(model="labels", contents=text)]
    return "".join(c.text or "" for c in chunks)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("sdk", SDKS)
async def test_every_sdk_every_provider_gets_the_checked_label(emu: EmulatorServer, start: Start, sdk: str, provider: str,
                                                               stream: bool) -> None:
    sc = await start([route("labels", [target(emu, provider)], output={"labels": LABELS})])
    emu.reply(PROSE, contains="parcel")
    assert await ask(sc, sdk, stream, "my parcel never arrived") == "shipping"
    assert emu.count(provider) == 1
    sent = emu.requests(provider)[0]
    assert "shipping" in str(sent.body)          # the labels were put in the prompt
    assert sent.stream is False                  # a contract is checked on the whole answer, then replayed
    stats = (await sc.stats())["routes"]["labels"]
    assert stats["output"]["valid"] == 1 and stats["requests"] == 1
