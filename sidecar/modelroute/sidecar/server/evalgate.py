"""``POST /eval`` on the admin listener: the operator's signed golden-dataset gate request.

HTTP only: the signature and body are checked (``guard``, ``auth.verify_request``) before the
cases run, and only the canary revision currently served may be judged (409 otherwise). What a
gate run is (a private runtime of the canary's spec, bounded concurrency and time) is
``modelroute.sidecar.rollout.gate``. Request and answer are ``modelroute.api.evalgate``'s models
(the answer's entry is one of ``modelroute eval --json``'s). Asked with ``baseline`` (a relative
gate threshold), the same cases also run on the stable revision, concurrently, and its summary
comes back beside the canary's.

Asked with ``candidate`` (``kubectl modelroute eval``, through the operator's ModelRouteEval), the
cases instead run through that unserved spec and the route's live stable revision, interleaved
(``eval.revisions``, as the local ``modelroute eval`` runs them), and the answer carries the same
comparison document (``eval.compare``) in ``comparison``. The provider keys stay in this pod.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from modelroute.api.config import SidecarConfig
from modelroute.api.evalgate import CompareOptions, EvalRequest, EvalResult, EvalTargetSummary
from modelroute.api.v1alpha1 import ModelRoute, ModelRouteSpec
from modelroute.api.v1alpha1.strategy import revision_of
from modelroute.sidecar.config import loader
from modelroute.sidecar.eval.dataset import Case, DatasetError, parse_lines
from modelroute.sidecar.eval.scoring import summarize
from modelroute.sidecar.pipeline.counters import Ledger
from modelroute.sidecar.rollout import gate
from modelroute.sidecar.routing.observer import NullObserver
from modelroute.sidecar.routing.runtime import Runtime
from modelroute.sidecar.server.auth import BadPush
from modelroute.sidecar.server.guard import Refused, admin_error, signed_request
from modelroute.sidecar.server.state import STATE, SidecarState

if TYPE_CHECKING:
    from modelroute.sidecar.eval.revisions import RevisionRun

log = logging.getLogger(__name__)

COMPARE_TIME_BOUND_SECONDS = 540.0   # both revisions, every case; the operator waits a little longer


async def post_eval(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        ask = await signed_request(request, EvalRequest)
        route_name, revision = ask.route, ask.revision
        cases = parse_lines((json.dumps(c) for c in ask.cases), "cases")
    except Refused as e:
        log.warning("POST /eval refused (%d %s): %s", e.status, e.code, e.message)
        return e.response()
    except BadPush as e:   # signed, but not an EvalRequest
        return admin_error(422, "eval request rejected", "invalid_request", problems=e.problems)
    except DatasetError as e:
        return admin_error(422, f"dataset rejected: {len(e.problems)} problem(s)", "invalid_dataset", problems=e.problems)
    if ask.candidate is not None:
        return await _compare(state, ask, ask.candidate, cases)
    rt = state.current()
    canary = next((c for c in rt.config.canaries if c.route == route_name), None) if rt is not None else None
    if canary is None or canary.revision != revision:
        served = canary.revision if canary is not None else None
        return admin_error(409, f"route {route_name!r} does not serve canary revision {revision} here (serving: {served})",
                      "revision_not_served", served=served)
    assert rt is not None   # a served canary implies a runtime
    stable = next((r for r in rt.config.routes if r.spec.route == route_name), None)
    name = stable.metadata.name if stable is not None else route_name
    route = ModelRoute.model_validate({"metadata": {"name": name}, "spec": canary.spec.model_dump(mode="json", by_alias=True)})
    runs = [gate.run_cases(state.build_private, route, cases, time_bound=gate.TIME_BOUND_SECONDS)]
    if ask.baseline and stable is not None:  # a relative threshold: the same cases on stable, at the same time
        runs.append(gate.run_cases(state.build_private, stable, cases, time_bound=gate.TIME_BOUND_SECONDS))
    done = await asyncio.gather(*runs)
    summary = _summary(f"revision {revision}", route, cases, done[0])
    log.info("golden dataset on %s revision %s: %d cases, %d errors, exact match %s",
             route_name, revision, summary.cases, summary.errors, summary.exact_match)
    base_rev = rt.routes[route_name].revision if len(done) > 1 and stable is not None else None
    base = _summary(f"revision {base_rev}", stable, cases, done[1]) if base_rev is not None and stable is not None else None
    result = EvalResult(route=route_name, revision=revision, targets=[summary], baseline_revision=base_rev, baseline=base)
    return web.json_response(result.model_dump(mode="json", by_alias=True))


def _summary(name: str, route: ModelRoute, cases: list[Case], run: gate.GateRun) -> EvalTargetSummary:
    target = route.spec.targets[0]
    return summarize(name, target.provider.value, target.model, cases, run.outcomes, run.cost_usd).to_api()


async def _compare(state: SidecarState, ask: EvalRequest, spec: ModelRouteSpec, cases: list[Case]) -> web.Response:
    """The cases through ``spec`` (unserved) and the route's live stable revision: the comparison document."""
    # Imported on the first comparison, not at start: a sidecar that never compares never loads them.
    from modelroute.sidecar.eval import compare, revisions

    rt = state.current()
    stable = next((r for r in rt.config.routes if r.spec.route == ask.route), None) if rt is not None else None
    if rt is None or stable is None:
        return admin_error(404, f"route {ask.route!r} is not served here", "route_not_served")
    if revision_of(spec) != ask.revision:
        return admin_error(422, f"revision {ask.revision} is not the candidate's ({revision_of(spec)})", "invalid_request")
    candidate = ModelRoute.model_validate({"metadata": {"name": stable.metadata.name},
                                           "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True)})
    found = loader.problems(SidecarConfig(routes=[candidate], model_registry=rt.config.model_registry), state.keys)
    if found:
        return admin_error(422, f"candidate rejected: {len(found)} problem(s)", "invalid_candidate", problems=found)
    opts = ask.compare or CompareOptions()
    base_rev = rt.routes[ask.route].revision

    def build(config: SidecarConfig, ledger: Ledger) -> Runtime:
        return state.build_private(config, NullObserver(), ledger)

    sides = (revisions.Revision("baseline", opts.baseline_source, stable), revisions.Revision("candidate", opts.candidate_source, candidate))
    try:
        async with asyncio.timeout(COMPARE_TIME_BOUND_SECONDS):
            b, c, _ = await revisions.compare_revisions(*sides, cases, None, build=build)
    except TimeoutError:
        return admin_error(504, f"{len(cases)} cases through both revisions took longer than {COMPARE_TIME_BOUND_SECONDS:g}s; "
                                "use fewer cases", "eval_timeout")
    doc = compare.build(ask.route, opts.dataset, cases, b, c, confidence=opts.confidence, min_cases=opts.min_cases)
    log.info("eval of route %s: candidate %s against stable %s on %d cases: %s", ask.route, ask.revision, base_rev,
             len(cases), doc.comparison.message)
    result = EvalResult(route=ask.route, revision=ask.revision, targets=[_run_summary(f"revision {ask.revision}", candidate, cases, c)],
                        baseline_revision=base_rev, baseline=_run_summary(f"revision {base_rev}", stable, cases, b), comparison=doc)
    return web.json_response(result.model_dump(mode="json", by_alias=True))


def _run_summary(name: str, route: ModelRoute, cases: list[Case], run: RevisionRun) -> EvalTargetSummary:
    answers = [run.answers[c.id] for c in cases if c.id in run.answers]
    usd = sum(a.cost_usd or 0.0 for a in answers) if all(a.cost_usd is not None for a in answers) else None
    return _summary(name, route, cases, gate.GateRun([a.outcome for a in answers], usd))
