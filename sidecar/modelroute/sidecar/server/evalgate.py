"""``POST /eval`` on the admin listener: the operator's signed golden-dataset gate request.

HTTP only: the signature and body are checked (``guard``, ``auth.verify_request``) before the
cases run, and only the canary revision currently served may be judged (409 otherwise). What a
gate run is (a private runtime of the canary's spec, bounded concurrency and time) is
``modelroute.sidecar.rollout.gate``. Request and answer are ``modelroute.api.evalgate``'s models
(the answer's entry is one of ``modelroute eval --json``'s). Asked with ``baseline`` (a relative
gate threshold), the same cases also run on the stable revision, concurrently, and its summary
comes back beside the canary's.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from modelroute.api.evalgate import EvalRequest, EvalResult, EvalTargetSummary
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.sidecar.eval.dataset import Case, DatasetError, parse_lines
from modelroute.sidecar.eval.scoring import summarize
from modelroute.sidecar.rollout import gate
from modelroute.sidecar.server.auth import BadPush
from modelroute.sidecar.server.guard import Refused, admin_error, signed_request
from modelroute.sidecar.server.state import STATE

log = logging.getLogger(__name__)


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
