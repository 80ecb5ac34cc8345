"""The rollout state machine, driven through whole rollouts with a simulated fleet and clock."""

from __future__ import annotations

from datetime import timedelta

from modelroute.api.v1alpha1.strategy import PauseReason, RolloutPhase, RolloutStatus, Verdict, Weights
from modelroute.operator.rollout import Desired, Observations, step

from .rollout_sim import T0, Fleet, counters, strategy

A, B, C = "aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"


def rolling(rev: str = B, **kw: object) -> Fleet:
    """A fleet that serves A as stable, then is given ``rev`` to roll out."""
    f = Fleet(Desired(A, strategy(**kw)))  # type: ignore[arg-type]
    first = f.call()
    assert first.status.phase is RolloutPhase.HEALTHY and first.promoted == A
    f.desired = Desired(rev, f.desired.strategy)
    return f


def test_first_sight_and_no_strategy_apply_at_once() -> None:
    d = step(None, Desired(A), Observations(), T0)
    assert (d.status.phase, d.status.stable_revision, d.promoted) == (RolloutPhase.HEALTHY, A, A)
    d2 = step(d.status, Desired(B), Observations(all_acked=True), T0)
    assert (d2.status.stable_revision, d2.promoted, d2.serving.canary_revision) == (B, B, None)
    assert [e.reason for e in d2.events] == ["Promoted"]


def test_healthy_rollout_walks_mirror_weights_and_promotes() -> None:
    f = rolling()
    d = f.call()
    assert (d.status.phase, d.status.canary_revision, d.status.current_step_index) == (RolloutPhase.PROGRESSING, B, 0)
    assert d.status.weights == Weights() and d.serving.canary_revision == B, "canary present at 0% first"
    seen: list[tuple[int | None, int, int]] = []

    def record(d: object) -> bool:
        s = f.state
        assert s is not None
        key = (s.current_step_index, s.weights.canary, s.weights.mirror)
        if not seen or seen[-1] != key:
            seen.append(key)
        return s.phase is RolloutPhase.PAUSED and s.current_step_index == 5

    f.until(record, limit=2000)
    assert f.state is not None and f.state.message.endswith("paused until `kubectl modelroute promote`")
    # Each weight step pushes its weights as it starts (the previous ones are served) and ends
    # once they are served everywhere; pauses hold the weights of the step before.
    assert seen == [(0, 0, 100), (1, 0, 100), (2, 5, 0), (3, 5, 0), (4, 25, 0), (5, 25, 0)]
    assert f.state.analysis is not None and f.state.analysis.verdict is Verdict.PASS
    # An indefinite pause holds however long it is left.
    f.wait(6 * 3600)
    assert f.call().status.current_step_index == 5
    f.act("promote")
    d = f.until(lambda d: d.promoted is not None)
    assert d.status.phase is RolloutPhase.HEALTHY and d.status.stable_revision == B and d.status.canary_revision is None
    assert d.serving.canary_revision is None and d.serving.weights == Weights()
    reasons = [e.reason for x in f.decisions for e in x.events]
    assert reasons.count("StepStarted") == 7 and reasons[-1] == "Promoted" and "RolloutStarted" in reasons


def test_weights_move_only_when_every_sidecar_serves_the_previous_ones() -> None:
    f = rolling()
    f.stuck = True   # one sidecar never acknowledges
    for _ in range(5):
        d = f.call()
        f.wait(30)
        assert d.status.weights == Weights(), "no weight may move before the canary is everywhere"
    f.wait(600)
    d = f.call()
    assert d.status.phase is RolloutPhase.DEGRADED and "progress deadline" in d.status.message
    assert d.serving.canary_revision is None and d.serving.weights == Weights()


def test_twenty_percent_errors_abort_back_to_stable_in_one_push() -> None:
    f = rolling()
    f.errors = 0.2
    d = f.until(lambda d: d.status.phase is RolloutPhase.DEGRADED)
    assert d.serving.weights == Weights(stable=100, canary=0, mirror=0) and d.serving.canary_revision is None
    assert d.status.analysis is not None and d.status.analysis.failures == 2
    err = next(m for m in d.status.analysis.metrics if m.name == "errorRate")
    assert err.verdict is Verdict.FAIL and err.value is not None and abs(err.value - 0.2) < 0.01
    assert "errorRate" in d.status.message and d.status.stable_revision == A
    warnings = [e.reason for x in f.decisions for e in x.events if e.type == "Warning"]
    assert warnings == ["AnalysisFailed", "Aborted"]
    # Degraded stays put: time passing does not restart it.
    f.wait(3600)
    assert f.call().status.phase is RolloutPhase.DEGRADED


