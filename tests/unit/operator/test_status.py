from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

from modelroute.api.config import route_hash
from modelroute.api.v1alpha1 import Condition, ModelRoute, ModelRouteStatus, Phase
from modelroute.operator.acceptance import accept
from modelroute.operator.events import notices
from modelroute.operator.pods import SidecarPod
from modelroute.operator.push.plan import PodPlan, plan
from modelroute.operator.status import PodResult, changed, compute, parse_previous
from modelroute.operator.validation import Validation, validate

from .operator_factories import pod, raw_route

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WEB = {"matchLabels": {"app": "web"}}


def find_cond(status: ModelRouteStatus, type_: str) -> Condition | None:
    return next((c for c in status.conditions if c.type == type_), None)


def cond(status: ModelRouteStatus, type_: str) -> Condition:
    found = find_cond(status, type_)
    assert found is not None, f"no {type_} condition in {status.conditions}"
    return found


def results(plans: list[PodPlan], synced: Collection[str] = frozenset(), failed: dict[str, tuple[str, str]] | None = None) -> list[PodResult]:
    failed = failed or {}
    return [
        PodResult(plan=p, served_hash=p.desired_hash if p.pod.name in synced else None, failure=failed.get(p.pod.name))
        for p in plans
    ]


def world(raws: list[dict[str, Any]], pods: list[SidecarPod]) -> tuple[list[Validation], dict[str, ModelRoute], list[PodPlan]]:
    vals = [validate(r, {}, today=NOW.date()) for r in raws]  # a fixed day: model shutdowns do not move the tests
    accepted = accept(vals, {})
    return vals, accepted, plan(accepted.values(), pods)


def test_two_of_three_pods_synced_is_ready() -> None:
    vals, acc, plans = world([raw_route("a", selector=WEB)], [pod("p1", {"app": "web"}), pod("p2", {"app": "web"}), pod("p3")])
    st = compute(vals[0], acc["team/a"], results(plans, {"p1", "p2", "p3"}), None, NOW)
    assert st.phase is Phase.READY
    assert (st.pods.selected, st.pods.synced, st.pods.failed) == (2, 2, 0)
    assert st.config_hash == route_hash(acc["team/a"]) and st.primary_target == "openai/gpt-4o-mini"
    assert cond(st, "Synced").status.value == "True" and cond(st, "Ready").status.value == "True"
    assert find_cond(st, "Degraded") is None and find_cond(st, "Conflict") is None
    assert st.observed_generation == 1


def test_push_failure_is_degraded_with_pod_reasons() -> None:
    vals, acc, plans = world([raw_route("a", selector=WEB)], [pod("p1", {"app": "web"}), pod("p2", {"app": "web"})])
    st = compute(vals[0], acc["team/a"], results(plans, {"p1"}, {"p2": ("Unreachable", "connection refused")}), None, NOW)
    assert st.phase is Phase.DEGRADED
    assert (st.pods.selected, st.pods.synced, st.pods.failed) == (2, 1, 1)
    assert st.failures[0].pod == "p2" and st.failures[0].reason == "Unreachable"
    degraded = cond(st, "Degraded")
    assert degraded.status.value == "True" and "p2: Unreachable: connection refused" in degraded.message
    assert cond(st, "Synced").reason == "PushFailed"


def test_waiting_pods_are_progressing() -> None:
    vals, acc, plans = world([raw_route("a")], [pod("p1", ip=None, phase="Pending")])
    st = compute(vals[0], acc["team/a"], results(plans), None, NOW)
    assert st.phase is Phase.PROGRESSING
    assert "p1 (the pod is Pending)" in cond(st, "Synced").message


def test_no_selected_pods_is_pending_with_actionable_message() -> None:
    vals, acc, plans = world([raw_route("a", selector=WEB)], [pod("p1", {"app": "db"})])
    st = compute(vals[0], acc["team/a"], results(plans, {"p1"}), None, NOW)
    assert st.phase is Phase.PENDING
    assert "matches no pod labelled modelroute.dev/sidecar=true in namespace team" in cond(st, "Ready").message


