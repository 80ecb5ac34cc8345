"""``PUT /leases`` on the admin listener: the operator's signed quota leases for this pod.

Checked like every signed operator request (``guard.signed_request``: headers before the body,
then signature, audience and age), then validated as a ``LeasePush`` (422 with
every problem). Replays are harmless: a lease not newer than the one held for its quota is
ignored. The answer names the generation now held per quota, which the operator takes as the
acknowledgement its arithmetic needs (``modelroute.operator.leasing.acknowledge``).
"""

from __future__ import annotations

import logging

from aiohttp import web

from modelroute.sidecar.server.auth import BadPush
from modelroute.sidecar.server.guard import Refused, admin_error, signed_request
from modelroute.sidecar.server.state import STATE

log = logging.getLogger(__name__)


async def put_leases(request: web.Request) -> web.Response:
    from modelroute.api.leases import LeasePush, LeasesHeld  # built on the first push, not at start
    state = request.app[STATE]
    try:
        push = await signed_request(request, LeasePush)
    except Refused as e:
        log.warning("PUT /leases refused (%d %s): %s", e.status, e.code, e.message)
        return e.response()
    except BadPush as e:
        return admin_error(422, "lease push rejected; the leases held stay in force", "invalid_leases", problems=e.problems)
    async with state.lock:  # a recompile for a new quota must not interleave with a config swap
        state.quotas_changed(state.quotas.apply(push.leases))
    held = LeasesHeld(generations={q: lease.generation for q, lease in sorted(state.quotas.leases.items())})
    return web.json_response(text=held.model_dump_json(by_alias=True))
