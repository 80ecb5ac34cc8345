"""Evidence counters: the operator's wire form, run bookkeeping, Prometheus text and answer checks."""

from __future__ import annotations

from modelroute.api.config import CanaryServing
from modelroute.api.stats import SidecarStats
from modelroute.operator.rollout.counters import Counters, evidence_from_stats
from modelroute.sidecar.errors import Attempt, DeadlineExceeded, RouteFailed, UpstreamError, failure_class
from modelroute.sidecar.errors import FailureKind as K
from modelroute.sidecar.metrics.stats import BUCKETS
from modelroute.sidecar.output.answer import answer_of as judged_text
from modelroute.sidecar.output.answer import output_valid
from modelroute.sidecar.rollout.evidence import (
    Evidence,
    StreamText,
    VariantEvidence,
    wants_json,
)
from modelroute.testing.scrape import sample, scrape

from .conftest import spec


def _canary(run: str, weight: int = 5, mirror: int = 0, route: str = "classify") -> CanaryServing:
    return CanaryServing(route=route, revision=run.split(".")[0], run_id=run, spec=spec(route, "new", "gpt-4.1-mini"),
                         weight=weight, mirror=mirror)


USAGE = {"prompt_tokens": 100, "completion_tokens": 4, "total_tokens": 104}


def test_variant_counters_round_trip_through_the_operator_parser() -> None:
    v = VariantEvidence()
    v.answered(0.2, USAGE, 0.001, True)
    v.answered(0.03, USAGE, None, False)
    v.failed("server_error")
    v.failed("cancelled")
    v.compare(True)
    v.compare(False)
    c = Counters.of(v.to_wire())
    assert c.requests == 3                              # the cancelled one is not a request
    assert dict(c.errors) == {"server_error": 1, "cancelled": 1} and c.failed == 1
    assert c.latency.bounds == BUCKETS and c.latency.count == 2 and abs(c.latency.sum - 0.23) < 1e-9
    assert (c.prompt_tokens, c.completion_tokens) == (200, 8)
    assert (c.cost_usd, c.priced) == (0.001, 1)
    assert (c.outputs_checked, c.outputs_valid, c.compared, c.agreed) == (2, 1, 2, 1)
    q = c.latency.quantile(0.95)
    assert q is not None and 0.1 < q <= 0.25


def test_stats_document_parses_with_evidence_from_stats() -> None:
    pods = {}
    for pod in ("a", "b"):
        ev = Evidence()
        ev.configure([_canary("rev1.0", mirror=100)])
        for _ in range(3):
            s = ev.variant("classify", "rev1.0", "stable")
            assert s is not None
            s.answered(0.01, USAGE, ev.cost("gpt-4o-mini", USAGE), True)
        c, m = ev.variant("classify", "rev1.0", "canary"), ev.variant("classify", "rev1.0", "mirror")
        assert c is not None and m is not None
        c.answered(0.02, USAGE, ev.cost("gpt-4.1-mini", USAGE), True)
        c.failed("timeout")
        m.answered(0.03, USAGE, None, True)
        m.compare(True)
        pods[pod] = SidecarStats.model_validate({"routes": {}, "rollouts": ev.as_json()})
    stable, canary = evidence_from_stats(pods, "classify", "rev1.0")
    assert stable.requests == 6 and stable.priced == 6 and stable.cost_usd > 0
    assert canary.requests == 6 and dict(canary.errors) == {"timeout": 2}   # canary live + mirror, both pods
    assert (canary.compared, canary.agreed) == (2, 2)
    # Another run id: this pod contributes nothing.
    assert evidence_from_stats(pods, "classify", "rev2.0") == (Counters(), Counters())