def test_wrong_labels_abort_on_agreement() -> None:
    f = rolling()
    f.agree = 0.6
    d = f.until(lambda d: d.status.phase is RolloutPhase.DEGRADED)
    assert d.status.analysis is not None
    agreement = next(m for m in d.status.analysis.metrics if m.name == "agreement")
    assert agreement.verdict is Verdict.FAIL and agreement.threshold == 0.95
    assert d.status.current_step_index is not None and d.status.current_step_index <= 1, "caught while still mirroring"


def test_too_little_traffic_is_inconclusive_then_paused_never_promoted() -> None:
    f = rolling(steps=[{"mirror": 100}, {"pause": {"duration": "5m"}}, {"weight": 100}])
    f.rate = 0.2   # 12 requests a minute: minSamples 200 takes far longer than the pause
    d = f.until(lambda d: d.status.phase is RolloutPhase.PAUSED and any(
        p.reason is PauseReason.INCONCLUSIVE for p in d.status.pause_conditions))
    assert d.status.current_step_index == 1 and d.status.weights.mirror == 100
    assert "inconclusive" in d.status.message and "samples" in d.status.message
    assert d.status.analysis is not None and d.status.analysis.verdict is Verdict.INCONCLUSIVE
    for _ in range(10):   # stays paused: no promotion, no rollback on no data
        f.wait(3600)
        d = f.call()
        assert d.status.phase is RolloutPhase.PAUSED and d.promoted is None
    # resume waits another interval and judges again: with enough data by now, it goes on.
    f.act("resume")
    d = f.until(lambda d: d.promoted is not None)
    assert d.status.stable_revision == B


def test_promote_moves_an_inconclusive_pause_on() -> None:
    f = rolling(steps=[{"mirror": 100}, {"pause": {"duration": "5m"}}, {"weight": 50}, {"pause": {}}])
    f.rate = 0.1
    f.until(lambda d: d.status.phase is RolloutPhase.PAUSED and d.status.current_step_index == 1 and any(
        p.reason is PauseReason.INCONCLUSIVE for p in d.status.pause_conditions))
    f.act("promote")
    d = f.until(lambda d: d.status.weights.canary == 50 and d.status.acked)
    assert d.status.current_step_index == 3 and d.status.phase is RolloutPhase.PAUSED


def test_operator_restart_resumes_the_same_step_and_pause_start() -> None:
    f = rolling()
    f.until(lambda d: d.status.current_step_index == 1)
    f.wait(600)
    before = f.call().status
    pause_start = before.pause_conditions[0].start_time
    # The operator dies; the status survives in the cluster as JSON and is read back.
    reread = RolloutStatus.model_validate(before.wire())
    f.state = reread
    f.wait(60)
    d = f.call()
    assert d.status.current_step_index == 1 and d.status.pause_conditions[0].start_time == pause_start
    assert d.events == () and "19m left" in d.status.message
    f.wait(19 * 60)
    d = f.until(lambda d: d.status.current_step_index == 2)
    assert d.status.step_start_time is not None and d.status.step_start_time >= pause_start + timedelta(minutes=30)


def test_new_revision_mid_rollout_restarts_with_fresh_evidence() -> None:
    f = rolling()
    f.until(lambda d: d.status.current_step_index == 4 and d.status.weights.canary == 25)
    old_run = f.run
    f.desired = Desired(C, f.desired.strategy)
    d = f.call()
    assert (d.status.canary_revision, d.status.current_step_index, d.status.weights) == (C, 0, Weights())
    assert d.status.analysis is None and d.serving.run_id != old_run and d.serving.canary_revision == C
    assert [e.reason for e in d.events] == ["RolloutRestarted", "StepStarted"]


def test_back_to_stable_drops_the_rollout() -> None:
    f = rolling()
    f.until(lambda d: d.status.current_step_index == 1)
    f.desired = Desired(A, f.desired.strategy)
    d = f.call()
    assert d.status.phase is RolloutPhase.HEALTHY and d.status.canary_revision is None and d.serving.canary_revision is None


def test_abort_then_retry_starts_a_fresh_attempt() -> None:
    f = rolling()
    f.until(lambda d: d.status.current_step_index == 1)
    f.act("abort")
    d = f.call()
    assert d.status.phase is RolloutPhase.DEGRADED and d.serving.weights == Weights() and "by user" in d.status.message
    f.act("promote")
    assert f.call().status.phase is RolloutPhase.DEGRADED, "promote does not undo an abort"
    f.act("retry")
    d = f.call()
    assert (d.status.phase, d.status.attempt, d.status.current_step_index) == (RolloutPhase.PROGRESSING, 1, 0)
    assert d.serving.run_id == f"{B}.1" and d.serving.canary_revision == B


