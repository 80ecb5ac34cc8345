"""The task endpoints' shapes: ``POST /v1/classify`` and ``POST /v1/extract``, as pure builders.

``parse_classify`` / ``parse_extract`` read and check the app's body (``TaskError`` says
which field is wrong: a 400); ``classify_chat_request`` / ``extract_chat_request`` turn a
task into a chat request for the route (the route's own system prompt and params are
applied later by the router, as for any chat request); ``classify_response`` /
``extract_response`` build the answers.

Prompt templates: the user turn is the route's template (``Prompt.user``) rendered with
``{{input}}``, ``{{labels}}``, ``{{schema}}`` and the request's own ``variables``;
``{{name}}`` placeholders are replaced, nothing else is interpreted (so JSON braces in a
template are safe). Default template: ``{{input}}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelroute.sidecar.output.contract import OutputContract
from modelroute.sidecar.output.parse import LabelSet
from modelroute.sidecar.translate.chat import dumps

Json = dict[str, Any]

DEFAULT_TEMPLATE = "{{input}}"
MAX_LABELS = 256
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class TaskError(ValueError):
    """A malformed task request (400). ``param`` names the field."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def render(template: str, variables: Mapping[str, str]) -> str:
    """Replace ``{{name}}`` placeholders. Raises ``TaskError`` for a variable that is not given."""
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in variables:
            raise TaskError(f"prompt template needs variable {name!r}; pass it in variables", param="variables")
        return variables[name]
    return _PLACEHOLDER.sub(sub, template)


def template_variables(template: str) -> set[str]:
    """The variable names a template uses (config-time checks)."""
    return set(_PLACEHOLDER.findall(template))


@dataclass(frozen=True, slots=True)
class Task:
    """A parsed task request: ``labels`` for classify, ``schema`` for extract."""

    route: str
    input: str
    labels: tuple[str, ...] | None = None
    schema: Json | None = None
    variables: Mapping[str, str] = field(default_factory=dict)


def _common(body: Any) -> tuple[str, str, dict[str, str]]:
    if not isinstance(body, dict):
        raise TaskError("request body must be a JSON object")
    route = body.get("route")
    if not isinstance(route, str) or not route:
        raise TaskError("route is required (a route name, as apps send in `model`)", param="route")
    raw = body.get("input")
    if raw is None or raw == "":
        raise TaskError("input is required", param="input")
    text = raw if isinstance(raw, str) else dumps(raw)
    variables = body.get("variables") or {}
    if not isinstance(variables, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in variables.items()):
        raise TaskError("variables must be an object of strings", param="variables")
    return route, text, variables


def parse_classify(body: Any) -> Task:
    """``{route, input, labels?, variables?}`` -> ``Task``. ``input`` may be any JSON (sent as JSON text)."""
    route, text, variables = _common(body)
    labels = body.get("labels")
    if labels is not None:
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x.strip() for x in labels):
            raise TaskError("labels must be a non-empty list of non-empty strings", param="labels")
        if len(labels) > MAX_LABELS:
            raise TaskError(f"at most {MAX_LABELS} labels", param="labels")
        try:
            LabelSet(labels)  # labels that differ only in case or punctuation cannot be told apart
        except ValueError as e:
            raise TaskError(f"labels: {e}", param="labels") from None
    return Task(route, text, tuple(labels) if labels else None, None, variables)


def parse_extract(body: Any) -> Task:
    """``{route, input, schema?, variables?}`` -> ``Task``."""
    route, text, variables = _common(body)
    schema = body.get("schema")
    if schema is not None and not isinstance(schema, dict):
        raise TaskError("schema must be a JSON Schema object", param="schema")
    return Task(route, text, None, schema, variables)


def task_contract(task: Task, route_contract: OutputContract | None, *, kind: str) -> OutputContract:
    """The contract a task is checked against: the route's, with the request's labels or schema.

    Raises ``TaskError`` when neither the request nor the route says what to produce, and
    ``InvalidSchema`` (a 400 too) for a broken request schema.
    """
    if kind == "classify":
        if task.labels:
            return (route_contract or OutputContract.build()).with_overrides(labels=task.labels)
        if route_contract is None or route_contract.labels is None:
            raise TaskError("labels are required: the route declares no output.labels", param="labels")
        return route_contract
    if task.schema is not None:
        return (route_contract or OutputContract.build()).with_overrides(schema=task.schema)
    if route_contract is None or route_contract.schema is None:
        raise TaskError("schema is required: the route declares no output.schema", param="schema")
    return route_contract


def _user_turn(task: Task, template: str | None, defaults: Mapping[str, str] | None, extra: Mapping[str, str]) -> str:
    variables = {**(defaults or {}), **task.variables, **extra, "input": task.input}
    return render(template or DEFAULT_TEMPLATE, variables)


def classify_chat_request(task: Task, contract: OutputContract, *, user_template: str | None = None,
                          defaults: Mapping[str, str] | None = None) -> Json:
    """A chat request asking the route's model for one label. The router applies the route's system prompt.

    ``user_template`` / ``defaults`` are the route prompt's ``user`` and ``variables``.
    """
    assert contract.labels is not None
    labels = ", ".join(contract.labels.labels)
    instruction = f"Classify the input. {contract.expectation()}"
    return {"model": task.route, "messages": [
        {"role": "system", "content": instruction},
        {"role": "user", "content": _user_turn(task, user_template, defaults, {"labels": labels})},
    ]}


def extract_chat_request(task: Task, contract: OutputContract, *, user_template: str | None = None,
                         defaults: Mapping[str, str] | None = None) -> Json:
    """A chat request asking for JSON that matches the contract's schema (requested natively by ``apply_contract``)."""
    schema = dumps(contract.schema) if contract.schema is not None else "{}"
    instruction = f"Extract the requested information from the input. {contract.expectation()}"
    return {"model": task.route, "messages": [
        {"role": "system", "content": instruction},
        {"role": "user", "content": _user_turn(task, user_template, defaults, {"schema": schema})},
    ]}


def classify_response(label: str, *, route: str, target: str, revision: str | None, usage: Json | None,
                      prompt_version: str | None = None) -> Json:
    """``{label, route, target, revision, usage}`` (+ ``promptVersion`` when the route has one)."""
    out: Json = {"label": label, "route": route, "target": target, "revision": revision, "usage": usage}
    if prompt_version is not None:
        out["promptVersion"] = prompt_version
    return out


def extract_response(data: Any, *, valid: bool, route: str, target: str, revision: str | None, usage: Json | None,
                     prompt_version: str | None = None) -> Json:
    """``{data, valid, route, target, revision, usage}``; ``valid`` is False only when the route lets
    an invalid answer through (never by default: an invalid answer after repairs and fallbacks is a 422)."""
    out: Json = {"data": data, "valid": valid, "route": route, "target": target, "revision": revision, "usage": usage}
    if prompt_version is not None:
        out["promptVersion"] = prompt_version
    return out


def invalid_output_body(message: str, *, route: str, attempts: list[Json] | None = None) -> Json:
    """The 422 body (OpenAI error envelope) when every repair and fallback produced invalid output."""
    err: Json = {"message": f"route {route!r}: no target produced a valid answer: {message}", "type": "invalid_output",
                 "param": None, "code": "invalid_output"}
    if attempts is not None:
        err["attempts"] = attempts
    return {"error": err}