def test_newer_route_with_same_name_gets_conflict_naming_the_winner() -> None:
    old = raw_route("first", "chat", created="2026-01-01T00:00:00Z")
    new = raw_route("second", "chat", created="2026-02-01T00:00:00Z", model="gpt-4.1-mini")
    vals, acc, plans = world([old, new], [pod("p1"), pod("p2")])
    assert all(p.rendering.config.routes[0].metadata.name == "first" for p in plans)
    res = results(plans, {"p1", "p2"})
    loser = compute(vals[1], acc["team/second"], res, None, NOW)
    winner = compute(vals[0], acc["team/first"], res, None, NOW)
    assert loser.phase is Phase.CONFLICT and winner.phase is Phase.READY
    c = cond(loser, "Conflict")
    assert c.status.value == "True" and c.reason == "RouteNameConflict"
    assert "'chat' is already served by ModelRoute team/first (older) on pods p1, p2" in c.message
    assert loser.pods.synced == 0 and loser.pods.selected == 2


def test_invalid_route_reports_problem_and_what_keeps_serving() -> None:
    good = validate(raw_route("a"), {}, today=NOW.date())
    bad_raw = raw_route("a", generation=2, api_key={"secretKeyRef": {"name": "missing", "key": "k"}})
    bad = validate(bad_raw, {"missing": None}, today=NOW.date())
    assert good.route is not None
    acc = accept([bad], {"team/a": good.route})
    plans = plan(acc.values(), [pod("p1")])
    st = compute(bad, acc["team/a"], results(plans, {"p1"}), None, NOW)
    assert st.phase is Phase.INVALID and st.observed_generation == 2
    ready = cond(st, "Ready")
    assert ready.reason == "InvalidSpec" and "Secret 'missing' does not exist" in ready.message
    assert "keep serving the last accepted version (generation 1" in ready.message
    assert st.pods.synced == 1  # the last good version is still served


def test_invalid_route_never_accepted() -> None:
    raw = raw_route("a")
    raw["spec"]["targets"] = []
    v = validate(raw, {}, today=NOW.date())
    st = compute(v, None, [], None, NOW)
    assert st.phase is Phase.INVALID and st.config_hash is None
    assert "nothing is served" in cond(st, "Ready").message


def test_transition_time_only_moves_when_status_changes() -> None:
    vals, acc, plans = world([raw_route("a")], [pod("p1")])
    first = compute(vals[0], acc["team/a"], results(plans, {"p1"}), None, NOW)
    stored = parse_previous(first.wire())
    later = NOW + timedelta(minutes=5)
    again = compute(vals[0], acc["team/a"], results(plans, {"p1"}), stored, later)
    assert not changed(stored, again)
    broken = compute(vals[0], acc["team/a"], results(plans, set(), {"p1": ("Rejected", "422")}), stored, later)
    assert cond(broken, "Ready").last_transition_time == later
    assert changed(stored, broken)


def test_notices_announce_pushes_and_new_failures_once() -> None:
    vals, acc, plans = world([raw_route("a", model="gpt-5.4-mini")], [pod("p1")])  # no shutdown announced
    ok = compute(vals[0], acc["team/a"], results(plans, {"p1"}), None, NOW)
    got = notices(None, ok, ["p1"])
    assert [n.reason for n in got] == ["ConfigPushed", "Ready"]
    bad = compute(vals[0], acc["team/a"], results(plans, set(), {"p1": ("Unreachable", "refused")}), ok, NOW)
    assert [n.reason for n in notices(ok, bad, [])] == ["PushFailed"]
    assert notices(bad, bad, []) == []  # same failure, no new event


def test_a_model_with_an_announced_shutdown_is_a_condition_and_one_warning_event() -> None:
    vals, acc, plans = world([raw_route("a", model="gpt-4o-mini")], [pod("p1")])
    ok = compute(vals[0], acc["team/a"], results(plans, {"p1"}), None, NOW)
    assert ok.phase is not None and ok.phase.value == "Ready"  # still served: it answers until its shutdown
    deprecated = cond(ok, "ModelDeprecated")
    assert deprecated.status.value == "True" and deprecated.reason == "ShutdownAnnounced"
    assert "spec.targets[0].model: target 'main': model 'gpt-4o-mini' is deprecated by openai and shuts down on 2027-01-14" \
        in deprecated.message
    got = notices(None, ok, ["p1"])
    assert [(n.type, n.reason) for n in got] == [("Normal", "ConfigPushed"), ("Warning", "ModelDeprecated"), ("Normal", "Ready")]
    again = compute(vals[0], acc["team/a"], results(plans, {"p1"}), ok, NOW)
    assert notices(ok, again, []) == []  # said once, not on every round
