"""OpenTelemetry from the sidecar with in-memory exporters: spans, attributes, metrics, configuration."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1 import ModelRoute, Provider
from modelroute.sidecar.errors import FailureKind, UpstreamError
from modelroute.sidecar.metrics import telemetry
from modelroute.sidecar.metrics.telemetry import Telemetry, from_env, server_of

from .conftest import FakeAdapters, Running, config

Start = Callable[..., Awaitable[Running]]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture
def otel() -> tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]:
    spans = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    return Telemetry(tp, MeterProvider(metric_readers=[reader])), spans, reader


def _metrics(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out.setdefault(m.name, []).extend(m.data.data_points)
    return out


async def test_server_and_client_spans_follow_the_conventions(
        start: Start, adapters: FakeAdapters, otel: tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]) -> None:
    tel, spans, reader = otel
    sc = await start(config(weight=100, run="rev.0"), telemetry=tel)
    adapters["new"].text = "SECRET-COMPLETION"
    status, _, _ = await sc.chat(headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01"},
                                 messages=[{"role": "user", "content": "SECRET-PROMPT"}])
    assert status == 200
    done = spans.get_finished_spans()
    server = next(s for s in done if s.kind is SpanKind.SERVER)
    client = next(s for s in done if s.kind is SpanKind.CLIENT)
    assert server.name == "POST /v1/chat/completions"
    assert format(server.context.trace_id, "032x") == TRACE_ID and server.parent is not None
    assert format(server.parent.span_id, "016x") == PARENT                     # the app's traceparent continues
    assert client.parent is not None and client.parent.span_id == server.context.span_id
    assert client.context.trace_id == server.context.trace_id
    a = dict(client.attributes or {})
    canary_rev = sc.state.current().routes["classify"].canary.route.revision  # type: ignore[union-attr]
    assert client.name == "chat gpt-4.1-mini"
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4.1-mini" and a["gen_ai.response.model"] == "gpt-4.1-mini"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (10, 2)
    assert a["modelroute.cost.usd"] == pytest.approx((10 * 0.40 + 2 * 1.60) / 1e6)  # built-in gpt-4.1-mini price
    assert "gen_ai.usage.cache_read.input_tokens" not in a  # nothing cached: no cache attributes
    assert a["server.address"] == "api.openai.com" and a["server.port"] == 443
    assert a["modelroute.route"] == "classify" and a["modelroute.revision"] == canary_rev
    assert a["modelroute.variant"] == "canary" and a["modelroute.fallback.hop"] == 0
    assert "error.type" not in a and client.status.status_code is StatusCode.UNSET
    assert client.start_time is not None and client.end_time is not None and client.end_time >= client.start_time
    s = dict(server.attributes or {})
    assert s["http.response.status_code"] == 200 and s["modelroute.variant"] == "canary"
    assert s["modelroute.revision"] == canary_rev and s["modelroute.target"] == "new"
    dump = json.dumps([json.loads(x.to_json()) for x in done])
    assert "SECRET-PROMPT" not in dump and "SECRET-COMPLETION" not in dump
    m = _metrics(reader)
    (duration,) = m["gen_ai.client.operation.duration"]
    assert duration.count == 1 and duration.attributes["modelroute.variant"] == "canary"
    kinds = {p.attributes["gen_ai.token.type"]: p.sum for p in m["gen_ai.client.token.usage"]}
    assert kinds == {"input": 10, "output": 2}


async def test_failed_attempts_and_fallback_hops(
        start: Start, adapters: FakeAdapters, otel: tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]) -> None:
    from modelroute.api.config import SidecarConfig
    from modelroute.api.v1alpha1 import ModelRoute

    tel, spans, reader = otel
    doc = {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "c"},
           "spec": {"route": "classify", "timeoutSeconds": 5, "targets": [
               {"name": "first", "provider": "anthropic", "model": "claude-haiku-4-5", "apiKey": {"env": "KEY_A"},
                "baseUrl": "http://127.0.0.1:9/anthropic"},
               {"name": "second", "provider": "gemini", "model": "gemini-2.5-flash", "apiKey": {"env": "KEY_B"},
                "pricing": {"inputPerMillion": 1, "outputPerMillion": 4}}]}}
    sc = await start(SidecarConfig(routes=[ModelRoute.model_validate(doc)]), telemetry=tel)
    adapters["first"].error = UpstreamError(FailureKind.RATE_LIMITED, "slow down", 429)
    status, _, _ = await sc.chat()
    assert status == 200
    clients = sorted((s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    first, second = (dict(s.attributes or {}) for s in clients)
    assert first["gen_ai.provider.name"] == "anthropic" and first["error.type"] == "rate_limited"
    assert (first["server.address"], first["server.port"]) == ("127.0.0.1", 9)
    assert clients[0].status.status_code is StatusCode.ERROR and first["modelroute.fallback.hop"] == 0
    assert second["gen_ai.provider.name"] == "gcp.gemini" and second["modelroute.fallback.hop"] == 1
    assert second["server.address"] == "generativelanguage.googleapis.com" and "error.type" not in second
    assert first["modelroute.variant"] == "stable" and "modelroute.revision" in first
    assert "modelroute.cost.usd" not in first, "no usage, no cost"
    assert second["modelroute.cost.usd"] == pytest.approx((10 * 1 + 2 * 4) / 1e6)  # the route's pricing wins
    errors = [p for p in _metrics(reader)["gen_ai.client.operation.duration"] if p.attributes.get("error.type")]
    assert len(errors) == 1 and errors[0].attributes["error.type"] == "rate_limited"


async def test_a_target_skipped_for_its_window_is_an_event_on_the_server_span(
        start: Start, adapters: FakeAdapters, otel: tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]) -> None:
    from modelroute.api.config import SidecarConfig
    from modelroute.api.v1alpha1 import ModelRoute

    tel, spans, _ = otel
    doc = {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "c"},
           "spec": {"route": "classify", "targets": [
               {"name": "first", "provider": "openai", "model": "gpt-4o-mini", "apiKey": {"env": "KEY_A"},
                "when": {"minInputTokens": 100_000}},
               {"name": "second", "provider": "gemini", "model": "gemini-2.5-flash", "apiKey": {"env": "KEY_B"}}]}}
    sc = await start(SidecarConfig(routes=[ModelRoute.model_validate(doc)]), telemetry=tel)
    status, _, _ = await sc.chat()
    assert status == 200
    finished = spans.get_finished_spans()
    clients = [dict(s.attributes or {}) for s in finished if s.kind is SpanKind.CLIENT]
    assert [c["modelroute.target"] for c in clients] == ["second"], "no call, no client span"
    server = next(s for s in finished if s.kind is SpanKind.SERVER)
    events = [dict(e.attributes or {}) for e in server.events if e.name == "modelroute.target.skipped"]
    assert events == [{"modelroute.target": "first", "gen_ai.request.model": "gpt-4o-mini", "error.type": "input_size"}]


async def test_mirror_attempts_are_traced_as_mirror(
        start: Start, adapters: FakeAdapters, otel: tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]) -> None:
    import asyncio

    tel, spans, _ = otel
    sc = await start(config(mirror=100), telemetry=tel)
    await sc.chat(stream=True)
    await asyncio.wait_for(sc.state.mirrors.drained(), 10)  # the copy compared: both attempts are over
    variants = sorted(str((s.attributes or {}).get("modelroute.variant")) for s in spans.get_finished_spans()
                      if s.kind is SpanKind.CLIENT)
    assert variants == ["mirror", "stable"]
    stable = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT
                  and (s.attributes or {}).get("modelroute.variant") == "stable")
    assert (stable.attributes or {})["modelroute.streamed"] is True


def test_disabled_without_an_endpoint_or_when_told() -> None:
    assert from_env({}) is None
    assert from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}) is None
    assert from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none",
                     "OTEL_METRICS_EXPORTER": "none"}) is None
    assert from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) is None


def test_endpoints_from_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    built = Telemetry(None, None)
    monkeypatch.setattr(telemetry, "build", lambda **kw: seen.update(kw) or built)
    assert from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}) is built
    assert seen == {"traces_endpoint": "http://collector:4318/v1/traces", "metrics_endpoint": "http://collector:4318/v1/metrics"}
    from_env({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/x", "OTEL_METRICS_EXPORTER": "none"})
    assert seen == {"traces_endpoint": "http://t:1/x", "metrics_endpoint": None}


def test_build_names_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    tel = telemetry.build(traces_endpoint="http://127.0.0.1:9/v1/traces", metrics_endpoint=None)
    try:
        assert tel._tp is not None
        assert tel._tp.resource.attributes["service.name"] == "modelroute-sidecar"  # type: ignore[attr-defined]
    finally:
        tel.shutdown()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout-sidecar")
    tel = telemetry.build(traces_endpoint="http://127.0.0.1:9/v1/traces", metrics_endpoint=None)
    try:
        assert tel._tp.resource.attributes["service.name"] == "checkout-sidecar"  # type: ignore[union-attr, attr-defined]
    finally:
        tel.shutdown()


def test_server_of() -> None:
    assert server_of(Provider.OPENAI, None) == ("api.openai.com", 443)
    assert server_of(Provider.OPENAI_COMPATIBLE, "http://vllm.local:8000/v1") == ("vllm.local", 8000)
    assert server_of(Provider.ANTHROPIC, "https://gw.example.com") == ("gw.example.com", 443)


async def test_content_is_recorded_only_when_the_route_opts_in(
        start: Start, adapters: FakeAdapters, otel: tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]) -> None:
    from modelroute.api.config import SidecarConfig
    from modelroute.api.v1alpha1 import ModelRoute

    from .conftest import spec

    tel, spans, _ = otel
    opted = spec("classify", "old", "gpt-4o-mini", telemetry={"recordContent": True})
    route = ModelRoute.model_validate({"metadata": {"name": "classifier"}, "spec": opted.wire()})
    sc = await start(SidecarConfig(routes=[route]), telemetry=tel)
    adapters["old"].text = "OPTED-COMPLETION"
    status, _, _ = await sc.chat(messages=[{"role": "user", "content": "OPTED-PROMPT"}])
    assert status == 200
    server = next(s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER)
    attrs = dict(server.attributes or {})
    assert "OPTED-PROMPT" in str(attrs["gen_ai.input.messages"])
    assert "OPTED-COMPLETION" in str(attrs["gen_ai.output.messages"])


async def test_embeddings_have_a_server_span_over_their_attempt(
        start: Start, adapters: FakeAdapters, otel: tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]) -> None:
    tel, spans, _ = otel
    route = ModelRoute.model_validate({"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "e"},
                                      "spec": {"route": "e", "targets": [{"name": "emb", "provider": "openai",
                                               "model": "text-embedding-3-small", "apiKey": {"env": "KEY_A"}}]}})
    sc = await start(SidecarConfig(routes=[route]), telemetry=tel)
    async with sc.http.post(sc.sidecar.inbound_url + "/v1/embeddings", json={"model": "e", "input": ["a", "b"]},
                            headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01"}) as r:
        assert r.status == 200
        assert [len(d["embedding"]) for d in (await r.json())["data"]] == [2, 2]
    done = spans.get_finished_spans()
    server = next(s for s in done if s.kind is SpanKind.SERVER)
    client = next(s for s in done if s.kind is SpanKind.CLIENT)
    assert server.name == "POST /v1/embeddings" and format(server.context.trace_id, "032x") == TRACE_ID
    assert client.parent is not None and client.parent.span_id == server.context.span_id
    a = dict(client.attributes or {})
    assert client.name == "embeddings text-embedding-3-small" and a["gen_ai.operation.name"] == "embeddings"
    assert a["gen_ai.usage.input_tokens"] == 4 and a["modelroute.cost.usd"] == pytest.approx(4 * 0.02 / 1e6)


async def test_cached_tokens_on_the_client_span(
        start: Start, adapters: FakeAdapters, otel: tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]) -> None:
    tel, spans, _ = otel
    sc = await start(config(weight=100, run="rev.0"), telemetry=tel)
    adapters["new"].usage = {"prompt_tokens": 2000, "completion_tokens": 2, "total_tokens": 2002,
                             "prompt_tokens_details": {"cached_tokens": 1500, "cache_write_tokens": 400}}
    status, _, _ = await sc.chat(messages=[{"role": "user", "content": "hi"}])
    assert status == 200
    a = dict(next(s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT).attributes or {})
    assert a["gen_ai.usage.input_tokens"] == 2000
    assert (a["gen_ai.usage.cache_read.input_tokens"], a["gen_ai.usage.cache_creation.input_tokens"]) == (1500, 400)
    # gpt-4.1-mini: $0.40 input, $0.10 cached input, no write price (the input price), $1.60 output
    assert a["modelroute.cost.usd"] == pytest.approx((100 * 0.40 + 1500 * 0.10 + 400 * 0.40 + 2 * 1.60) / 1e6)
