"""Params a target cannot take: the exact body on the wire, the anthropic-version header, and
the ``x-modelroute-dropped-params`` report (header, /stats, /metrics) through the real SDKs.

The anthropic emulator refuses what the real API refuses (``extra_body``, sampling params
under 2026-10-21, per-model rules under 2023-06-01), so every 200 here is also a body the
real API would accept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import pytest

from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.scrape import sample
from modelroute.testing.sidecars import route, target

from .conftest import Running

Start = Callable[..., Awaitable[Running]]
H = "x-modelroute-dropped-params"
MSG: Any = [{"role": "user", "content": "hello"}]


def _wire(emu: EmulatorServer) -> tuple[dict[str, Any], dict[str, str]]:
    req = emu.requests("anthropic")[-1]
    body = dict(req.body)
    body.pop("messages")
    return body, {k.lower(): v for k, v in req.headers.items()}


async def test_legacy_version_route_params_and_target_overrides_exact_wire(emu: EmulatorServer, start: Start) -> None:
    t = target(emu, "anthropic", model="claude-3-5-haiku", apiVersion="2023-06-01",
               params={"temperature": 0.4, "stop": ["STOP"]})
    sc = await start([route("r", [t], params={"temperature": 0.1, "topP": 0.8, "stop": ["END"], "maxTokens": 64})])
    raw = await sc.client.chat.completions.with_raw_response.create(
        model="r", messages=MSG, temperature=0.9, top_p=0.5, max_tokens=500)
    assert raw.http_response.status_code == 200 and H not in raw.headers
    body, headers = _wire(emu)
    assert body == {"model": "claude-3-5-haiku", "max_tokens": 64, "temperature": 0.4, "top_p": 0.8, "stop_sequences": ["STOP"]}
    assert headers["anthropic-version"] == "2023-06-01"


async def test_sdk_default_version_drops_app_sampling_params(emu: EmulatorServer, start: Start) -> None:
    t = target(emu, "anthropic", params={"maxTokens": 32})
    sc = await start([route("r", [t], params={"stop": ["END"], "maxTokens": 64})])
    raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=MSG, temperature=0.7, top_p=0.9)
    assert raw.headers[H] == "temperature,top_p"
    body, headers = _wire(emu)
    assert body == {"model": "claude-haiku-4-5", "max_tokens": 32, "stop_sequences": ["END"]}
    assert headers["anthropic-version"] == "2026-10-21"
    # Streams report it too, before the first byte.
    stream = await sc.client.chat.completions.with_raw_response.create(model="r", messages=MSG, temperature=0.2, stream=True)
    assert stream.headers[H] == "temperature"
    async for _ in stream.parse():  # a stream parses synchronously
        pass
    assert "temperature" not in emu.requests("anthropic")[-1].body
    stats = await sc.stats()
    assert stats["routes"]["r"]["targets"]["anthropic"]["droppedParams"] == {"temperature": 2, "top_p": 1}
    async with sc.http.get(sc.sidecar.admin_url + "/metrics") as r:
        metrics = await r.text()
    assert sample(metrics, "modelroute_dropped_params_total", route="r", target="anthropic", param="temperature") == 2


async def test_route_params_with_unsupported_params_drop(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("r", [target(emu, "anthropic")], params={"temperature": 0.1}, unsupportedParams="drop")])
    raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=MSG)
    assert raw.headers[H] == "temperature"
    body, _ = _wire(emu)
    assert "temperature" not in body and "extra_body" not in body


async def test_claude_4_takes_the_routes_temperature_and_drops_the_apps_top_p(emu: EmulatorServer, start: Start) -> None:
    t = target(emu, "anthropic", apiVersion="2023-06-01")
    sc = await start([route("r", [t], params={"temperature": 0.2})])
    raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=MSG, top_p=0.9, temperature=0.8)
    assert raw.headers[H] == "top_p"
    body, _ = _wire(emu)
    assert body["temperature"] == 0.2 and "top_p" not in body


async def test_openai_reasoning_model_takes_only_the_default_temperature(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("r", [target(emu, "openai", model="gpt-5.4-mini")])])
    raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=MSG, temperature=0.2, top_p=0.5)
    assert raw.headers[H] == "temperature,top_p"
    sent = emu.requests("openai")[-1].body
    assert "temperature" not in sent and "top_p" not in sent
    raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=MSG, temperature=1)
    assert H not in raw.headers and emu.requests("openai")[-1].body["temperature"] == 1


async def test_openai_targets_drop_top_k_and_send_max_completion_tokens(emu: EmulatorServer, start: Start) -> None:
    # The strict emulator refuses top_k ("Unrecognized request argument supplied") and, for reasoning
    # models, max_tokens: a 400 that never falls back. Both were on the wire before.
    sc = await start([route("r", [target(emu, "openai", model="gpt-5.4-mini")])])
    raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=MSG, max_tokens=12,
                                                                    extra_body={"top_k": 40})
    assert raw.http_response.status_code == 200 and raw.headers[H] == "top_k"
    sent = emu.requests("openai")[-1].body
    assert "top_k" not in sent and "max_tokens" not in sent and sent["max_completion_tokens"] == 12


async def test_anthropic_sdk_app_sees_the_dropped_params_header(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("r", [target(emu, "anthropic")])])
    app = anthropic.AsyncAnthropic(base_url=sc.sidecar.inbound_url, api_key="x", max_retries=0)
    try:
        raw = await app.messages.with_raw_response.create(model="r", max_tokens=16, messages=MSG,
                                                          extra_body={"temperature": 0.5, "top_p": 0.9})
    finally:
        await app.close()
    assert raw.headers[H] == "temperature,top_p"
    assert (await raw.parse()).content[0].type == "text"


@pytest.mark.parametrize(("spec", "field", "hint"), [
    ({"params": {"temperature": 0.1}}, "spec.params.temperature", "apiVersion: '2023-06-01'"),
    ({"params": {"topP": 0.5}}, "spec.params.topP", "unsupportedParams: drop"),
])
async def test_a_push_with_route_params_the_target_refuses_is_422(emu: EmulatorServer, start: Start, spec: Any,
                                                                  field: str, hint: str) -> None:
    sc = await start([route("ok", [target(emu, "openai")])])
    status, body = await sc.put_config([route("r", [target(emu, "anthropic")], **spec)])
    assert status == 422
    text = str(body)
    assert field in text and "target 'anthropic'" in text and hint in text and "remove" in text


async def test_the_trace_says_what_was_dropped(emu: EmulatorServer) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from modelroute.api.config import SidecarConfig
    from modelroute.api.v1alpha1 import ModelRoute
    from modelroute.sidecar.config.secrets import KeyResolver
    from modelroute.sidecar.metrics.telemetry import Telemetry
    from modelroute.sidecar.server.auth import AuthSettings
    from modelroute.sidecar.server.sidecar import Sidecar
    from modelroute.sidecar.server.state import SidecarState
    from modelroute.testing.sidecars import ENV

    spans = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    state = SidecarState(keys=KeyResolver(environ=ENV), telemetry=Telemetry(tp, MeterProvider()))
    await state.apply(SidecarConfig(routes=[ModelRoute.model_validate(route("r", [target(emu, "anthropic")]))]), source="file")
    async with Sidecar(state, AuthSettings(admin_token="t"), grace_seconds=2) as sc:
        import openai

        client = openai.AsyncOpenAI(base_url=sc.inbound_url + "/v1", api_key="x", max_retries=0)
        try:
            await client.chat.completions.create(model="r", messages=MSG, temperature=0.3)
        finally:
            await client.close()
    server = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER)
    assert (server.attributes or {})["modelroute.dropped_params"] == "temperature"


async def test_responses_target_drops_app_stop_and_n(emu: EmulatorServer, start: Start) -> None:
    """Regression: an app's ``stop`` (or ``n > 1``) on an ``api: responses`` target was a 400 that never fell back."""
    sc = await start([route("r", [target(emu, "openai", api="responses")])])
    raw = await sc.client.chat.completions.with_raw_response.create(model="r", messages=MSG, stop=["END"], n=2)
    assert raw.http_response.status_code == 200 and raw.headers[H] == "stop,n"
    assert raw.parse().choices[0].message.content == "[openai:gpt-4o-mini] hello"
    body = emu.requests("openai")[-1].body
    assert "stop" not in body and "n" not in body and body["input"] == [{"role": "user", "content": "hello"}]
    plain = await sc.client.chat.completions.with_raw_response.create(model="r", messages=MSG, n=1)
    assert H not in plain.headers
