"""ModelRouteEval runs (``kubectl modelroute eval``): the pure parts of the operator's side.

The request is read with the API models (every bad field named), a ready sidecar of the live
route is picked (or the reason there is none), and the sidecar's answer becomes the status.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelroute.api.evalgate import EvalResult
from modelroute.api.v1alpha1.modelrouteeval import (
    DEFAULT_EVAL_TTL_SECONDS,
    MAX_EVAL_BYTES,
    MAX_EVAL_CASES,
    EvalPhase,
    ModelRouteEvalStatus,
)
from modelroute.operator import evalrun
from modelroute.operator.kube.client import ApiError
from modelroute.operator.pods import SidecarPod
from modelroute.sidecar.eval import compare
from modelroute.sidecar.eval.dataset import Case
from modelroute.sidecar.eval.revisions import Answered, Revision, RevisionRun
from modelroute.sidecar.eval.scoring import Outcome

SPEC: dict[str, Any] = {"route": "chat", "targets": [{"name": "a", "provider": "openai", "model": "gpt-4o-mini", "apiKey": {"env": "K"}}],
        "selector": {"matchLabels": {"app": "web"}}}
CASES = [{"id": "1", "input": "hi", "expected": "billing"}]


def obj(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "e1", "namespace": "team", "uid": "u1"},
            "spec": {"modelRoute": "chat", "candidate": SPEC, "cases": CASES, **spec}}


def pod(name: str, *, ready: bool = True, app: str = "web", phase: str = "Running") -> SidecarPod:
    return SidecarPod.from_raw({"metadata": {"name": name, "namespace": "team", "uid": f"uid-{name}", "labels": {"app": app}},
                                "status": {"phase": phase, "podIP": "127.0.0.1",
                                           "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}})


def test_a_request_is_read_with_the_api_models_and_bad_fields_are_named() -> None:
    ask, candidate = evalrun.request_of(obj())
    assert (ask.model_route, candidate.route, ask.confidence, ask.min_cases) == ("chat", "chat", 0.95, 20)
    with pytest.raises(evalrun.EvalProblem, match=r"spec\.candidate\.targets\[0\]\.provider: Input should be"):
        evalrun.request_of(obj(candidate={**SPEC, "targets": [{**SPEC["targets"][0], "provider": "nope"}]}))
    with pytest.raises(evalrun.EvalProblem, match=rf"spec\.cases.*at most {MAX_EVAL_CASES}"):
        evalrun.request_of(obj(cases=CASES * (MAX_EVAL_CASES + 1)))
    with pytest.raises(evalrun.EvalProblem, match=rf"spec\.cases: \d+ bytes of JSON; at most {MAX_EVAL_BYTES}"):
        evalrun.request_of(obj(cases=[{"input": "x" * 2000}] * 300))


def test_an_unknown_or_invalid_live_route_is_a_clear_failure() -> None:
    with pytest.raises(evalrun.EvalProblem, match="modelroute team/chat not found"):
        evalrun.live_route(None, "team", "chat")
    with pytest.raises(evalrun.EvalProblem, match="modelroute team/chat is not valid now"):
        evalrun.live_route({"spec": {"route": "chat"}}, "team", "chat")


def test_a_ready_selected_sidecar_is_picked_or_the_reason_there_is_none() -> None:
    route = evalrun.live_route({"spec": SPEC}, "team", "chat")
    assert evalrun.pick_ready_pod(route, [pod("web-2"), pod("web-1", ready=False), pod("other", app="db")]).name == "web-2"
    with pytest.raises(evalrun.EvalProblem, match=r"no ready sidecar pod serves modelroute chat \(web-1: the sidecar is not ready yet\)"):
        evalrun.pick_ready_pod(route, [pod("web-1", ready=False)])
    with pytest.raises(evalrun.EvalProblem, match="the route selects no sidecar pod"):
        evalrun.pick_ready_pod(route, [pod("db-1", app="db")])


def _result() -> EvalResult:
    cases = [Case(f"c{i}", {"messages": [{"role": "user", "content": "x"}]}, "billing") for i in range(30)]
    route = evalrun.live_route({"spec": SPEC}, "team", "chat")
    runs = []
    for role in ("baseline", "candidate"):
        run = RevisionRun(Revision(role, role, route))
        for i, c in enumerate(cases):
            ok = role == "candidate" or i % 3
            run.answers[c.id] = Answered(Outcome(c.id, "billing" if ok else "refund", 0.01, exact=bool(ok), valid=True), "a", None)
        runs.append(run)
    doc = compare.build("chat", "golden.jsonl", cases, runs[0], runs[1])
    summary = {"target": "revision r", "provider": "openai", "model": "m", "cases": 30, "errors": 0, "exactMatch": 1.0,
               "validOutputRate": 1.0}
    return EvalResult.model_validate({"route": "chat", "revision": "r2", "targets": [summary], "baselineRevision": "r1",
                                      "comparison": compare.as_json(doc)})


def test_the_sidecars_answer_becomes_the_status() -> None:
    got = evalrun.status_of(pod("web-1"), 200, _result().model_dump_json(by_alias=True))
    assert (got.phase, got.verdict, got.pod, got.baseline_revision, got.candidate_revision) == (
        EvalPhase.SUCCEEDED, "better", "web-1", "r1", "r2")
    assert got.result is not None and got.result.comparison.candidate_only == 10 and got.message.startswith("candidate better")
    # The status round-trips through the wire as the CLI reads it.
    assert ModelRouteEvalStatus.model_validate(json.loads(json.dumps(got.wire()))) == got
    refused = evalrun.status_of(pod("web-1"), 422, json.dumps(
        {"error": {"message": "dataset rejected: 1 problem(s)", "code": "invalid_dataset", "problems": ["cases:2: input must be a string"]}}))
    assert refused.phase is EvalPhase.FAILED and "HTTP 422" in refused.message and "cases:2: input must be" in refused.message
    assert evalrun.status_of(pod("web-1"), 200, "{}").phase is EvalPhase.FAILED
    no_doc = _result().model_copy(update={"comparison": None}).model_dump_json(by_alias=True)
    assert "without a comparison" in evalrun.status_of(pod("web-1"), 200, no_doc).message


def test_finished_requests_are_not_run_again() -> None:
    assert not evalrun.finished(obj())
    assert not evalrun.finished({**obj(), "status": {"phase": "Running"}})
    assert evalrun.finished({**obj(), "status": {"phase": "Succeeded"}}) and evalrun.finished({**obj(), "status": {"phase": "Failed"}})


def _runs(kube: FakeKube) -> evalrun.EvalRuns:
    return evalrun.EvalRuns(kube, Ed25519PrivateKey.generate(), lambda: None, lambda ns: [], lambda ns: [],  # type: ignore[arg-type, return-value]
                            delete_retry=(0.0,))


class FakeKube:
    """The status writes and deletions a run makes (the seam: ``EvalRuns`` takes any object with
    ``merge_patch`` and ``delete``); ``refuse`` holds the errors the next deletions raise."""

    def __init__(self, refuse: tuple[Exception, ...] = ()) -> None:
        self.patches: list[tuple[str, dict[str, Any]]] = []
        self.deletes: list[tuple[str, dict[str, Any]]] = []
        self.refuse = list(refuse)
        self.written = asyncio.Event()
        self.deleted = asyncio.Event()

    async def merge_patch(self, path: str, body: dict[str, Any]) -> None:
        self.patches.append((path, body))
        self.written.set()

    async def delete(self, path: str, body: dict[str, Any]) -> None:
        self.deletes.append((path, body))
        if self.refuse:
            raise self.refuse.pop(0)
        self.deleted.set()


async def test_a_request_runs_once_even_when_a_late_event_still_shows_it_running() -> None:
    kube = FakeKube()
    runs = _runs(kube)
    runs.event("ADDED", obj())
    await asyncio.wait_for(kube.written.wait(), 5)
    await asyncio.wait_for(asyncio.gather(*runs.running.values()), 5)
    [(path, body)] = kube.patches
    assert path.endswith("/namespaces/team/modelrouteevals/e1/status")
    assert body["status"]["phase"] == "Failed" and body["status"]["message"] == "modelroute team/chat not found"
    runs.event("MODIFIED", {**obj(), "status": {"phase": "Running"}})   # delivered after the run ended
    assert not runs.running and len(kube.patches) == 1
    runs.event("DELETED", obj())
    assert not runs.ran
    await runs.close()


def test_a_candidate_sends_a_key_only_where_a_route_here_already_sends_it() -> None:
    live = {**SPEC, "targets": [{**SPEC["targets"][0], "baseUrl": "http://gateway.internal/v1"}]}
    allowed = evalrun.key_destinations([{"spec": live}, {"spec": {"route": "broken"}}])
    _, same = evalrun.request_of(obj(candidate={**live, "targets": [{**live["targets"][0], "model": "gpt-4.1-mini"}]}))
    evalrun.check_key_destinations(same, allowed)          # the same key to the same gateway
    _, official = evalrun.request_of(obj())
    evalrun.check_key_destinations(official, allowed)      # the provider's own endpoint
    _, elsewhere = evalrun.request_of(obj(candidate={**live, "targets": [{**live["targets"][0], "baseUrl": "https://evil.example/v1"}]}))
    with pytest.raises(evalrun.EvalProblem, match=r"spec\.candidate\.targets\[0\]: baseUrl https://evil\.example/v1 with this apiKey"):
        evalrun.check_key_destinations(elsewhere, allowed)


ENDED = "2026-12-06T08:00:00.250000Z"


def done(phase: str = "Succeeded", finished_at: str | None = ENDED, **spec: Any) -> dict[str, Any]:
    o = obj(**spec)
    o["metadata"]["creationTimestamp"] = "2026-12-06T07:59:00Z"
    o["status"] = {"phase": phase, **({"finishedAt": finished_at} if finished_at else {})}
    return o


def test_a_finished_eval_is_due_for_deletion_its_ttl_after_it_finished() -> None:
    at = datetime(2026, 12, 6, 8, 0, 0, 250000, tzinfo=UTC)
    assert evalrun.due_for_deletion(obj()) is None
    assert evalrun.due_for_deletion({**obj(), "status": {"phase": "Running", "finishedAt": ENDED}}) is None
    assert evalrun.due_for_deletion(done()) == at + timedelta(seconds=DEFAULT_EVAL_TTL_SECONDS) == at + timedelta(days=1)
    assert evalrun.due_for_deletion(done("Failed", ttlSecondsAfterFinished=0)) == at
    assert evalrun.due_for_deletion(done(ttlSecondsAfterFinished=90)) == at + timedelta(seconds=90)
    # No finish time (a status written by hand): counted from the object's creation.
    assert evalrun.due_for_deletion(done(finished_at=None, ttlSecondsAfterFinished=60)) == datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    assert evalrun.due_for_deletion(done(finished_at="yesterday", ttlSecondsAfterFinished=60)) == datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    no_time = done(finished_at=None)
    del no_time["metadata"]["creationTimestamp"]
    assert evalrun.due_for_deletion(no_time) is None
    # A TTL the model would refuse (an object from before the field, or a spec that failed) counts as the default.
    for bad in ("60", -1, True, 2**31, 1.5):
        assert evalrun.due_for_deletion(done(ttlSecondsAfterFinished=bad)) == at + timedelta(days=1), bad
    # The spec's model has the field with its default, and refuses what the operator would not take.
    ask, _ = evalrun.request_of(obj())
    assert ask.ttl_seconds_after_finished == DEFAULT_EVAL_TTL_SECONDS
    with pytest.raises(evalrun.EvalProblem, match=r"spec\.ttlSecondsAfterFinished: Input should be greater than or equal to 0"):
        evalrun.request_of(obj(ttlSecondsAfterFinished=-1))


async def test_the_operator_deletes_a_finished_eval_when_its_ttl_has_passed() -> None:
    kube = FakeKube()
    runs = _runs(kube)
    runs.event("MODIFIED", done("Failed", ttlSecondsAfterFinished=0))   # due long ago: deleted now
    await asyncio.wait_for(kube.deleted.wait(), 5)
    assert kube.deletes == [("/apis/modelroute.dev/v1alpha1/namespaces/team/modelrouteevals/e1", {"preconditions": {"uid": "u1"}})]
    assert not kube.patches and not runs.running   # a finished request is not run again
    await asyncio.sleep(0)
    assert not runs.expiring

    # Not due yet: a timer waits (one per object, not one per event), and the object's deletion ends it.
    later = done(finished_at=datetime.now(UTC).isoformat(), ttlSecondsAfterFinished=3600)
    runs.event(None, later)
    runs.event("MODIFIED", later)
    [(due, timer)] = runs.expiring.values()
    assert timedelta(minutes=59) < due - datetime.now(UTC) <= timedelta(hours=1)
    runs.event("MODIFIED", {**later, "spec": {**later["spec"], "ttlSecondsAfterFinished": 0}})   # TTL edited: due now
    await asyncio.sleep(0)
    assert timer.cancelled()
    await asyncio.wait_for(asyncio.gather(*(t for _, t in runs.expiring.values())), 5)
    assert len(kube.deletes) == 2
    runs.event(None, later)
    runs.event("DELETED", later)
    assert not runs.expiring
    await runs.close()


async def test_a_refused_deletion_is_tried_again_and_a_gone_object_is_left_alone() -> None:
    kube = FakeKube(refuse=(ApiError(500, "InternalError", "etcd"), TimeoutError()))
    runs = _runs(kube)
    runs.event("MODIFIED", done(ttlSecondsAfterFinished=0))
    await asyncio.wait_for(kube.deleted.wait(), 5)
    assert len(kube.deletes) == 3
    gone = FakeKube(refuse=(ApiError(404, "NotFound", "gone"),))
    runs = _runs(gone)
    runs.event("MODIFIED", done(ttlSecondsAfterFinished=0))
    await asyncio.wait_for(asyncio.gather(*(t for _, t in runs.expiring.values())), 5)
    assert len(gone.deletes) == 1 and not gone.deleted.is_set()
    await runs.close()
