"""The rollout state machine: ``step(state, desired, observations, now) -> Decision``. Pure.

Argo Rollouts canary semantics, adapted to model routes. All state lives in
``status.rollout`` (``RolloutStatus``), so an operator restart resumes the same step with the
same pause start; the operator calls ``step`` whenever something changed (spec, annotation,
acks) and again after ``Decision.requeue_after``, then writes ``Decision.status``, pushes
``Decision.serving`` (``serving_of(status)``) and emits ``Decision.events``.

Rules:

* A new revision (``revision_of(spec)`` differs from stable and canary) starts a rollout at
  step 0 with 100% stable and the new revision present; a newer one mid-rollout replaces it
  and restarts (fresh evidence). Back to the stable revision: the rollout is dropped. No
  strategy: the revision becomes stable at once.
* Make before break: weights move only once every selected sidecar serves the current ones
  (``Observations.all_acked`` is about ``serving_of(state)``, the input state's serving).
  A mirror/weight step is complete when its weights are served everywhere.
  ``progressDeadlineSeconds`` bounds that wait; exceeded: abort.
* Pause steps: timed (start kept in ``pauseConditions``) or until promoted.
* Analysis runs every ``interval`` while the canary gets traffic; a Fail counts, and past
  ``failureLimit`` the rollout aborts. At *decision points* (end of a timed pause, and before
  promotion after the last step) the verdict must be Pass to go on; Fail waits for the next
  interval; Inconclusive (too few samples) pauses once the decision has waited one interval:
  the rollout never promotes or rolls back on no data.
* Abort: one push back to 100% stable (the canary is dropped from the sidecars), phase
  Degraded, until ``retry`` or a new revision.
* After the last step the canary becomes stable (``Decision.promoted``): the operator must
  then keep that revision's spec as the stable spec.
* Actions: see ``modelroute.operator.rollout.actions``.
* Gate (optional): once the new revision is served everywhere (at 0%), the decision asks the
  operator to run the golden dataset (``run_gate``) and waits for ``Observations.gate``;
  Fail aborts with the numbers in ``status.rollout.gate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from modelroute.api.v1alpha1.strategy import (
    ACTION_ANNOTATION,
    AnalysisStatus,
    CanaryStep,
    CanaryStrategy,
    GateStatus,
    PauseCondition,
    PauseReason,
    RolloutPhase,
    RolloutStatus,
    Strategy,
    Verdict,
    Weights,
    format_duration,
    revision_of,
)
from modelroute.operator.rollout.actions import Verb, pending_action
from modelroute.operator.rollout.analysis import evaluate
from modelroute.operator.rollout.counters import Counters

ACK_POLL_SECONDS = 2.0
"""Requeue while waiting for sidecars to serve new weights (acks also trigger the operator)."""


@dataclass(frozen=True)
class Desired:
    """What the ModelRoute asks for now."""

    revision: str
    strategy: Strategy | None = None
    action: str | None = None   # the raw modelroute.dev/action annotation

    @staticmethod
    def of(route: Any) -> Desired:
        """From a ``ModelRoute`` (reads ``spec.strategy`` once the spec has it)."""
        strategy = getattr(route.spec, "strategy", None)
        return Desired(revision_of(route.spec), strategy, route.metadata.annotations.get(ACTION_ANNOTATION))


@dataclass(frozen=True)
class Observations:
    """What the operator saw since the last decision."""

    all_acked: bool = False             # every selected sidecar serves serving_of(input state)
    stable: Counters = field(default_factory=Counters)   # this run's stable evidence, summed over pods
    canary: Counters = field(default_factory=Counters)   # this run's canary + mirror evidence
    gate: GateStatus | None = None      # result of a gate run asked for by an earlier decision


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Serving:
    """What every selected sidecar must serve for this route."""

    stable_revision: str
    canary_revision: str | None = None
    weights: Weights = field(default_factory=Weights)
    run_id: str | None = None          # counters are kept per run: fresh on a new revision or retry
    sticky_header: str | None = None   # salt for variant_for is the canary revision


@dataclass(frozen=True)
class Decision:
    status: RolloutStatus
    serving: Serving
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None
    promoted: str | None = None   # revision that just became stable: persist its spec as the stable spec
    run_gate: bool = False        # run the golden dataset against serving.canary_revision now


def _canary(strategy: Strategy | None) -> CanaryStrategy | None:
    return strategy.canary if strategy is not None else None


def serving_of(status: RolloutStatus, strategy: Strategy | None = None) -> Serving:
    """The sidecars' target state implied by a rollout status (what ``all_acked`` refers to)."""
    if status.stable_revision is None:
        raise ValueError("a rollout status without a stable revision serves nothing")
    active = status.canary_revision is not None and status.phase is not RolloutPhase.DEGRADED
    canary = _canary(strategy)
    return Serving(
        stable_revision=status.stable_revision,
        canary_revision=status.canary_revision if active else None,
        weights=status.weights if active else Weights(),
        run_id=f"{status.canary_revision}.{status.attempt}" if active else None,
        sticky_header=canary.sticky_by.header if active and canary is not None and canary.sticky_by else None,
    )


