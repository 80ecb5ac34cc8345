"""The admin listener: probes, config read/write, stats, metrics, and the signed ``POST /eval`` gate (``evalgate``).

``PUT /config`` accepts either a signed ``ConfigPush`` (operator mode, header
``X-Modelroute-Signature``) or, with ``Authorization: Bearer <token>``, ModelRoute documents
(a JSON/YAML list, ``{"routes": [...]}``, or multi-document YAML). Validation reports every
problem (422) and the old config keeps serving; a valid config is swapped in atomically. A body
without routes is refused (422) unless it is the named form ``{"routes": [], "clearRoutes": true}``.
A bearer-token body is checked like a config file (``loader.admin_config``): a retired model named by any
route or canary is a problem, one with a shutdown ahead a warning in the answer (``ConfigApplied.warnings``).

Writes are checked before a byte of the body is read: the bearer token in full (``bearer_ok``);
for a signed push, whose signature covers the body, the header's presence and form
(``check_signed_headers``). Then (``guarded_body``) the declared ``Content-Length`` against ``AdminLimits.max_body_bytes`` (413), then a bounded read that
also caps chunked bodies and gives up on slow ones (408). Rejections close the connection, so an
unauthenticated client cannot make the sidecar buffer or drain a large body.

``PUT /leases`` takes the operator's signed quota leases (``leases``).

Reads: ``/healthz``, ``/readyz``, ``/stats`` and ``/metrics`` are open (probes, the operator, a
metrics scraper; counters only, no content). ``GET /config`` shows prompt text only to a bearer
token holder; everyone else sees each prompt's version (``redact_prompts``). In a cluster the
chart's NetworkPolicy limits who reaches the admin port at all (docs/security.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from modelroute.api.config import SidecarConfig
from modelroute.api.signing import SIGNATURE_HEADER
from modelroute.sidecar.config import loader
from modelroute.sidecar.config.loader import ConfigError
from modelroute.sidecar.metrics.prom import Metric, generate_latest
from modelroute.sidecar.server.auth import AuthSettings, BadPush, Denied, bearer_ok, verify_push
from modelroute.sidecar.server.envelope import error_middleware
from modelroute.sidecar.server.guard import (
    AUTH,
    LIMITS,
    AdminLimits,
    Refused,
    admin_error,
    authorization_of,
    check_signed_headers,
    guarded_body,
)
from modelroute.sidecar.server.leases import put_leases
from modelroute.sidecar.server.state import STATE, SidecarState

log = logging.getLogger(__name__)


async def post_eval(request: web.Request) -> web.Response:
    """``POST /eval``: ``evalgate`` (with the eval runner and its models) is imported by the first gate
    request, not by every sidecar start (~35 ms of CPU there: bench/README.md)."""
    from modelroute.sidecar.server import evalgate
    return await evalgate.post_eval(request)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    p = state.provenance
    if state.draining:
        return web.json_response({"ready": False, "reason": "shutting down"}, status=503)
    if not state.ready or p is None:
        return web.json_response({"ready": False, "reason": "no config loaded yet (waiting for --config, the route bundle or a push)"},
                                 status=503)
    return web.json_response({"ready": True, "version": p.version, "source": p.source})


def redact_prompts(view: dict[str, Any]) -> dict[str, Any]:
    """``view`` with every route's and canary's prompt text replaced by its version (pure)."""
    def spec_of(spec: Any) -> Any:
        prompt = spec.get("prompt") if isinstance(spec, dict) else None
        if not isinstance(prompt, dict):
            return spec
        return {**spec, "prompt": {"version": prompt.get("version"), "redacted": True}}

    out = dict(view)
    out["routes"] = [{**r, "spec": spec_of(r.get("spec"))} for r in view.get("routes", [])]
    if "canaries" in view:
        out["canaries"] = [{**c, "spec": spec_of(c.get("spec"))} for c in view["canaries"]]
    return out


def _config_view(state: SidecarState, *, full: bool = False) -> dict[str, Any]:
    rt = state.current()
    p = state.provenance
    if rt is None or p is None:
        return {"version": None, "routes": [], "source": None, "issuedAt": None, "loadedAt": None}
    view = rt.config.redacted()  # key references only: keys never live in the config
    if not full:
        view = redact_prompts(view)
    view.update({
        "source": p.source,
        "issuedAt": p.issued_at.isoformat() if p.issued_at else None,
        "loadedAt": p.loaded_at,
    })
    return view


async def get_config(request: web.Request) -> web.Response:
    """Prompt text only for the admin token's holder; anyone else who reaches the port sees versions."""
    auth = request.app[AUTH]
    full = False
    if request.headers.get("Authorization") is not None:
        try:
            bearer_ok(auth, authorization_of(request))
        except Denied as e:
            return Refused(e.status, e.message, e.code, www_authenticate=True).response()
        full = True
    return web.json_response(_config_view(request.app[STATE], full=full))


