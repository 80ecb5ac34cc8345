"""Who may write ``PUT /config``: the operator (signed pushes) or an admin (bearer token).

Operator mode: the body is a ``ConfigPush`` signed with the operator's Ed25519 key; the sidecar
holds only the public half, so a pod that can reach another pod's sidecar still cannot
reconfigure it. A push is accepted only for this pod (``audience``: namespace, name and, when
the sidecar knows it, the pod's UID, so a captured push cannot outlive its pod even under the same
name), only if it is not older than the replay floor (the last accepted push or bundle, kept
across container restarts by ``floor.FloorFile``) and only if signed within ``MAX_SKEW`` of now.

Standalone mode: ``Authorization: Bearer <token>`` compared in constant time.

These are pure checks: they return the verified push or raise ``Denied`` with the status.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from pydantic import ValidationError

from modelroute.api.config import ConfigPush, PodRef, SignedRequest
from modelroute.api.problems import Problems, validation_problems
from modelroute.api.signing import SIGNATURE_HEADER, verify

if TYPE_CHECKING:
    from nacl.signing import VerifyKey

MAX_SKEW = timedelta(minutes=5)

Signed = TypeVar("Signed", bound=SignedRequest)

HOW_TO_ENABLE = (
    "config writes are disabled: set MODELROUTE_ADMIN_TOKEN (or --admin-token-file) to accept bearer-token writes, "
    "or --operator-public-key (MODELROUTE_OPERATOR_PUBLIC_KEY_FILE) to accept pushes signed by the operator"
)


class Denied(Exception):
    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


class BadPush(Problems):
    """Correctly signed, but not a valid ``ConfigPush`` (422)."""


@dataclass(frozen=True)
class AuthSettings:
    operator_key: VerifyKey | None = None
    admin_token: str | None = None
    pod: PodRef | None = None
    max_skew: timedelta = MAX_SKEW

    @property
    def writes_enabled(self) -> bool:
        return self.operator_key is not None or self.admin_token is not None

    def mode(self) -> str:
        modes = [m for m, on in (("operator", self.operator_key is not None), ("token", self.admin_token is not None)) if on]
        return "+".join(modes) or "disabled"


def bearer_ok(settings: AuthSettings, authorization: str | None) -> None:
    """Raise ``Denied(401)`` unless ``authorization`` carries the admin token."""
    if settings.admin_token is None:
        raise Denied(401, HOW_TO_ENABLE, "writes_disabled")
    if not authorization:
        raise Denied(401, "missing 'Authorization: Bearer <token>' header", "missing_token")
    scheme, _, token = authorization.partition(" ")
    # surrogateescape: aiohttp decodes header bytes that are not UTF-8 to lone surrogates
    presented = token.strip().encode("utf-8", "surrogateescape")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented, settings.admin_token.encode()):
        raise Denied(401, "invalid admin token", "invalid_token")


def signature_well_formed(header: str) -> bool:
    """Whether ``header`` has the form of a signature (``ed25519=`` + base64 of 64 bytes); checked before the body is read."""
    if not header.isascii() or not header.startswith("ed25519=") or len(header) != len("ed25519=") + 88:
        return False
    try:
        return len(base64.b64decode(header.removeprefix("ed25519="), validate=True)) == 64
    except (binascii.Error, ValueError):
        return False


def audience_problem(audience: PodRef, pod: PodRef, what: str = "push") -> str | None:
    """Why ``audience`` is not this ``pod`` (None: it is). A sidecar that knows its UID requires it."""
    if (audience.namespace, audience.name) != (pod.namespace, pod.name):
        return f"{what} is for pod {audience.namespace}/{audience.name}, this is {pod.namespace}/{pod.name}"
    if pod.uid is not None and audience.uid != pod.uid:
        return f"{what} is for pod UID {audience.uid or '(none)'}, this pod's UID is {pod.uid}"
    return None


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _verified(settings: AuthSettings, body: bytes, signature: str | None, model: type[Signed], what: str,
              *, now: datetime | None) -> Signed:
    """Signature, body (as ``model``), audience and age of an operator-signed body; ``what`` names it in messages."""
    noun = "config pushes" if what == "push" else "operator requests"
    if settings.operator_key is None:
        disabled = HOW_TO_ENABLE if what == "push" else "operator requests are disabled: start the sidecar with --operator-public-key"
        raise Denied(401, disabled, "writes_disabled")
    if not signature:
        raise Denied(401, f"missing {SIGNATURE_HEADER} header: {noun} must be signed by the operator", "missing_signature")
    if not verify(settings.operator_key, body, signature):
        raise Denied(403, f"invalid signature: the {what} was not signed by the operator's key", "invalid_signature")
    try:
        signed = model.model_validate_json(body)
    except ValidationError as e:
        raise BadPush(validation_problems(e, what)) from None
    if settings.pod is None:
        raise Denied(403, "this sidecar does not know its pod identity (set MODELROUTE_POD_NAMESPACE and MODELROUTE_POD_NAME)",
                     "no_pod_identity")
    if (problem := audience_problem(signed.audience, settings.pod, what)) is not None:
        raise Denied(403, problem, "wrong_audience")
    now = now or datetime.now(UTC)
    issued = _aware(signed.issued_at)
    if abs(now - issued) > settings.max_skew:
        raise Denied(403, f"{what} issued at {issued.isoformat()} is outside the accepted window of "
                          f"{int(settings.max_skew.total_seconds())}s around now ({now.isoformat()})", f"stale_{what}")
    return signed


def verify_push(
    settings: AuthSettings, body: bytes, signature: str | None, *, last_push_at: datetime | None,
    current_version: str | None, now: datetime | None = None,
) -> ConfigPush:
    """The verified push in ``body``; raises ``Denied`` (401/403) or ``BadPush`` (422)."""
    push = _verified(settings, body, signature, ConfigPush, "push", now=now)
    if last_push_at is not None:
        issued, last = _aware(push.issued_at), _aware(last_push_at)
        if issued < last or (issued == last and push.config.hash != current_version):
            raise Denied(403, f"push issued at {issued.isoformat()} is not newer than the config already accepted "
                              f"({last.isoformat()}): replay refused", "replayed_push")
    return push


def verify_request(settings: AuthSettings, body: bytes, signature: str | None, model: type[Signed], *,
                   now: datetime | None = None) -> Signed:
    """A signed operator request other than a push (e.g. ``POST /eval``, ``model`` its body): signature,
    body, audience and age checked.

    Raises ``Denied`` (401/403) or ``BadPush`` (422, one line per problem) like ``verify_push``.
    No replay floor: such requests only read (they never change what is served), so a replay within
    ``max_skew`` costs work, not integrity.
    """
    return _verified(settings, body, signature, model, "request", now=now)

