"""The status of one ModelRoute, computed from plain data by a pure function.

Inputs: the validation outcome, the accepted version, what every sidecar pod should serve
and serves now, push failures and conflicts. Output: a ``ModelRouteStatus`` whose
conditions carry messages a person can act on. ``lastTransitionTime`` only moves when a
condition's status changes, so recomputing an unchanged status yields an equal object.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from modelroute.api.config import route_hash
from modelroute.api.selection import matches
from modelroute.api.v1alpha1 import (
    Condition,
    ConditionStatus,
    ModelRoute,
    ModelRouteStatus,
    Phase,
    PodCounts,
    PodFailure,
)
from modelroute.api.v1alpha1.status import MAX_POD_FAILURES
from modelroute.operator.pods import SIDECAR_SELECTOR
from modelroute.operator.push.plan import PodPlan
from modelroute.operator.validation import Validation

MAX_LISTED = 5


@dataclass(frozen=True)
class PodResult:
    """One pod after a reconcile round: what it should serve, what it serves, what failed."""

    plan: PodPlan
    served_hash: str | None
    failure: tuple[str, str] | None = None  # (reason, message) of the last push attempt

    @property
    def name(self) -> str:
        return self.plan.pod.name

    @property
    def synced(self) -> bool:
        return self.served_hash == self.plan.desired_hash


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def _condition(
    type_: str, ok: bool, reason: str, message: str, generation: int | None,
    previous: ModelRouteStatus | None, now: datetime,
) -> Condition:
    status = ConditionStatus.TRUE if ok else ConditionStatus.FALSE
    since = now
    for c in previous.conditions if previous else []:
        if c.type == type_ and c.status == status and c.last_transition_time is not None:
            since = c.last_transition_time
    return Condition(
        type=type_, status=status, reason=reason, message=message[:4096],
        last_transition_time=since, observed_generation=generation,
    )


def compute(
    validation: Validation,
    accepted: ModelRoute | None,
    pods: Iterable[PodResult],
    previous: ModelRouteStatus | None,
    now: datetime,
) -> ModelRouteStatus:
    key, gen = validation.key, validation.generation
    shown = accepted or validation.parsed
    selector = shown.spec.selector if shown else None
    selected = [p for p in pods if shown is not None and matches(selector, p.plan.pod.labels)]

    synced: list[str] = []
    failed: list[PodFailure] = []
    waiting: list[str] = []
    conflicts: dict[str, list[str]] = {}  # winner -> pods
    for p in selected:
        lost = [c for c in p.plan.rendering.conflicts if c.loser == key]
        if lost:
            conflicts.setdefault(lost[0].winner, []).append(p.name)
            continue
        serves = accepted is not None and any(r.key == key for r in p.plan.rendering.config.routes)
        if serves and p.synced:
            synced.append(p.name)
        elif p.failure is not None:
            reason, message = p.failure
            failed.append(PodFailure(pod=p.name, reason=reason, message=message[:1024]))
        else:
            waiting.append(f"{p.name} ({p.plan.pod.waiting_reason or 'push pending'})")

    n = len(selected)
    route_name = shown.spec.route if shown else "?"
    chash = route_hash(accepted) if accepted else None
    conds: list[Condition] = []

    def cond(type_: str, ok: bool, reason: str, message: str) -> None:
        conds.append(_condition(type_, ok, reason, message, gen, previous, now))

    # Synced: every selected pod serves the accepted version.
    if accepted is None:
        cond("Synced", False, "NothingAccepted", "No valid version of this ModelRoute has been accepted yet; no sidecar serves it.")
    elif len(synced) == n:
        cond("Synced", True, "AllPodsSynced" if n else "NoPodsSelected", f"{n}/{n} selected pods serve {chash}.")
    else:
        parts = [f"{len(synced)}/{n} selected pods serve {chash}."]
        if failed:
            parts.append(f"Push failed on {_names([f.pod for f in failed])}.")
        if waiting:
            parts.append(f"Waiting for {_names(waiting)}.")
        if conflicts:
            parts.append(f"Not pushed to {sum(len(v) for v in conflicts.values())} pods because of a route-name conflict.")
        cond("Synced", False, "PushFailed" if failed else ("Conflict" if conflicts and not waiting else "Pushing"), " ".join(parts))

    if failed:
        lines = "; ".join(f"{f.pod}: {f.reason}: {f.message}" for f in failed[:MAX_LISTED])
        cond("Degraded", True, "PushFailed",
             f"{len(failed)} of {n} selected pods did not accept the config ({lines}). "
             "They keep serving their previous config; the operator retries with backoff.")
    if conflicts:
        msgs = [
            f"route name {route_name!r} is already served by ModelRoute {winner} (older) on pods {_names(sorted(ps))}"
            for winner, ps in sorted(conflicts.items())
        ]
        cond("Conflict", True, "RouteNameConflict",
             "; ".join(msgs) + ". This ModelRoute is not served there: rename spec.route or change "
             "spec.selector so the two ModelRoutes select different pods.")

    if validation.warnings:
        text = "; ".join(validation.warnings)
        cond("ModelDeprecated", True, "ShutdownAnnounced", text if len(text) <= 4000 else text[:3997] + "...")
    if validation.problems:
        keep = (f"sidecars keep serving the last accepted version (generation {accepted.metadata.generation}, {chash})"
                if accepted is not None else "nothing is served for this ModelRoute until the spec is fixed")
        phase, ok, reason = Phase.INVALID, False, "InvalidSpec"
        message = f"Spec rejected: {'; '.join(validation.problems)}. Fix the ModelRoute; {keep}."
    elif conflicts:
        phase, ok, reason = Phase.CONFLICT, False, "RouteNameConflict"
        message = next(c.message for c in conds if c.type == "Conflict")
    elif failed:
        phase, ok, reason = Phase.DEGRADED, False, "PushFailed"
        message = next(c.message for c in conds if c.type == "Degraded")
    elif n == 0:
        phase, ok, reason = Phase.PENDING, False, "NoPodsSelected"
        message = (f"spec.selector matches no pod labelled {SIDECAR_SELECTOR} in namespace "
                   f"{validation.key.split('/')[0]}; label the app pods or change spec.selector.")
    elif len(synced) < n:
        phase, ok, reason = Phase.PROGRESSING, False, "Pushing"
        message = next(c.message for c in conds if c.type == "Synced")
    else:
        phase, ok, reason = Phase.READY, True, "Serving"
        message = f"Route {route_name!r} is served by all {n} selected pods ({chash})."
    conds.insert(0, _condition("Ready", ok, reason, message, gen, previous, now))

    primary = None
    if shown is not None:
        t = shown.spec.targets[0]
        primary = f"{t.provider.value}/{t.model}"
    failed.sort(key=lambda f: f.pod)
    return ModelRouteStatus(
        observed_generation=gen,
        phase=phase,
        config_hash=chash,
        primary_target=primary,
        pods=PodCounts(selected=n, synced=len(synced), failed=len(failed)),
        failures=failed[:MAX_POD_FAILURES],
        conditions=conds,
    )


def parse_previous(raw: object) -> ModelRouteStatus | None:
    """The status as stored in the cluster, or None when absent or not ours."""
    if not isinstance(raw, dict) or not raw:
        return None
    try:
        return ModelRouteStatus.model_validate(raw)
    except ValueError:
        return None


def changed(previous: ModelRouteStatus | None, new: ModelRouteStatus) -> bool:
    return previous is None or previous.wire() != new.wire()
