"""``POST /eval``: the operator's golden-dataset gate, run here against a route's canary revision.

The body is a signed operator request ``{audience, issuedAt, route, revision, cases: [...]}``
(``auth.verify_request``). The cases run through a private runtime compiled from the canary's
spec (its own clients and breakers, a ``NullObserver``), so the gate never touches live traffic,
live stats, rollout evidence or the live canary's breakers. Only the canary currently served may
be judged (409 otherwise): the operator asks once the new revision is on every sidecar.
The answer has the shape of ``modelroute eval --json`` (``targets[0]`` is the revision).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from aiohttp import web

from modelroute.api.config import SidecarConfig
from modelroute.api.signing import SIGNATURE_HEADER
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.sidecar.eval.dataset import Case, DatasetError, parse_lines
from modelroute.sidecar.eval.runner import run_case
from modelroute.sidecar.eval.scoring import Outcome, labels_of, summarize
from modelroute.sidecar.observe import NullObserver
from modelroute.sidecar.server.admin import AUTH, LIMITS, Refused, _error, check_signed_headers, guarded_body
from modelroute.sidecar.server.auth import BadPush, Denied, verify_request
from modelroute.sidecar.server.state import STATE, SidecarState

log = logging.getLogger(__name__)

MAX_CASES = 2000
CONCURRENCY = 4          # cases in flight at once: a gate must not crowd out live requests
TIME_BOUND_SECONDS = 120.0  # cases still running then count as "deadline" errors


async def run_cases(state: SidecarState, route: ModelRoute, cases: list[Case], *,
                    concurrency: int = CONCURRENCY, time_bound: float = TIME_BOUND_SECONDS) -> list[Outcome]:
    """Every case through a private runtime of ``route``; outcomes in dataset order, unfinished ones as deadline errors."""
    rt = state.builder(SidecarConfig(routes=[route]), state.keys, NullObserver(), None)
    labels = labels_of(cases)
    gate = asyncio.Semaphore(max(1, concurrency))
    started = time.perf_counter()

    async def one(case: Case) -> Outcome:
        async with gate:
            return await run_case(rt, route.spec.route, case, labels)

    tasks = [asyncio.ensure_future(one(c)) for c in cases]
    try:
        if tasks:
            await asyncio.wait(tasks, timeout=time_bound)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await rt.aclose()
    elapsed = time.perf_counter() - started
    return [t.result() if t.done() and not t.cancelled() and t.exception() is None
            else Outcome(c.id, None, elapsed, error="deadline") for c, t in zip(cases, tasks, strict=True)]


def _request_fields(doc: dict[str, Any]) -> tuple[str, str, list[Any]]:
    route, revision, cases = doc.get("route"), doc.get("revision"), doc.get("cases")
    problems = []
    if not isinstance(route, str) or not route:
        problems.append("route: a route name is required")
    if not isinstance(revision, str) or not revision:
        problems.append("revision: the canary revision to judge is required")
    if not isinstance(cases, list) or not cases:
        problems.append("cases: a non-empty list of dataset cases is required")
    elif len(cases) > MAX_CASES:
        problems.append(f"cases: at most {MAX_CASES} cases per run")
    if problems:
        raise BadPush(problems)
    assert isinstance(route, str) and isinstance(revision, str) and isinstance(cases, list)
    return route, revision, cases


async def post_eval(request: web.Request) -> web.Response:
    state = request.app[STATE]
    signature = request.headers.get(SIGNATURE_HEADER)
    try:
        check_signed_headers(request.app[AUTH], signature)  # before a byte of the body is read
        body = await guarded_body(request, request.app[LIMITS])
        doc = verify_request(request.app[AUTH], body, signature)
        route_name, revision, raw_cases = _request_fields(doc)
        cases = parse_lines((json.dumps(c) for c in raw_cases), "cases")
    except Denied as e:
        log.warning("POST /eval refused (%d %s): %s", e.status, e.code, e.message)
        return Refused(e.status, e.message, e.code).response()
    except Refused as e:
        log.warning("POST /eval refused (%d %s): %s", e.status, e.code, e.message)
        return e.response()
    except BadPush as e:
        return _error(422, "eval request rejected", "invalid_request", problems=e.problems)
    except DatasetError as e:
        return _error(422, f"dataset rejected: {len(e.problems)} problem(s)", "invalid_dataset", problems=e.problems)
    rt = state.current()
    canary = next((c for c in rt.config.canaries if c.route == route_name), None) if rt is not None else None
    if canary is None or canary.revision != revision:
        served = canary.revision if canary is not None else None
        return _error(409, f"route {route_name!r} does not serve canary revision {revision} here (serving: {served})",
                      "revision_not_served", served=served)
    assert rt is not None   # a served canary implies a runtime
    stable = next((r for r in rt.config.routes if r.spec.route == route_name), None)
    name = stable.metadata.name if stable is not None else route_name
    route = ModelRoute.model_validate({"metadata": {"name": name}, "spec": canary.spec.model_dump(mode="json", by_alias=True)})
    outcomes = await run_cases(state, route, cases, time_bound=TIME_BOUND_SECONDS)
    target = route.spec.targets[0]
    summary = summarize(f"revision {revision}", target.provider.value, target.model, cases, outcomes, None)
    log.info("golden dataset on %s revision %s: %d cases, %d errors, exact match %s",
             route_name, revision, summary.cases, summary.errors, summary.exact_match)
    return web.json_response({"route": route_name, "revision": revision, "targets": [summary.as_json()]})
