"""Report the params the answering target refused: response header, ``/stats`` and (via the header) the trace.

Kept out of ``inbound.py`` so the per-answer hook is one call there. The answer comes from
the target's compiled ``translate.accepts.ParamFilter`` (the same pure function the adapter
used to drop them); a target without parameter rules costs one attribute check.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from modelroute.sidecar.routing.runtime import RouteRuntime
from modelroute.sidecar.server.state import STATE
from modelroute.sidecar.translate.accepts import DROPPED_HEADER


def note_dropped(request: web.Request, route: RouteRuntime, target: str, body: dict[str, Any], headers: dict[str, str]) -> None:
    """Set ``x-modelroute-dropped-params`` (comma-separated) and count each param, when any was dropped."""
    dropped = route.dropped(target, body)
    if dropped:
        headers[DROPPED_HEADER] = ",".join(dropped)
        request.app[STATE].stats.on_dropped(route.name, target, dropped)
