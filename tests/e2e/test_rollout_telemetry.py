"""Issue 5, e2e 6: sidecars serving a canary export traces and metrics to a real OpenTelemetry Collector.

Real apiserver, operator and two sidecar processes (started by the kubelet player with
``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at the collector built with the official builder),
the emulator, the real openai SDK sending the ``traceparent`` of an app span. The rollout
holds at weight 50 so both revisions answer. The collector's output file must hold SERVER
spans continuing the app's traces, CLIENT spans with the GenAI and modelroute attributes for
both variants, both GenAI metrics, and never the user's prompt or the route's system prompt.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider

from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer
from modelroute.testing.otelcol import Collector, Span

from . import rollout_harness as rh
from .operator_harness import APP_PORT, apply, wait_for

pytestmark = pytest.mark.e2e

MARKER = "okapi-nebula-marker-5521"        # the user's prompt: found anywhere in the export = a leak
SYSTEM = "You are the walrus-ledger triage bot."  # the route's system prompt: must not leak either
SERVICE = "web-modelroute"
SERVER, CLIENT = 2, 3


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    (tmp_path / "otelcol").mkdir()
    with Collector(workdir=tmp_path / "otelcol") as col:
        yield col


def _route(env: rh.RolloutEnv, model: str, strat: dict[str, Any]) -> dict[str, Any]:
    obj = rh.route_with(env, model, strat)
    obj["spec"]["prompt"] = {"version": "v3", "system": SYSTEM}
    return obj


def _app_call(client: openai.OpenAI, tracer: Any) -> tuple[str, str, str]:
    """One request inside an app span; (trace id, app span id, answer)."""
    with tracer.start_as_current_span("app.handle") as span:
        headers: dict[str, str] = {}
        propagate.inject(headers)
        reply = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": MARKER}],
                                               extra_headers=headers)
        ctx = span.get_span_context()
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", reply.choices[0].message.content or ""


def test_canary_traces_reach_the_collector_without_prompt_text(
    cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path, collector: Collector,
) -> None:
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_SERVICE_NAME": SERVICE,
            "OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_METRIC_EXPORT_INTERVAL": "500"}
    strat = rh.strategy([{"weight": 50}, {"pause": {}}], deadline=None)
    with rh.rollout_env(cluster, namespace, kubelet, tmp_path, env=otel) as env:
        apply(env.cluster, env.ns, _route(env, rh.STABLE_MODEL, strat))
        ro = wait_for("the first revision to be stable", lambda: (r := rh.rollout(env)).get("phase") == "Healthy"
                      and r.get("stableRevision") and r, timeout=30)
        stable_rev = str(ro["stableRevision"])
        pods = list(env.pods.values())
        rh.wait_each(env, "to answer from the stable model", lambda h: rh.STABLE_MODEL in rh.answer(h), timeout=30)
        apply(env.cluster, env.ns, _route(env, rh.CANARY_MODEL, strat))
        ro = rh.History(env).until("weight 50, paused", lambda r: r.get("canaryRevision") not in (None, stable_rev)
                                   and r.get("phase") == "Paused" and (r.get("weights") or {}).get("canary") == 50)
        canary_rev = str(ro["canaryRevision"])
        wait_for("weight 50 on every sidecar", lambda: all(
            [(c["revision"], c["weight"]) for c in rh.canaries(h)] == [(canary_rev, 50)] for h in pods), timeout=10)

        tracer = TracerProvider().get_tracer("app")   # the app's own tracing (not exported)
        calls: list[tuple[str, str, str]] = []
        for h in pods:
            client = openai.OpenAI(base_url=f"http://{h.ip}:{APP_PORT}/v1", api_key="unused", max_retries=0, timeout=10)
            try:
                calls += [_app_call(client, tracer) for _ in range(12)]
            finally:
                client.close()
        answered = {rh.CANARY_MODEL if rh.CANARY_MODEL in text else rh.STABLE_MODEL for _, _, text in calls}
        assert answered == {rh.STABLE_MODEL, rh.CANARY_MODEL}   # 24 requests at 50%: both revisions answered
        assert all(MARKER in text for _, _, text in calls)  # the emulator echoes it: it was sent

        app_traces = {t: parent for t, parent, _ in calls}
        spans = collector.wait_for_spans(lambda s: sum(
            x.kind == CLIENT and x.trace_id in app_traces for x in s) >= len(calls), timeout=20)
        mine = [s for s in spans if s.resource.get("service.name") == SERVICE and s.trace_id in app_traces]

        servers = [s for s in mine if s.kind == SERVER]
        assert {s.trace_id for s in servers} == set(app_traces)
        for s in servers:                             # each app trace continues through the sidecar
            assert s.parent_span_id == app_traces[s.trace_id], s
            assert s.attributes["modelroute.route"] == "chat"
            assert s.attributes["http.response.status_code"] == 200

        clients = [s for s in mine if s.kind == CLIENT]
        by_variant: dict[str, list[Span]] = {}
        for c in clients:
            by_variant.setdefault(c.attributes["modelroute.variant"], []).append(c)
        assert {"stable", "canary"} <= set(by_variant), sorted(by_variant)
        server_ids = {s.span_id for s in servers}
        for variant, model, revision in (("stable", rh.STABLE_MODEL, stable_rev), ("canary", rh.CANARY_MODEL, canary_rev)):
            for c in by_variant[variant]:
                a = c.attributes
                assert c.parent_span_id in server_ids
                assert c.name == f"chat {model}"
                assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
                assert a["gen_ai.request.model"] == model and str(a["gen_ai.response.model"]).startswith(model)
                assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
                assert a["server.address"] == "127.0.0.1" and a["server.port"] == env.emu.port
                assert a["modelroute.route"] == "chat" and a["modelroute.revision"] == revision
                assert a["modelroute.fallback.hop"] == 0 and "error.type" not in a
                assert a["modelroute.prompt.version"] == "v3"

        def ours(ms: list[Any], name: str) -> list[Any]:
            return [m for m in ms if m.name == name and m.resource.get("service.name") == SERVICE]

        def variants(ms: list[Any]) -> set[str]:  # over every export of every pod (each pod exports its own)
            return {p["attrs"]["modelroute.variant"] for m in ours(ms, "gen_ai.client.operation.duration") for p in m.points}

        metrics = collector.wait_for_metrics(
            lambda ms: bool(ours(ms, "gen_ai.client.token.usage")) and {"stable", "canary"} <= variants(ms), timeout=20)
        durations, tokens = ours(metrics, "gen_ai.client.operation.duration"), ours(metrics, "gen_ai.client.token.usage")
        assert all(m.unit == "s" for m in durations) and all(m.unit == "{token}" for m in tokens)
        assert {"stable", "canary"} <= variants(metrics)
        token_points = [p for m in tokens for p in m.points]
        assert {p["attrs"]["gen_ai.token.type"] for p in token_points} == {"input", "output"}
        assert all(p["attrs"]["modelroute.route"] == "chat" for p in token_points)

    export = collector.raw_text()
    assert export.strip()
    assert MARKER not in export and "okapi" not in export        # no prompt, no (echoed) completion
    assert "walrus-ledger" not in export and SYSTEM not in export  # no system prompt
    assert "sk-e2e-test" not in export                            # no keys
