"""The emulator's own HTTP API under `/_emulator/`: faults, script, request log.

GET    /_emulator/health
GET    /_emulator/faults               -> {"faults": [...]}
POST   /_emulator/faults               body: a fault, a list of faults, or
                                       {"faults": [...], "seed": n} -> {"faults": [added]}
DELETE /_emulator/faults[/{id}]
GET    /_emulator/script               -> {"rules": [...]}
POST   /_emulator/script               body: a rule, a list, or {"rules": [...]}
                                       rule: {"reply": {...}, "provider", "model", "contains", "times"}
DELETE /_emulator/script
GET    /_emulator/requests?provider=&model=&since=<seq>  -> {"requests": [...], "count": n}
DELETE /_emulator/requests
POST   /_emulator/reset                faults, script and log cleared
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .faults import Fault
from .script import Rule
from .state import EmulatorState


def _items(body: Any, key: str) -> list[dict[str, Any]]:
    if isinstance(body, dict) and key in body:
        body = body[key]
    if isinstance(body, dict):
        return [body]
    if isinstance(body, list) and all(isinstance(x, dict) for x in body):
        return body
    raise ValueError(f"expected an object, a list of objects or {{{key!r}: [...]}}")


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"invalid JSON: {exc}") from exc


def control_routes(state: EmulatorState) -> list[web.RouteDef]:
    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "providers": sorted(state.providers)})

    async def get_faults(request: web.Request) -> web.Response:
        return web.json_response({"faults": [f.to_json() for f in state.faults.list()]})

    async def add_faults(request: web.Request) -> web.Response:
        body = await _json(request)
        try:
            if isinstance(body, dict) and "seed" in body:
                state.faults.seed(body["seed"])
                if "faults" not in body:
                    return web.json_response({"faults": []})
            added = [state.faults.add(Fault.from_json(item)) for item in _items(body, "faults")]
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"faults": [f.to_json() for f in added]})

    async def clear_faults(request: web.Request) -> web.Response:
        state.faults.clear()
        return web.json_response({"faults": []})

    async def remove_fault(request: web.Request) -> web.Response:
        try:
            fault_id = int(request.match_info["id"])
        except ValueError as exc:
            raise web.HTTPNotFound() from exc
        if not state.faults.remove(fault_id):
            raise web.HTTPNotFound()
        return web.json_response({"removed": fault_id})

    async def get_script(request: web.Request) -> web.Response:
        return web.json_response({"rules": [r.to_json() for r in state.script.rules()]})

    async def add_script(request: web.Request) -> web.Response:
        body = await _json(request)
        try:
            added = [state.script.add(Rule.from_json(item)) for item in _items(body, "rules")]
        except (TypeError, ValueError, KeyError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"rules": [r.to_json() for r in added]})

    async def clear_script(request: web.Request) -> web.Response:
        state.script.clear()
        return web.json_response({"rules": []})

    async def get_requests(request: web.Request) -> web.Response:
        q = request.query
        since = int(q.get("since", "0") or 0)
        items = [r.to_json() for r in state.log.items(q.get("provider"), q.get("model")) if r.seq > since]
        counts = [{"provider": p, "model": m, "count": n} for (p, m), n in sorted(state.log.counts.items())]
        return web.json_response({"requests": items, "count": len(items), "totals": counts})

    async def clear_requests(request: web.Request) -> web.Response:
        state.log.clear()
        return web.json_response({"requests": []})

    async def reset(request: web.Request) -> web.Response:
        state.reset()
        return web.json_response({"ok": True})

    p = "/_emulator"
    return [
        web.get(f"{p}/health", health),
        web.get(f"{p}/faults", get_faults),
        web.post(f"{p}/faults", add_faults),
        web.delete(f"{p}/faults", clear_faults),
        web.delete(f"{p}/faults/{{id}}", remove_fault),
        web.get(f"{p}/script", get_script),
        web.post(f"{p}/script", add_script),
        web.delete(f"{p}/script", clear_script),
        web.get(f"{p}/requests", get_requests),
        web.delete(f"{p}/requests", clear_requests),
        web.post(f"{p}/reset", reset),
    ]
