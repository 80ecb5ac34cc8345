"""The task endpoints: ``POST /v1/classify`` and ``POST /v1/extract`` on the inbound listener.

A task is a chat request the sidecar writes itself (``output.tasks``: the route's prompt
template filled with the input, the labels or the schema) and sends down the same path as
any chat request: the route's targets, fallback, breakers, deadline, limits and cache,
``/stats`` and traces. The answer must meet the task's contract (the route's ``output``,
with the request's own ``labels`` or ``schema``); it is repaired, falls back, or ends in a
422 with the validation message, never returned unchecked.

* classify ``{route, input, labels?, variables?}`` -> ``{label, route, target, revision, usage}``
* extract ``{route, input, schema?, variables?}`` -> ``{data, valid, route, target, revision, usage}``

Headers as on the chat path (route, target, config version, prompt version).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from modelroute.sidecar.errors import DeadlineExceeded, RouteFailed
from modelroute.sidecar.output import (
    InvalidSchema,
    OutputError,
    Task,
    TaskError,
    classify_chat_request,
    classify_response,
    extract_chat_request,
    extract_response,
    parse_classify,
    parse_extract,
    task_contract,
)
from modelroute.sidecar.routing import router
from modelroute.sidecar.server.dropped import note_dropped
from modelroute.sidecar.server.envelope import failure_body
from modelroute.sidecar.server.inbound import (
    H_PROMPT,
    H_REVISION,
    H_ROUTE,
    H_TARGET,
    H_VERSION,
    read_json,
    reject,
)
from modelroute.sidecar.server.state import STATE, SidecarState
from modelroute.sidecar.server.wire import JSON, OPENAI, dumps

CLASSIFY = "classify"
EXTRACT = "extract"


async def classify(request: web.Request) -> web.StreamResponse:
    return await _traced(request, CLASSIFY)


async def extract(request: web.Request) -> web.StreamResponse:
    return await _traced(request, EXTRACT)


async def _traced(request: web.Request, kind: str) -> web.StreamResponse:
    state: SidecarState = request.app[STATE]
    tel = state.telemetry
    if tel is None:
        return await _task(request, state, kind)
    with tel.server_span(request) as span:  # the same SERVER span as the chat path (prompt version from headers)
        resp = await _task(request, state, kind)
        span.finish(resp)
        return resp


def _parse(body: Any, kind: str) -> Task:
    return parse_classify(body) if kind == CLASSIFY else parse_extract(body)


async def _task(request: web.Request, state: SidecarState, kind: str) -> web.StreamResponse:
    body = await read_json(request, state, OPENAI)
    if isinstance(body, web.Response):
        return body
    try:
        task = _parse(body, kind)
    except TaskError as e:
        return reject(state, OPENAI, 400, str(e), param=e.param)
    if state.holder.current is None:
        return reject(state, OPENAI, 503, "the sidecar has no config yet (waiting for --config, the route bundle or a push)",
                      "service_unavailable_error", code="not_ready")
    with state.holder.lease() as runtime:
        route = runtime.routes.get(task.route)
        if route is None:
            known = ", ".join(sorted(runtime.routes)) or "(none)"
            return reject(state, OPENAI, 404, f"route {task.route!r} does not exist; known routes: {known}",
                          param="route", code="model_not_found")
        prompt = route.spec.prompt
        try:
            contract = task_contract(task, route.contract, kind=kind)
            build = classify_chat_request if kind == CLASSIFY else extract_chat_request
            chat = build(task, contract, user_template=prompt.user if prompt else None,
                         defaults=prompt.variables if prompt else None)
        except TaskError as e:
            return reject(state, OPENAI, 400, str(e), param=e.param)
        except InvalidSchema as e:
            return reject(state, OPENAI, 400, f"schema is not a valid JSON Schema: {e}", param="schema")
        headers = {H_ROUTE: route.name, H_VERSION: runtime.version, H_REVISION: route.revision}
        if route.prompt_version is not None:
            headers[H_PROMPT] = route.prompt_version
        try:
            done = await router.complete(route, chat, contract=contract)
        except (RouteFailed, DeadlineExceeded) as e:
            status, payload = failure_body(route.name, e)
            if e.attempts:
                headers[H_TARGET] = e.attempts[-1].target
            return web.Response(status=status, body=dumps(payload), content_type=JSON, headers=headers)
        headers[H_TARGET] = done.target
        note_dropped(request, route, done.target, chat, headers)
        try:
            value = contract.check_completion(done.response)  # the normalised answer: microseconds
        except OutputError as e:  # cannot happen for an answer the router accepted; never pass it on
            return reject(state, OPENAI, 502, f"route {route.name!r}: the answer no longer validates: {e}",
                          "api_error", code="invalid_output")
        usage = done.response.get("usage")
        if kind == CLASSIFY:
            out = classify_response(value, route=route.name, target=done.target, revision=route.revision,
                                    usage=usage, prompt_version=route.prompt_version)
        else:
            out = extract_response(value, valid=True, route=route.name, target=done.target, revision=route.revision,
                                   usage=usage, prompt_version=route.prompt_version)
        return web.Response(body=dumps(out), content_type=JSON, headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/classify", classify)
    app.router.add_post("/v1/extract", extract)
