"""The operator's bundle and push bytes are what the sidecar's own readers accept."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelroute.api import signing
from modelroute.api.config import PodRef
from modelroute.api.selection import render_for_pod
from modelroute.api.signing import verify_key
from modelroute.operator import bundle
from modelroute.operator.push.plan import signed_body
from modelroute.operator.validation import validate
from modelroute.sidecar.server.auth import AuthSettings, Denied, signature_well_formed, verify_push
from modelroute.sidecar.server.bundle import read_bundle

from .operator_factories import raw_route

KEY = signing.load_private_key(signing.generate_private_key_pem())


def test_sidecar_reads_the_operators_bundle(tmp_path: Path) -> None:
    routes = [validate(raw_route("a", selector={"matchLabels": {"app": "web"}}), {}).route,
              validate(raw_route("b", "other"), {}).route]
    data = bundle.encode(bundle.make_bundle("team", [r for r in routes if r], datetime.now(UTC)), KEY)
    for name, text in data.items():  # as the kubelet writes a ConfigMap volume
        (tmp_path / name).write_text(text)
    got = read_bundle(tmp_path, verify_key(KEY))
    operator_view = render_for_pod([r for r in routes if r], {"app": "web"}).config.hash
    assert render_for_pod(got.routes, {"app": "web"}).config.hash == operator_view


def test_sidecar_accepts_the_operators_push() -> None:
    cfg = render_for_pod([validate(raw_route("a"), {}).route], {}).config  # type: ignore[list-item]
    body, headers = signed_body(KEY, "team", "web-1", cfg, datetime.now(UTC), "uid-1")
    for pod in (PodRef(namespace="team", name="web-1"), PodRef(namespace="team", name="web-1", uid="uid-1")):
        auth = AuthSettings(operator_key=verify_key(KEY), pod=pod)
        push = verify_push(auth, body, headers[signing.SIGNATURE_HEADER], last_push_at=None, current_version=None)
        assert push.config.hash == cfg.hash
    assert signing.SIGNATURE_HEADER in headers and signature_well_formed(headers[signing.SIGNATURE_HEADER])


def test_a_push_for_an_earlier_pod_of_the_same_name_is_refused() -> None:
    cfg = render_for_pod([validate(raw_route("a"), {}).route], {}).config  # type: ignore[list-item]
    body, headers = signed_body(KEY, "team", "web-1", cfg, datetime.now(UTC), "uid-old")
    auth = AuthSettings(operator_key=verify_key(KEY), pod=PodRef(namespace="team", name="web-1", uid="uid-new"))
    with pytest.raises(Denied, match="UID uid-old, this pod's UID is uid-new"):
        verify_push(auth, body, headers[signing.SIGNATURE_HEADER], last_push_at=None, current_version=None)