def step_weights(current: Weights, step: CanaryStep) -> Weights:
    """Weights after a mirror/weight step: mirror keeps the weight; weight ends mirroring."""
    if step.mirror is not None:
        return Weights(stable=current.stable, canary=current.canary, mirror=step.mirror)
    if step.weight is not None:
        return Weights(stable=100 - step.weight, canary=step.weight, mirror=0)
    return current


def _seconds(a: datetime, b: datetime) -> float:
    return (a - b).total_seconds()


class _Run:
    """One evaluation: a mutable copy of the status, the rules applied to it, then frozen."""

    def __init__(self, state: RolloutStatus | None, desired: Desired, obs: Observations, now: datetime) -> None:
        s = state or RolloutStatus(phase=RolloutPhase.HEALTHY)
        self.d, self.obs, self.now = desired, obs, now
        self.stable, self.canary, self.attempt = s.stable_revision, s.canary_revision, s.attempt
        self.index, self.step_start, self.decision_start = s.current_step_index, s.step_start_time, s.decision_start_time
        self.weights, self.analysis, self.gate = s.weights, s.analysis, s.gate
        self.pauses = list(s.pause_conditions)
        self.message, self.last_action = s.message, s.last_action
        self.aborted = s.phase is RolloutPhase.DEGRADED
        self.changed = state is None      # serving differs from the input state's
        self.skip = False                 # a pending `promote`
        self.wait: str | None = None      # why the walk stopped, for the message
        self.events: list[Event] = []
        self.requeue: list[float] = []
        self.promoted: str | None = None
        self.run_gate = False
        self.cs = _canary(desired.strategy)

    # -- small helpers --------------------------------------------------------------------
    def event(self, reason: str, message: str, *, warning: bool = False) -> None:
        self.events.append(Event("Warning" if warning else "Normal", reason, message))

    def acked_now(self) -> bool:
        return self.obs.all_acked and not self.changed

    def has_pause(self, reason: PauseReason) -> bool:
        return any(p.reason is reason for p in self.pauses)

    def drop_pause(self, *reasons: PauseReason) -> None:
        self.pauses = [p for p in self.pauses if p.reason not in reasons]

    def set_weights(self, w: Weights) -> None:
        if w != self.weights:
            self.weights = w
            self.changed = True

    def steps(self) -> list[CanaryStep]:
        return self.cs.steps if self.cs is not None else []

    def where(self) -> str:
        n = len(self.steps())
        i = self.index or 0
        return f"step {i + 1}/{n} ({self.steps()[i].describe()})" if i < n else "promotion"

    # -- transitions ----------------------------------------------------------------------
    def start(self, attempt: int, why: str) -> None:
        old = self.canary
        self.canary, self.attempt, self.aborted = self.d.revision, attempt, False
        self.index, self.step_start, self.decision_start = 0, self.now, None
        self.weights, self.analysis, self.gate, self.pauses = Weights(), None, None, []
        self.changed = True
        self.message = ""
        if why == "new" and old is not None:
            self.event("RolloutRestarted", f"revision {self.canary} replaces {old} mid-rollout; starting again from step 1")
        elif why == "retry":
            self.event("RolloutRetried", f"retrying revision {self.canary} (attempt {attempt + 1}) from step 1")
        else:
            self.event("RolloutStarted", f"rolling out revision {self.canary} against stable {self.stable} in {len(self.steps())} steps")
        if self.steps():
            self.event("StepStarted", f"step 1/{len(self.steps())}: {self.steps()[0].describe()}")

    def promote(self, why: str) -> None:
        assert self.canary is not None
        self.event("Promoted", f"revision {self.canary} is now stable ({why})")
        self.stable, self.promoted, self.canary, self.aborted = self.canary, self.canary, None, False
        self.index = self.step_start = self.decision_start = None
        self.weights, self.pauses, self.changed = Weights(), [], True
        self.message = f"revision {self.stable} promoted ({why}); it serves all traffic"

    def abort(self, why: str) -> None:
        self.aborted, self.pauses, self.changed = True, [], True
        self.weights = Weights()
        self.message = f"aborted: {why}. All traffic is on stable {self.stable}; `kubectl modelroute retry` to try again"
        self.event("Aborted", f"revision {self.canary} aborted: {why}", warning=True)

    def advance(self) -> bool:
        """Move to the next step; False (and stay) while paused by a person."""
        if self.has_pause(PauseReason.USER):
            self.wait = "paused by user; `kubectl modelroute resume` to continue"
            return False
        self.index = (self.index or 0) + 1
        self.step_start, self.decision_start = self.now, None
        self.drop_pause(PauseReason.PAUSE_STEP, PauseReason.INCONCLUSIVE)
        if self.index < len(self.steps()):
            self.event("StepStarted", f"step {self.index + 1}/{len(self.steps())}: {self.steps()[self.index].describe()}")
        return True

    def consume_skip(self) -> bool:
        if not self.skip:
            return False
        self.skip = False
        self.event("StepPromoted", f"{self.where()} promoted by user")
        return True

    # -- the phases of one evaluation -----------------------------------------------------
    def reconcile_revision(self) -> None:
        rev = self.d.revision
        if self.stable is None:
            self.stable, self.promoted, self.changed = rev, rev, True
            self.message = f"revision {rev} serves all traffic"
            return
        if rev == self.stable:
            if self.canary is not None:
                self.event("RolloutCancelled", f"spec is back to stable revision {rev}; revision {self.canary} dropped")
                self.canary, self.index, self.step_start, self.decision_start = None, None, None, None
                self.weights, self.pauses, self.aborted, self.changed = Weights(), [], False, True
                self.message = f"revision {rev} serves all traffic"
            return
        if self.cs is None:
            self.canary = rev
            self.promote("no strategy: applied at once")
            return
        if self.canary != rev:
            self.start(0, "new")

    def apply_action(self) -> None:
        action, record = pending_action(self.d.action, self.last_action)
        if record is None:
            return
        self.last_action = record
        if action is None:
            self.event("UnknownAction", f"{ACTION_ANNOTATION}={record!r}: unknown verb; use promote, promote-full, abort, retry, pause or resume", warning=True)
            return
        verb = action.verb
        if self.canary is None:
            self.event("ActionIgnored", f"{verb.value}: no rollout in progress")
            return
        if self.aborted and verb is not Verb.RETRY:
            self.event("ActionIgnored", f"{verb.value}: the rollout was aborted; use retry")
            return
        if verb is Verb.RETRY:
            if self.aborted:
                self.start(self.attempt + 1, "retry")
            else:
                self.event("ActionIgnored", "retry: the rollout is not aborted")
        elif verb is Verb.ABORT:
            self.abort("aborted by user")
        elif verb is Verb.PAUSE:
            if not self.has_pause(PauseReason.USER):
                self.pauses.append(PauseCondition(reason=PauseReason.USER, start_time=self.now))
                self.event("Paused", "paused by user")
        elif verb is Verb.RESUME:
            self.drop_pause(PauseReason.USER)
            if self.has_pause(PauseReason.INCONCLUSIVE):
                self.drop_pause(PauseReason.INCONCLUSIVE)
                self.decision_start = self.now   # one more interval for evidence
            self.event("Resumed", "resumed by user")
        elif verb is Verb.PROMOTE:
            self.drop_pause(PauseReason.USER)
            self.skip = True
        elif verb is Verb.PROMOTE_FULL:
            self.promote("promoted fully by user, remaining steps skipped")

    def check_deadline(self) -> None:
        limit = self.cs.progress_deadline_seconds if self.cs else None
        if limit is None or self.step_start is None or self.has_pause(PauseReason.USER):
            self.requeue.append(ACK_POLL_SECONDS)
            return
        spent = _seconds(self.now, self.step_start)
        if spent > limit:
            w = self.weights
            self.abort(f"progress deadline: not every selected sidecar served {self.where()} "
                       f"(canary {w.canary}%, mirror {w.mirror}%) within {limit}s")
        else:
            self.requeue.append(min(ACK_POLL_SECONDS, limit - spent + 0.001))

    def run_analysis(self) -> bool:
        """Judge the evidence now and record it; False if that aborted the rollout."""
        assert self.cs is not None and self.cs.analysis is not None
        spec = self.cs.analysis
        j = evaluate(spec, self.obs.stable, self.obs.canary)
        prev = self.analysis
        failures = prev.failures if prev else 0
        # One failure per interval at most (a decision point may judge between two intervals).
        fresh = prev is None or prev.verdict is not Verdict.FAIL or _seconds(self.now, prev.time) >= spec.interval_seconds
        if j.verdict is Verdict.FAIL and fresh:
            failures += 1
        self.analysis = AnalysisStatus(verdict=j.verdict, metrics=list(j.metrics), time=self.now, failures=failures)
        if j.verdict is Verdict.FAIL:
            if failures > spec.failure_limit:
                self.abort(f"analysis failed {failures} time(s), failureLimit {spec.failure_limit}: {j.summary()}")
                return False
            if fresh:
                self.event("AnalysisFailed", f"{j.summary()} (failure {failures} of {spec.failure_limit + 1} allowed before abort)", warning=True)
        return True

    def background_analysis(self) -> bool:
        spec = self.cs.analysis if self.cs else None
        if spec is None or not self.weights.touches_canary or self.changed:
            return True
        due = self.analysis is None or _seconds(self.now, self.analysis.time) >= spec.interval_seconds
        return self.run_analysis() if due else True

    def decide(self, due_at: datetime) -> Verdict:
        """The verdict at a decision point (Pass when there is nothing to judge)."""
        spec = self.cs.analysis if self.cs else None
        if spec is None or not self.weights.touches_canary:
            return Verdict.PASS
        if self.decision_start is None:
            self.decision_start = self.now
        if self.has_pause(PauseReason.INCONCLUSIVE):
            self.wait = self.inconclusive_message()
            return Verdict.INCONCLUSIVE
        if (self.analysis is None or self.analysis.time < due_at) and not self.run_analysis():
            return Verdict.FAIL
        assert self.analysis is not None
        v = self.analysis.verdict
        if v is Verdict.INCONCLUSIVE:
            waited = _seconds(self.now, self.decision_start)
            if waited >= spec.interval_seconds:
                self.pauses.append(PauseCondition(reason=PauseReason.INCONCLUSIVE, start_time=self.now))
                self.wait = self.inconclusive_message()
                self.event("AnalysisInconclusive", f"{self.where()}: {self._analysis_summary()}; paused", warning=True)
            else:
                self.wait = f"{self.where()}: waiting for enough evidence ({self._analysis_summary()})"
                self.requeue.append(spec.interval_seconds - waited)
        elif v is Verdict.FAIL:
            self.wait = f"{self.where()}: analysis failing ({self._analysis_summary()}); judging again in {spec.interval}"
            self.requeue.append(spec.interval_seconds)
        return v

    def _analysis_summary(self) -> str:
        from modelroute.operator.rollout.analysis import describe

        if self.analysis is None:
            return "no analysis yet"
        bad = [describe(m) for m in self.analysis.metrics if m.verdict is not Verdict.PASS]
        return "; ".join(bad) or "all metrics pass"

    def inconclusive_message(self) -> str:
        return (f"{self.where()}: analysis inconclusive ({self._analysis_summary()}); "
                "`kubectl modelroute promote` to go on, `resume` to wait for more evidence")

    def run_gate_phase(self) -> bool:
        """True when the gate is passed (or absent) and the steps may run."""
        gate = self.cs.gate if self.cs else None
        if gate is None or (self.gate is not None and self.gate.verdict is Verdict.PASS):
            return True
        if self.gate is not None and self.gate.verdict is Verdict.FAIL:
            return False
        result = self.obs.gate
        if result is not None and result.verdict is not Verdict.INCONCLUSIVE and not self.changed:
            self.gate = result
            if result.verdict is Verdict.FAIL:
                self.abort(f"golden-dataset gate failed: {result.message}")
                return False
            self.event("GatePassed", f"golden dataset {gate.config_map}/{gate.key}: {result.message}")
            return True
        if self.acked_now():
            self.gate = GateStatus(verdict=Verdict.INCONCLUSIVE, message=f"running golden dataset {gate.config_map}/{gate.key}")
            self.run_gate = True
            self.wait = f"gate: running golden dataset {gate.config_map}/{gate.key} against revision {self.canary}"
            self.requeue.append(ACK_POLL_SECONDS)
        else:
            self.gate = GateStatus(verdict=Verdict.INCONCLUSIVE, message="waiting for every selected sidecar to serve the new revision")
            self.wait = f"gate: waiting for every selected sidecar to serve revision {self.canary}"
            self.check_deadline()
        return False

    def walk(self) -> None:
        steps = self.steps()
        while not self.aborted and self.canary is not None:
            i = min(self.index or 0, len(steps))
            self.index = i
            if self.step_start is None:
                self.step_start = self.now
            if i >= len(steps):
                if self.consume_skip():
                    self.promote("promoted by user")
                    return
                if self.decide(due_at=self.step_start) is Verdict.PASS:
                    if self.has_pause(PauseReason.USER):
                        self.wait = "paused by user before promotion; `kubectl modelroute resume` to continue"
                        return
                    self.promote("all steps passed" + (" with analysis" if self.cs and self.cs.analysis else ""))
                return
            st = steps[i]
            if st.pause is None:
                target = step_weights(self.weights, st)
                if self.weights != target:
                    if self.consume_skip():
                        if not self.advance():
                            return
                        continue
                    if self.has_pause(PauseReason.USER):
                        self.wait = "paused by user; `kubectl modelroute resume` to continue"
                        return
                    if not self.acked_now():
                        self.wait = f"{self.where()}: waiting for every selected sidecar to serve the current weights"
                        self.check_deadline()
                        return
                    self.set_weights(target)
                    self.wait = f"{self.where()}: pushing canary {target.canary}%, mirror {target.mirror}%"
                    self.requeue.append(ACK_POLL_SECONDS)
                    return
                skipped = self.consume_skip()
                if (self.acked_now() or skipped) and self.advance():
                    continue
                if self.wait is None:
                    self.wait = f"{self.where()}: waiting for every selected sidecar to serve canary {target.canary}%, mirror {target.mirror}%"
                    self.check_deadline()
                return
            if not self.has_pause(PauseReason.PAUSE_STEP):
                self.pauses.append(PauseCondition(reason=PauseReason.PAUSE_STEP, start_time=self.step_start, duration=st.pause.duration))
            if self.consume_skip():
                if not self.advance():
                    return
                continue
            secs = st.pause.seconds
            if secs is None:
                self.wait = f"{self.where()}: paused until `kubectl modelroute promote`"
                return
            start = next(p.start_time for p in self.pauses if p.reason is PauseReason.PAUSE_STEP)
            left = secs - _seconds(self.now, start)
            if left > 0:
                self.wait = f"{self.where()}: {format_duration(left)} left"
                self.requeue.append(left)
                return
            end = datetime.fromtimestamp(start.timestamp() + secs, tz=start.tzinfo)
            if self.decide(due_at=end) is not Verdict.PASS or not self.advance():
                return

    # -- result ---------------------------------------------------------------------------
    def phase(self) -> RolloutPhase:
        if self.canary is None:
            return RolloutPhase.HEALTHY
        if self.aborted:
            return RolloutPhase.DEGRADED
        return RolloutPhase.PAUSED if self.pauses else RolloutPhase.PROGRESSING

    def finish(self) -> Decision:
        if self.skip:   # promote arrived where there is no step to finish (gate, abort in the same call)
            self.event("ActionIgnored", "promote: no step to finish right now; use promote-full to skip everything")
        phase = self.phase()
        if phase is RolloutPhase.PROGRESSING or phase is RolloutPhase.PAUSED:
            self.message = self.wait or self.message
            spec = self.cs.analysis if self.cs else None
            if spec is not None and self.weights.touches_canary:
                last = self.analysis.time if self.analysis else self.now
                self.requeue.append(max(1.0, spec.interval_seconds - _seconds(self.now, last)))
        elif phase is RolloutPhase.HEALTHY and not self.message:
            self.message = f"revision {self.stable} serves all traffic"
        status = RolloutStatus(
            phase=phase,
            stable_revision=self.stable,
            canary_revision=self.canary,
            attempt=self.attempt,
            current_step_index=self.index if self.canary is not None else None,
            step_start_time=self.step_start if self.canary is not None else None,
            decision_start_time=self.decision_start if self.canary is not None else None,
            weights=self.weights if not self.aborted else Weights(),
            acked=self.obs.all_acked and not self.changed,
            analysis=self.analysis,
            gate=self.gate,
            pause_conditions=self.pauses if phase is not RolloutPhase.HEALTHY else [],
            message=self.message[:2048],
            last_action=self.last_action,
        )
        requeue = min(self.requeue) if self.requeue and phase in (RolloutPhase.PROGRESSING, RolloutPhase.PAUSED) else None
        return Decision(
            status=status,
            serving=serving_of(status, self.d.strategy),
            events=tuple(self.events),
            requeue_after=requeue,
            promoted=self.promoted,
            run_gate=self.run_gate,
        )


def step(state: RolloutStatus | None, desired: Desired, observations: Observations, now: datetime) -> Decision:
    """One decision of the rollout of ``desired`` from ``state`` (``status.rollout``; None at first sight).

    ``now`` must be timezone-aware (UTC). Deterministic: the same inputs give the same decision.
    """
    run = _Run(state, desired, observations, now)
    run.reconcile_revision()
    run.apply_action()
    if run.canary is not None and not run.aborted and run.cs is not None \
            and run.background_analysis() and run.run_gate_phase():
        run.walk()
    return run.finish()