async def put_config(request: web.Request) -> web.Response:
    state = request.app[STATE]
    auth = request.app[AUTH]
    signature = request.headers.get(SIGNATURE_HEADER)
    use_operator = auth.operator_key is not None and (signature is not None or auth.admin_token is None)
    try:
        # Credentials before the body: a signature covers the body, so only its form is checked here.
        if use_operator:
            check_signed_headers(auth, signature)
        else:
            bearer_ok(auth, authorization_of(request))
        body = await guarded_body(request, request.app[LIMITS])
        if use_operator:
            return await _apply_push(state, auth, body, signature)
    except Denied as e:
        state.stats.config_rejections += 1
        log.warning("PUT /config refused (%d %s): %s", e.status, e.code, e.message)
        return Refused(e.status, e.message, e.code, www_authenticate=e.status == 401 and not use_operator).response(
            mode=auth.mode())
    except Refused as e:
        state.stats.config_rejections += 1
        log.warning("PUT /config refused (%d %s): %s", e.status, e.code, e.message)
        return e.response()
    try:
        config, warnings = loader.admin_config(body, state.keys)
    except ConfigError as e:
        state.stats.config_rejections += 1
        return admin_error(422, f"config rejected: {len(e.problems)} problem(s); the previous config keeps serving",
                      "invalid_config", problems=e.problems)
    return await _apply(state, config, source="admin", issued_at=None, warnings=warnings)


async def _apply_push(state: SidecarState, auth: AuthSettings, body: bytes, signature: str | None) -> web.Response:
    async with state.lock:  # the replay floor is read and advanced under the same lock as the swap
        current = state.current()
        try:
            push = verify_push(auth, body, signature, last_push_at=state.replay_floor(),
                               current_version=current.version if current else None)
        except BadPush as e:
            state.stats.config_rejections += 1
            return admin_error(422, "push rejected: not a valid ConfigPush; the previous config keeps serving", "invalid_config",
                          problems=e.problems)
        try:
            applied = state.apply_locked(push.config, source="push", issued_at=push.issued_at)
        except ConfigError as e:
            return admin_error(422, f"config rejected: {len(e.problems)} problem(s); the previous config keeps serving",
                          "invalid_config", problems=e.problems)
    return applied_answer(applied.version, applied.changed, [])


def applied_answer(version: str, changed: bool, warnings: list[str]) -> web.Response:
    """The typed success answer of a config apply (``ConfigApplied``)."""
    from modelroute.api.admin import ConfigApplied  # built on the first apply, not at start
    return web.json_response(ConfigApplied(version=version, changed=changed, warnings=warnings).wire())


async def _apply(state: SidecarState, config: SidecarConfig, *, source: str, issued_at: Any,
                 warnings: list[str]) -> web.Response:
    try:
        applied = await state.apply(config, source=source, issued_at=issued_at)
    except ConfigError as e:
        return admin_error(422, f"config rejected: {len(e.problems)} problem(s); the previous config keeps serving",
                      "invalid_config", problems=e.problems)
    return applied_answer(applied.version, applied.changed, warnings)


async def stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    doc = state.planner.ledger.merge_json(state.stats.as_json())  # + cost, output checks, cache, limits, prompt
    doc["quotas"] = {q: r.model_dump(mode="json", by_alias=True) for q, r in state.quotas.report().items()}
    doc["rollouts"] = state.evidence.as_json()  # per route, run and variant: what the operator judges a canary on
    doc["mirror"] = {"inflight": state.mirrors.inflight, "sent": state.mirrors.sent, "dropped": state.mirrors.dropped,
                     "limit": state.mirrors.limit}
    return web.Response(text=json.dumps(doc), content_type="application/json")


class _Collected:
    """Metric families already read: what ``generate_latest`` renders in a thread."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus text format (0.0.4) of the state's registry: routing, rollout and pipeline counters, serving gauges.

    The families are read on the event loop (the counters belong to it); rendering the text, most of
    the cost of a scrape, runs in a thread so a large exposition does not hold requests up.
    """
    families = list(request.app[STATE].registry.collect())
    body = await asyncio.get_running_loop().run_in_executor(None, generate_latest, _Collected(families))
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


json_errors = error_middleware(
    "admin", lambda request, e: admin_error(e.status, f"{request.method} {request.path}: {e.reason}", "http_error"),
    lambda request: admin_error(500, "internal error in the modelroute sidecar (logged)", "internal_error"))


def build_app(state: SidecarState, auth: AuthSettings, limits: AdminLimits | None = None) -> web.Application:
    limits = limits or AdminLimits()
    app = web.Application(client_max_size=limits.max_body_bytes, middlewares=[json_errors])
    app[STATE] = state
    app[AUTH] = auth
    app[LIMITS] = limits
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/config", get_config)
    app.router.add_put("/config", put_config)
    app.router.add_get("/stats", stats)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/eval", post_eval)
    app.router.add_put("/leases", put_leases)
    return app