def test_pause_holds_and_resume_continues() -> None:
    f = rolling()
    f.until(lambda d: d.status.current_step_index == 1)
    f.act("pause")
    d = f.call()
    assert d.status.phase is RolloutPhase.PAUSED and any(p.reason is PauseReason.USER for p in d.status.pause_conditions)
    f.wait(3600)   # the 30m pause has long ended, but a person said hold
    d = f.call()
    assert d.status.current_step_index == 1 and "paused by user" in d.status.message
    f.act("resume")
    d = f.until(lambda d: d.status.current_step_index == 2)
    assert not any(p.reason is PauseReason.USER for p in d.status.pause_conditions)


def test_an_action_is_applied_once() -> None:
    f = rolling(steps=[{"mirror": 100}, {"pause": {}}, {"pause": {}}, {"weight": 100}])
    f.until(lambda d: d.status.current_step_index == 1)
    f.act("promote")
    d = f.call()
    assert d.status.current_step_index == 2 and d.status.phase is RolloutPhase.PAUSED
    for _ in range(3):  # the same annotation value seen again (operator restart, resync): not a second promote
        f.wait(60)
        d = f.call()
        assert d.status.current_step_index == 2 and d.status.last_action == f.desired.action
    assert sum(e.reason == "StepPromoted" for x in f.decisions for e in x.events) == 1
    f.act("promote")   # a new nonce: a second promote
    d = f.until(lambda d: d.promoted is not None)
    assert d.status.stable_revision == B


def test_promote_full_skips_everything_and_unknown_verbs_are_reported() -> None:
    f = rolling()
    f.call()
    f.desired = Desired(B, f.desired.strategy, "frobnicate:1")
    d = f.call()
    assert any(e.reason == "UnknownAction" for e in d.events)
    f.act("promote-full")
    d = f.call()
    assert d.promoted == B and d.status.phase is RolloutPhase.HEALTHY


def test_gate_failure_aborts_with_the_numbers() -> None:
    from modelroute.api.v1alpha1.strategy import GateStatus, MetricResult, Strategy

    s = strategy().model_dump(by_alias=True)
    s["canary"]["gate"] = {"configMap": "golden", "key": "cases.jsonl", "thresholds": {"minExactMatch": 0.9}}
    f = rolling()
    f.desired = Desired(B, Strategy.model_validate(s))
    d = f.call()
    assert not d.run_gate and d.status.gate is not None and d.status.gate.verdict is Verdict.INCONCLUSIVE
    d = f.call()
    assert d.run_gate and d.status.weights == Weights(), "the gate runs before any live traffic"
    result = GateStatus(verdict=Verdict.FAIL, message="exactMatch 0.71 < 0.9 (100 cases)",
                        metrics=[MetricResult(name="exactMatch", value=0.71, threshold=0.9, samples=100, verdict=Verdict.FAIL)])
    d = f.call(gate=result)
    assert d.status.phase is RolloutPhase.DEGRADED and "0.71" in d.status.message and d.status.gate == result
    f2 = rolling()
    f2.desired = Desired(B, Strategy.model_validate(s))
    f2.call()
    f2.call()
    d = f2.call(gate=GateStatus(verdict=Verdict.PASS, message="exactMatch 0.97"))
    assert d.status.weights.mirror == 100 and any(e.reason == "GatePassed" for e in d.events)


def test_counters_helper_is_sane() -> None:
    c = counters(100, errors=5, agree=0.9)
    assert (c.requests, c.failed, c.compared, c.agreed) == (100, 5, 100, 90)


def test_serving_carries_run_and_sticky_header_only_while_rolling() -> None:
    f = rolling()
    d = f.call()
    assert (d.serving.stable_revision, d.serving.canary_revision) == (A, B)
    assert d.serving.run_id == f"{B}.0" and d.serving.sticky_header == "x-user-id"
    f.act("abort")
    d = f.call()
    assert (d.serving.canary_revision, d.serving.run_id, d.serving.sticky_header) == (None, None, None)


def test_desired_of_a_model_route_reads_revision_and_action() -> None:
    from modelroute.api.v1alpha1 import ModelRoute
    from modelroute.api.v1alpha1.strategy import ACTION_ANNOTATION, revision_of

    m = ModelRoute.model_validate({"metadata": {"name": "x", "annotations": {ACTION_ANNOTATION: "pause:1"}}, "spec": {
        "route": "r", "targets": [{"name": "a", "provider": "openai-compatible", "model": "m"}]}})
    d = Desired.of(m)
    assert (d.revision, d.strategy, d.action) == (revision_of(m.spec), None, "pause:1")


def test_requeue_follows_the_pause_and_the_analysis_interval() -> None:
    f = rolling()
    f.until(lambda d: d.status.current_step_index == 1)
    d = f.call()
    assert d.requeue_after is not None and 0 < d.requeue_after <= 60, "the next analysis is due within an interval"
    healthy = step(None, Desired(A), Observations(), T0)
    assert healthy.requeue_after is None
