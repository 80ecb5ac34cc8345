"""The sidecar exports traces and metrics to a real OpenTelemetry Collector (OTLP/HTTP in, file out).

The collector is the one built with the official collector builder; the app is the real
OpenAI SDK sending a W3C ``traceparent``; providers are the local emulators. The exported
file must hold a SERVER span continuing the app's trace, CLIENT spans per attempt with the
GenAI attributes, both GenAI metrics, and never the prompt or the completion text.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest

from modelroute.api.config import CanaryServing, SidecarConfig
from modelroute.api.v1alpha1 import ModelRoute, ModelRouteSpec
from modelroute.api.v1alpha1.strategy import revision_of
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.metrics import telemetry
from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState
from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.otelcol import Collector, Span

ENV = {"KEY_OPENAI": "sk-openai-test", "KEY_ANTHROPIC": "sk-ant-test-SECRETKEY"}
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
APP_SPAN = "b7ad6b7169203331"
PROMPT = "zebra-quasar-prompt-7731"     # unique words: found anywhere in the export = a leak
SERVER, CLIENT = 2, 3


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    with Collector() as col:
        yield col


@pytest.fixture
async def emu() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer() as server:
        yield server


def _spec(emu: EmulatorServer, *targets: tuple[str, str, str]) -> ModelRouteSpec:
    out = []
    for name, provider, model in targets:
        base = emu.openai_url if provider == "openai" else emu.url
        out.append({"name": name, "provider": provider, "model": model, "baseUrl": base,
                    "apiKey": {"env": f"KEY_{provider.upper()}"}})
    return ModelRouteSpec.model_validate({"route": "classify", "targets": out, "timeoutSeconds": 10,
                                          "prompt": {"version": "v7", "system": "You label tickets."}})


async def test_traces_and_metrics_reach_the_collector_without_content(
        collector: Collector, emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout-modelroute")
    tel = telemetry.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint})
    assert tel is not None
    # Stable: anthropic fails once (429) and falls back to openai; canary: openai, mirrored 100%.
    stable = _spec(emu, ("haiku", "anthropic", "claude-haiku-4-5"), ("mini", "openai", "gpt-4o-mini"))
    canary = _spec(emu, ("four-o", "openai", "gpt-4o"))
    cfg = SidecarConfig(
        routes=[ModelRoute.model_validate({"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute",
                                           "metadata": {"name": "classifier"}, "spec": stable.wire()})],
        canaries=[CanaryServing(route="classify", revision=revision_of(canary), run_id="r.0", spec=canary, mirror=100)])
    emu.fault(kind="status", status=429, provider="anthropic", times=1)
    state = SidecarState(keys=KeyResolver(environ=ENV), telemetry=tel)
    await state.apply(cfg, source="file")
    traceparent = f"00-{TRACE_ID}-{APP_SPAN}-01"
    async with Sidecar(state, AuthSettings(admin_token="t"), grace_seconds=2) as sc:
        client = openai.AsyncOpenAI(base_url=sc.inbound_url + "/v1", api_key="x", max_retries=0)
        resp = await client.chat.completions.create(
            model="classify", messages=[{"role": "user", "content": PROMPT}], extra_headers={"traceparent": traceparent})
        assert PROMPT in (resp.choices[0].message.content or "")      # the emulator echoes it: it is in the answer
        stream = await client.chat.completions.create(
            model="classify", messages=[{"role": "user", "content": PROMPT + " again"}], stream=True)
        async for _ in stream:
            pass
        await client.close()
        await asyncio.wait_for(state.mirrors.drained(), 10)
    await asyncio.to_thread(tel.shutdown)   # flush spans and metrics

    spans = collector.wait_for_spans(lambda s: sum(x.kind == CLIENT for x in s) >= 5)
    mine = [s for s in spans if s.resource.get("service.name") == "checkout-modelroute"]
    servers = [s for s in mine if s.kind == SERVER]
    clients = [s for s in mine if s.kind == CLIENT]
    assert len(servers) == 2, [s.name for s in mine]

    first = next(s for s in servers if s.trace_id == TRACE_ID)
    assert first.parent_span_id == APP_SPAN                                # the app's trace continues
    assert first.name == "POST /v1/chat/completions"
    assert first.attributes["http.response.status_code"] == 200
    assert first.attributes["modelroute.route"] == "classify" and first.attributes["modelroute.variant"] == "stable"
    assert first.attributes["modelroute.prompt.version"] == "v7"

    children = [c for c in clients if c.trace_id == TRACE_ID]
    assert all(c.parent_span_id == first.span_id for c in children)
    by_variant: dict[str, list[Span]] = {}
    for c in children:
        by_variant.setdefault(c.attributes["modelroute.variant"], []).append(c)
    failed, answered = sorted(by_variant["stable"], key=lambda c: c.attributes["modelroute.fallback.hop"])
    assert failed.name == "chat claude-haiku-4-5" and failed.attributes["error.type"] == "rate_limited"
    assert failed.attributes["gen_ai.provider.name"] == "anthropic" and failed.status.get("code") == 2  # ERROR
    assert answered.name == "chat gpt-4o-mini" and answered.attributes["modelroute.fallback.hop"] == 1
    a = answered.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini" and a["gen_ai.response.model"].startswith("gpt-4o-mini")
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    expected_usd = (a["gen_ai.usage.input_tokens"] * 0.15 + a["gen_ai.usage.output_tokens"] * 0.60) / 1e6
    assert a["modelroute.cost.usd"] == pytest.approx(expected_usd)   # built-in gpt-4o-mini price x usage
    assert "modelroute.cost.usd" not in failed.attributes              # a 429 reports no usage: no cost
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == emu.port
    assert a["modelroute.route"] == "classify" and a["modelroute.revision"] == revision_of(stable)
    assert a["modelroute.prompt.version"] == "v7" and "error.type" not in a
    (mirror,) = by_variant["mirror"]                                      # the shadow copy, same trace
    assert mirror.name == "chat gpt-4o" and mirror.attributes["modelroute.revision"] == revision_of(canary)

    # The streamed request started a trace of its own (no traceparent) with its own client spans.
    other = next(s for s in servers if s.trace_id != TRACE_ID)
    assert not other.parent_span_id
    assert any(c.parent_span_id == other.span_id and c.attributes.get("modelroute.streamed") for c in clients)

    metrics = collector.wait_for_metrics(
        lambda ms: {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"} <= {m.name for m in ms})
    named = {m.name: m for m in metrics if m.resource.get("service.name") == "checkout-modelroute"}
    duration, tokens = named["gen_ai.client.operation.duration"], named["gen_ai.client.token.usage"]
    assert duration.unit == "s" and tokens.unit == "{token}"
    points: list[dict[str, Any]] = duration.points
    assert sum(int(p["count"]) for p in points) >= 5
    assert {p["attrs"]["modelroute.variant"] for p in points} == {"stable", "mirror"}
    assert any(p["attrs"].get("error.type") == "rate_limited" for p in points)
    assert {p["attrs"]["gen_ai.token.type"] for p in tokens.points} == {"input", "output"}
    assert all(p["attrs"]["modelroute.route"] == "classify" for p in tokens.points)

    export = collector.raw_text()
    assert PROMPT not in export and "zebra" not in export                # no prompt, no completion
    assert "You label tickets" not in export                            # no system prompt either
    assert "SECRETKEY" not in export and "sk-openai-test" not in export  # no keys
