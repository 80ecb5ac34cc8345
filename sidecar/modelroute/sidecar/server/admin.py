"""The admin listener: probes, config read/write, stats, metrics, and the signed ``POST /eval`` gate (``evalgate``).

``PUT /config`` accepts either a signed ``ConfigPush`` (operator mode, header
``X-Modelroute-Signature``) or, with ``Authorization: Bearer <token>``, ModelRoute documents
(a JSON/YAML list, ``{"routes": [...]}``, or multi-document YAML). Validation reports every
problem (422) and the old config keeps serving; a valid config is swapped in atomically.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from modelroute.api.config import SidecarConfig
from modelroute.api.signing import SIGNATURE_HEADER
from modelroute.sidecar import configfile
from modelroute.sidecar.configfile import ConfigError
from modelroute.sidecar.server.auth import AuthSettings, BadPush, Denied, bearer_ok, verify_push
from modelroute.sidecar.server.state import STATE, SidecarState

log = logging.getLogger(__name__)

AUTH = web.AppKey("modelroute_auth", AuthSettings)
MAX_CONFIG_BYTES = 8 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str, code: str, **extra: Any) -> web.Response:
    return web.json_response({"error": {"message": message, "code": code, **extra}}, status=status)


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


def _config_view(state: SidecarState) -> dict[str, Any]:
    rt = state.current()
    p = state.provenance
    if rt is None or p is None:
        return {"version": None, "routes": [], "source": None, "issuedAt": None, "loadedAt": None}
    view = rt.config.redacted()  # key references only: keys never live in the config
    view.update({
        "source": p.source,
        "issuedAt": p.issued_at.isoformat() if p.issued_at else None,
        "loadedAt": p.loaded_at,
    })
    return view


async def get_config(request: web.Request) -> web.Response:
    return web.json_response(_config_view(request.app[STATE]))


async def put_config(request: web.Request) -> web.Response:
    state = request.app[STATE]
    auth = request.app[AUTH]
    body = await request.read()
    signature = request.headers.get(SIGNATURE_HEADER)
    use_operator = auth.operator_key is not None and (signature is not None or auth.admin_token is None)
    try:
        if use_operator:
            return await _apply_push(state, auth, body, signature)
        bearer_ok(auth, request.headers.get("Authorization"))
    except Denied as e:
        state.stats.config_rejections += 1
        log.warning("PUT /config refused (%d %s): %s", e.status, e.code, e.message)
        headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 and not use_operator else None
        resp = _error(e.status, e.message, e.code, mode=auth.mode())
        if headers:
            resp.headers.update(headers)
        return resp
    try:
        config = configfile.checked(configfile.parse_json_or_yaml(body, "body"), state.keys)
        config = configfile.with_canaries(config, body, state.keys)
    except ConfigError as e:
        state.stats.config_rejections += 1
        return _error(422, f"config rejected: {len(e.problems)} problem(s); the previous config keeps serving",
                      "invalid_config", problems=e.problems)
    return await _apply(state, config, source="admin", issued_at=None)


async def _apply_push(state: SidecarState, auth: AuthSettings, body: bytes, signature: str | None) -> web.Response:
    async with state.lock:  # the replay floor is read and advanced under the same lock as the swap
        current = state.current()
        try:
            push = verify_push(auth, body, signature, last_push_at=state.last_push_at,
                               current_version=current.version if current else None)
        except BadPush as e:
            state.stats.config_rejections += 1
            return _error(422, "push rejected: not a valid ConfigPush; the previous config keeps serving", "invalid_config",
                          problems=e.problems)
        try:
            applied = state.apply_locked(push.config, source="push", issued_at=push.issued_at)
        except ConfigError as e:
            return _error(422, f"config rejected: {len(e.problems)} problem(s); the previous config keeps serving",
                          "invalid_config", problems=e.problems)
    return web.json_response({"version": applied.version, "changed": applied.changed})


async def _apply(state: SidecarState, config: SidecarConfig, *, source: str, issued_at: Any) -> web.Response:
    try:
        applied = await state.apply(config, source=source, issued_at=issued_at)
    except ConfigError as e:
        return _error(422, f"config rejected: {len(e.problems)} problem(s); the previous config keeps serving",
                      "invalid_config", problems=e.problems)
    return web.json_response({"version": applied.version, "changed": applied.changed})


async def stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    doc = state.reflexive.ledger.merge_json(state.stats.as_json())  # + cost, output checks, cache, limits, prompt
    doc["rollouts"] = state.evidence.as_json()  # per route, run and variant: what the operator judges a canary on
    doc["mirror"] = {"inflight": state.mirrors.inflight, "sent": state.mirrors.sent, "dropped": state.mirrors.dropped,
                     "limit": state.mirrors.limit}
    return web.Response(text=json.dumps(doc), content_type="application/json")


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    text = state.stats.prometheus() + state.evidence.prometheus() + state.reflexive.ledger.prometheus()
    extra = (
        "# HELP modelroute_ready Whether the sidecar serves a config (1) or not (0).\n"
        "# TYPE modelroute_ready gauge\n"
        f"modelroute_ready {1 if state.ready else 0}\n"
        "# HELP modelroute_inflight_requests Inbound requests in flight on the current config.\n"
        "# TYPE modelroute_inflight_requests gauge\n"
        f"modelroute_inflight_requests {state.inflight()}\n"
        "# HELP modelroute_mirror_inflight Mirror copies to canaries in flight.\n"
        "# TYPE modelroute_mirror_inflight gauge\n"
        f"modelroute_mirror_inflight {state.mirrors.inflight}\n"
        "# HELP modelroute_mirror_dropped_total Mirror copies dropped because the mirror pool was full.\n"
        "# TYPE modelroute_mirror_dropped_total counter\n"
        f"modelroute_mirror_dropped_total {state.mirrors.dropped}\n"
    )
    return web.Response(body=(text + extra).encode(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return _error(e.status, f"{request.method} {request.path}: {e.reason}", "http_error")
    except Exception:
        log.exception("unexpected error serving admin %s %s", request.method, request.path)
        return _error(500, "internal error in the modelroute sidecar (logged)", "internal_error")


def build_app(state: SidecarState, auth: AuthSettings) -> web.Application:
    app = web.Application(client_max_size=MAX_CONFIG_BYTES, middlewares=[json_errors])
    app[STATE] = state
    app[AUTH] = auth
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/config", get_config)
    app.router.add_put("/config", put_config)
    app.router.add_get("/stats", stats)
    app.router.add_get("/metrics", metrics)
    from modelroute.sidecar.server.evalgate import post_eval  # it builds on this module's helpers

    app.router.add_post("/eval", post_eval)
    return app
