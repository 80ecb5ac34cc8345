"""Guards on admin requests: body limits, refusals that close the connection, signed-request headers.

Shared by the admin listener (``admin``: ``PUT /config``), the operator's gate (``evalgate``:
``POST /eval``) and its quota leases (``leases``: ``PUT /leases``), so none imports another. Writes are checked before a byte of the body is
read (``check_signed_headers``, ``authorization_of``), then read only up to ``AdminLimits``
(``guarded_body``: 413 on size, 408 on time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from modelroute.api.signing import SIGNATURE_HEADER
from modelroute.sidecar.server.auth import AuthSettings, Denied, Signed, signature_well_formed, verify_request

DEFAULT_ADMIN_MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_ADMIN_BODY_SECONDS = 10.0


@dataclass(frozen=True)
class AdminLimits:
    """Bounds on admin request bodies (``PUT /config``, ``POST /eval``)."""

    max_body_bytes: int = DEFAULT_ADMIN_MAX_BODY_BYTES   # larger: 413, declared or not
    body_seconds: float = DEFAULT_ADMIN_BODY_SECONDS     # the whole body must arrive within this: else 408


AUTH = web.AppKey("modelroute_auth", AuthSettings)
LIMITS = web.AppKey("modelroute_admin_limits", AdminLimits)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def admin_error(status: int, message: str, code: str, **extra: Any) -> web.Response:
    """An admin error answer (``modelroute.api.admin.AdminError``); ``extra`` are its optional fields."""
    from modelroute.api.admin import AdminError, AdminErrorDetail  # built on the first error, not at start
    unknown = set(extra) - set(AdminErrorDetail.model_fields)
    assert not unknown, f"not fields of AdminErrorDetail: {unknown}"  # the operator would never see them
    body = AdminError(error=AdminErrorDetail(message=message, code=code, **extra)).json_body()
    return web.Response(text=body, status=status, content_type="application/json")


class Refused(Exception):
    """An admin request refused before (or while) its body is read; the connection is closed."""

    def __init__(self, status: int, message: str, code: str, *, www_authenticate: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.www_authenticate = status, message, code, www_authenticate

    def response(self, **extra: Any) -> web.Response:
        resp = admin_error(self.status, self.message, self.code, **extra)
        if self.www_authenticate:
            resp.headers["WWW-Authenticate"] = "Bearer"
        resp.force_close()  # never drain (or buffer) the rest of a refused body
        return resp


def authorization_of(request: web.Request) -> str | None:
    """The ``Authorization`` header; a non-ASCII one is refused (no token is non-ASCII)."""
    value = request.headers.get("Authorization")
    if value is not None and not value.isascii():
        raise Denied(401, "the Authorization header must be ASCII", "invalid_token")
    return value


def check_signed_headers(auth: AuthSettings, signature: str | None) -> None:
    """Before reading a signed body: operator mode on, and a well-formed signature header (401)."""
    if auth.operator_key is None:
        raise Denied(401, "signed operator requests are disabled: start the sidecar with --operator-public-key",
                     "writes_disabled")
    if not signature:
        raise Denied(401, f"missing {SIGNATURE_HEADER} header: operator requests must be signed", "missing_signature")
    if not signature_well_formed(signature):
        raise Denied(401, f"malformed {SIGNATURE_HEADER} header: expected ed25519=<base64 of 64 bytes>", "invalid_signature")


async def guarded_body(request: web.Request, limits: AdminLimits) -> bytes:
    """The body, read only up to ``limits`` (size, then time); raises ``Refused`` (413, 408)."""
    limit = limits.max_body_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        raise Refused(413, f"request body is {declared} bytes; the admin limit is {limit} bytes", "request_too_large")
    buf = bytearray()
    try:
        async with asyncio.timeout(limits.body_seconds):
            async for chunk in request.content.iter_chunked(64 * 1024):
                buf += chunk
                if len(buf) > limit:
                    raise Refused(413, f"request body exceeds the admin limit of {limit} bytes", "request_too_large")
    except TimeoutError:
        raise Refused(408, f"request body not received within {limits.body_seconds:g}s", "body_timeout") from None
    return bytes(buf)


async def signed_request(request: web.Request, model: type[Signed]) -> Signed:
    """A signed operator request other than a config push, as ``model``: headers checked before the
    body is read, the body bounded, then signature, body, audience and age (``auth.verify_request``).

    Raises ``Refused`` (401/403/408/413) or ``auth.BadPush`` (422, one line per problem).
    """
    signature = request.headers.get(SIGNATURE_HEADER)
    try:
        check_signed_headers(request.app[AUTH], signature)
        body = await guarded_body(request, request.app[LIMITS])
        return verify_request(request.app[AUTH], body, signature, model)
    except Denied as e:
        raise Refused(e.status, e.message, e.code) from None
