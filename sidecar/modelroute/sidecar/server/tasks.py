"""The task endpoints: ``POST /v1/classify`` and ``POST /v1/extract`` on the inbound listener.

A task is a chat request the sidecar writes itself (``output.tasks``: the route's prompt
template filled with the input, the labels or the schema) and sends down the same path as
any chat request: the route's targets, fallback, breakers, deadline, limits and cache,
``/stats`` and traces. The answer must meet the task's contract (the route's ``output``,
with the request's own ``labels`` or ``schema``); it is repaired, falls back, or ends in a
422 with the validation message, never returned unchecked.

* classify ``{route, input, labels?, variables?}`` -> ``{label, route, target, revision, usage}``
* extract ``{route, input, schema?, variables?}`` -> ``{data, valid, route, target, revision, usage}``

Headers as on the chat path (route, target, config version, revision, variant, prompt version).
While a rollout runs on the route, a task takes part in it exactly as a chat request does
(``server.rollout.RolloutRequest``: canary weight, stickiness, mirror copies, per-variant
evidence); each revision writes the task from its own prompt and checks it against its own
contract, and ``revision`` in the body and ``x-modelroute-variant`` say who answered.
Agreement compares the normalised label or the extracted JSON (``output.answer``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from modelroute.sidecar.errors import DeadlineExceeded, RouteFailed, failure_class
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
from modelroute.sidecar.rollout.mirror import Ask, Prepare
from modelroute.sidecar.routing import router
from modelroute.sidecar.routing.runtime import RouteRuntime
from modelroute.sidecar.server.dropped import note_dropped
from modelroute.sidecar.server.envelope import failure_body
from modelroute.sidecar.server.inbound import (
    H_PROMPT,
    H_REVISION,
    H_ROUTE,
    H_TARGET,
    H_VARIANT,
    H_VERSION,
    read_json,
    reject,
)
from modelroute.sidecar.server.rollout import RolloutRequest
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


def _ask(task: Task, kind: str, route: RouteRuntime) -> Ask:
    """The task as ``route`` answers it: its prompt template, its contract. Raises ``TaskError``, ``InvalidSchema``."""
    prompt = route.spec.prompt
    contract = task_contract(task, route.contract, kind=kind)
    build = classify_chat_request if kind == CLASSIFY else extract_chat_request
    chat = build(task, contract, user_template=prompt.user if prompt else None,
                 defaults=prompt.variables if prompt else None)
    return Ask(chat, contract)


def _prepare(task: Task, kind: str) -> Prepare:
    """The task on another revision (a mirror copy); None when that revision cannot ask it."""
    def prepare(route: RouteRuntime) -> Ask | None:
        try:
            return _ask(task, kind, route)
        except (TaskError, InvalidSchema):
            return None
    return prepare


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
        try:
            ask = _ask(task, kind, route)  # bad input is a 400 before any variant is picked or counted
        except (TaskError, InvalidSchema) as e:
            return _bad_task(state, e)
        rollout = None
        if route.canary is not None:  # a rollout is on: the same variant pick, mirror and evidence as chat
            rollout = RolloutRequest(state, runtime, route, route.canary, request.headers, _prepare(task, kind),
                                     want_json=kind == EXTRACT)
        try:
            if rollout is not None and rollout.route is not route:
                route = rollout.route
                try:
                    ask = _ask(task, kind, route)  # the canary's own prompt and contract
                except (TaskError, InvalidSchema) as e:
                    rollout.failed("client_error")
                    return _bad_task(state, e)
            return await _answer(request, state, runtime.version, route, ask, kind, rollout)
        finally:
            if rollout is not None:
                rollout.close()


def _bad_task(state: SidecarState, e: TaskError | InvalidSchema) -> web.Response:
    if isinstance(e, InvalidSchema):
        return reject(state, OPENAI, 400, f"schema is not a valid JSON Schema: {e}", param="schema")
    return reject(state, OPENAI, 400, str(e), param=e.param)


async def _answer(request: web.Request, state: SidecarState, version: str, route: RouteRuntime, ask: Ask, kind: str,
                  tap: RolloutRequest | None) -> web.StreamResponse:
    chat, contract = ask.request, ask.contract
    assert contract is not None  # a task always has one
    headers = {H_ROUTE: route.name, H_VERSION: version, H_REVISION: route.revision, H_VARIANT: route.variant}
    if route.prompt_version is not None:
        headers[H_PROMPT] = route.prompt_version
    try:
        done = await router.complete(route, chat, contract=contract)
    except (RouteFailed, DeadlineExceeded) as e:
        if tap is not None:
            tap.failed(failure_class(e))
        status, payload = failure_body(route.name, e)
        if e.attempts:
            headers[H_TARGET] = e.attempts[-1].target
        return web.Response(status=status, body=dumps(payload), content_type=JSON, headers=headers)
    headers[H_TARGET] = done.target
    note_dropped(request, route, done.target, chat, headers)
    try:
        value = contract.check_completion(done.response)  # the normalised answer: microseconds
    except OutputError as e:  # cannot happen for an answer the router accepted; never pass it on
        if tap is not None:
            tap.failed("invalid_output")
        return reject(state, OPENAI, 502, f"route {route.name!r}: the answer no longer validates: {e}",
                      "api_error", code="invalid_output")
    if tap is not None:
        tap.answered(done.target, done.response)
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