def test_runs_reset_on_a_new_run_id_and_survive_weight_changes() -> None:
    ev = Evidence()
    ev.configure([_canary("r1.0", weight=5)])
    v = ev.variant("classify", "r1.0", "canary")
    assert v is not None
    v.failed("timeout")
    ev.configure([_canary("r1.0", weight=25)])                 # next step: same run, counters kept
    assert ev.variant("classify", "r1.0", "canary") is v
    assert ev.as_json()["classify"]["weights"] == {"canary": 25, "mirror": 0}
    ev.configure([_canary("r1.1", weight=5)])                  # retry: fresh counters
    assert ev.variant("classify", "r1.0", "canary") is None    # a request on the old config records nothing
    fresh = ev.variant("classify", "r1.1", "canary")
    assert fresh is not None and fresh.requests == 0
    ev.configure([])                                           # promoted or aborted: last run kept, inactive
    doc = ev.as_json()["classify"]
    assert doc["run"] == "r1.1" and doc["active"] is False and doc["weights"] == {"canary": 0, "mirror": 0}
    assert set(doc["variants"]) == {"stable", "canary", "mirror"}


def test_prometheus_series() -> None:
    ev = Evidence()
    assert scrape(ev) == ""
    ev.configure([_canary("r1.0", weight=5, mirror=50)])
    v = ev.variant("classify", "r1.0", "canary")
    assert v is not None
    v.answered(0.02, USAGE, 0.5, True)
    v.failed("rate_limited")
    m = ev.variant("classify", "r1.0", "mirror")
    assert m is not None
    m.dropped += 3
    text = scrape(ev)
    lbl = {"route": "classify", "run": "r1.0", "variant": "canary"}
    assert sample(text, "modelroute_rollout_requests_total", **lbl) == 2
    assert sample(text, "modelroute_rollout_errors_total", **lbl, **{"class": "rate_limited"}) == 1
    assert sample(text, "modelroute_rollout_request_duration_seconds_bucket", **lbl, le="0.025") == 1
    assert sample(text, "modelroute_rollout_request_duration_seconds_count", **lbl) == 1
    assert sample(text, "modelroute_rollout_tokens_total", **lbl, kind="prompt") == 100
    assert sample(text, "modelroute_rollout_cost_usd_total", **lbl) == 0.5
    assert sample(text, "modelroute_rollout_mirror_dropped_total", route="classify", run="r1.0") == 3
    assert sample(text, "modelroute_rollout_weight_percent", route="classify", run="r1.0", kind="mirror") == 50
    for line in text.splitlines():                      # well-formed exposition lines
        assert line.startswith("#") or line.rsplit(" ", 1)[1].replace(".", "", 1).replace("e-", "").isdigit()


def _completion(content: str | None, tool_calls: list[dict[str, object]] | None = None) -> dict[str, object]:
    msg: dict[str, object] = {"role": "assistant", "content": content}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return {"choices": [{"index": 0, "message": msg, "finish_reason": "stop"}]}


def test_answer_text_and_stream_text_agree() -> None:
    assert judged_text(_completion("billing")) == "billing"
    call: dict[str, object] = {"id": "1", "type": "function", "function": {"name": "label", "arguments": '{"x": 1}'}}
    as_text = judged_text(_completion(None, [call]))
    assert as_text == '[{"arguments":{"x":1},"name":"label"}]'
    st = StreamText()
    st.feed({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": "label", "arguments": '{"x"'}}]}}]})
    st.feed({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}}]})
    assert st.text() == as_text
    st2 = StreamText()
    for piece in ("bil", "ling"):
        st2.feed({"choices": [{"index": 0, "delta": {"content": piece}}]})
    st2.feed({"choices": [], "usage": USAGE})
    assert st2.text() == "billing"
    assert judged_text({"choices": []}) == ""


def test_output_validity() -> None:
    assert output_valid("billing", False) and not output_valid("  ", False)
    assert output_valid('{"a": 1}', True) and output_valid('```json\n{"a": 1}\n```', True)
    assert not output_valid("sure! {a: 1}", True)
    assert wants_json({"response_format": {"type": "json_object"}})
    assert wants_json({"response_format": {"type": "json_schema", "json_schema": {}}})
    assert not wants_json({"response_format": {"type": "text"}}) and not wants_json({})


def test_failure_classes() -> None:
    assert failure_class(DeadlineExceeded([])) == "deadline"
    assert failure_class(RouteFailed([], client_error=UpstreamError(K.CLIENT, "bad", 400))) == "client_error"
    attempts = [Attempt("a", "rate_limited", 429, "", 1.0), Attempt("b", "server_error", 503, "", 1.0)]
    assert failure_class(RouteFailed(attempts)) == "server_error"
