"""The rollout glue (pure): served routes, acks, the canary in the bundle, the gate answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modelroute.api.config import RouteBundle
from modelroute.api.selection import CANARY_ANNOTATION, canary_of, render_for_pod
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.api.v1alpha1.strategy import RolloutPhase, revision_of
from modelroute.operator.pods import SidecarPod
from modelroute.operator.rollout import driver
from modelroute.operator.validation import parse, snapshot

from .operator_factories import raw_pod, raw_route

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
STRATEGY = {"canary": {"steps": [{"mirror": 100}, {"weight": 50}], "stickyBy": {"header": "x-user-id"}}}


def typed(raw: dict[str, Any]) -> ModelRoute:
    r = parse(raw)
    assert isinstance(r, ModelRoute), r
    return r


def test_first_sight_makes_the_spec_stable_and_serves_it_unchanged() -> None:
    raw = raw_route("chat", strategy=STRATEGY)
    r = driver.decide(raw, typed(raw), None, None, acked=False, stats={}, now=NOW)
    assert r.decision.status.stable_revision == revision_of(typed(raw).spec)
    assert r.decision.promoted == r.decision.status.stable_revision
    assert r.served.spec == typed(raw).spec and canary_of(r.served) is None


def test_a_new_revision_keeps_the_stable_spec_and_adds_the_canary() -> None:
    old_raw = raw_route("chat", strategy=STRATEGY)
    first = driver.decide(old_raw, typed(old_raw), None, None, acked=True, stats={}, now=NOW)
    new_raw = raw_route("chat", model="gpt-4.1-mini", strategy=STRATEGY)
    new = typed(new_raw)
    r = driver.decide(new_raw, new, first.decision.status, first.served, acked=True, stats={}, now=NOW + timedelta(seconds=1))
    assert r.decision.status.phase is RolloutPhase.PROGRESSING
    assert r.served.spec.targets[0].model == "gpt-4o-mini"          # stable keeps serving
    assert r.served.spec.strategy is not None
    c = canary_of(r.served)
    assert c is not None and c.revision == revision_of(new.spec) and c.spec.targets[0].model == "gpt-4.1-mini"
    assert (c.weight, c.mirror, c.sticky_header) == (0, 0, "x-user-id")   # make before break: present at 0% first
    assert c.run_id == f"{c.revision}.0"


def test_bundle_render_equals_the_push_render_canary_included() -> None:
    old_raw = raw_route("chat", strategy=STRATEGY)
    first = driver.decide(old_raw, typed(old_raw), None, None, acked=True, stats={}, now=NOW)
    new_raw = raw_route("chat", model="gpt-4.1-mini", strategy=STRATEGY)
    r = driver.decide(new_raw, typed(new_raw), first.decision.status, first.served, acked=True, stats={}, now=NOW)
    pushed = render_for_pod([r.served], {}).config
    assert [c.route for c in pushed.canaries] == ["chat"]
    assert all(CANARY_ANNOTATION not in x.metadata.annotations for x in pushed.routes)
    # What a sidecar reads back from the signed bundle renders to the same config and hash.
    bundle = RouteBundle.model_validate_json(RouteBundle(namespace="team", issued_at=NOW, routes=[r.served]).model_dump_json(by_alias=True))
    assert render_for_pod(bundle.routes, {}).config.hash == pushed.hash
    # Without a canary the hash is the plain one (routes without strategy are unaffected).
    assert render_for_pod([first.served], {}).config.hash == render_for_pod([typed(old_raw)], {}).config.hash


def test_all_acked_compares_served_hashes_with_the_last_bundle() -> None:
    raw = raw_route("chat", strategy=STRATEGY, selector={"matchLabels": {"app": "web"}})
    route = typed(raw)
    want = render_for_pod([route], {"app": "web"}).config.hash
    web = SidecarPod.from_raw(raw_pod("w1", {"app": "web"}, served=want))
    stale = SidecarPod.from_raw(raw_pod("w2", {"app": "web"}, served="sha256:old"))
    other = SidecarPod.from_raw(raw_pod("db", {"app": "db"}, served="sha256:old"))
    assert driver.all_acked(route, [route], [web, other], {})
    assert not driver.all_acked(route, [route], [web, stale], {})
    assert driver.all_acked(route, [route], [web, stale], {stale.uid: want})   # a fresh ack wins
    assert not driver.all_acked(route, None, [web], {})


def test_a_failed_gate_aborts_with_the_numbers() -> None:
    from modelroute.api.v1alpha1.strategy import GateThresholds
    from modelroute.operator.rollout import GateResults, gate_status

    strat = {"canary": {**STRATEGY["canary"], "gate": {"configMap": "golden", "key": "cases.jsonl"}}}
    old_raw = raw_route("chat", strategy=strat)
    first = driver.decide(old_raw, typed(old_raw), None, None, acked=True, stats={}, now=NOW)
    new_raw = raw_route("chat", model="gpt-4.1-mini", strategy=strat)
    new = typed(new_raw)
    started = driver.decide(new_raw, new, first.decision.status, first.served, acked=True, stats={}, now=NOW)
    asked = driver.decide(new_raw, new, started.decision.status, started.served, acked=True, stats={}, now=NOW)
    assert asked.decision.run_gate
    done = driver.decide(new_raw, new, asked.decision.status, asked.served, acked=True, stats={}, now=NOW,
                           gate=gate_status(GateThresholds(min_exact_match=0.9), GateResults(10, 0, 0.5, 1.0, 0.1)))
    assert done.decision.status.phase is RolloutPhase.DEGRADED
    assert "0.5" in done.decision.status.message and done.decision.status.gate is not None
    assert done.decision.status.gate.metrics[0].value == 0.5
    assert canary_of(done.served) is None and done.served.spec.targets[0].model == "gpt-4o-mini"


def test_the_index_keeps_the_action_annotation_only() -> None:
    raw = raw_route("chat")
    raw["metadata"]["annotations"] = {"modelroute.dev/action": "promote:abc", "other": "x"}
    snap = snapshot(raw)
    assert snap["metadata"]["annotations"] == {"modelroute.dev/action": "promote:abc"}
    assert driver.action_of(snap) == "promote:abc"
    assert parse(snap) == parse(raw_route("chat"))   # annotations never reach the served route
