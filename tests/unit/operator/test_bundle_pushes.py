from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from modelroute.api import signing
from modelroute.api.config import ConfigPush, SidecarConfig
from modelroute.api.selection import render_for_pod
from modelroute.api.signing import verify_key
from modelroute.operator import bundle
from modelroute.operator.push.plan import plan, signed_body
from modelroute.operator.validation import validate

from .operator_factories import pod, raw_route

KEY = signing.load_private_key(signing.generate_private_key_pem())
PUB = verify_key(KEY)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def route(name: str, **kw: object):  # type: ignore[no-untyped-def]
    r = validate(raw_route(name, **kw), {}).route  # type: ignore[arg-type]
    assert r is not None
    return r


def test_bundle_round_trip_and_signature_over_exact_bytes() -> None:
    b = bundle.make_bundle("team", [route("b"), route("a", route="other")], NOW)
    data = bundle.encode(b, KEY)
    assert signing.verify(PUB, data[bundle.BUNDLE_KEY].encode(), data[bundle.SIGNATURE_KEY])
    back = bundle.decode(data, PUB)
    assert [r.metadata.name for r in back.routes] == ["a", "b"]
    assert back == b


def test_tampered_or_foreign_bundle_is_refused() -> None:
    data = bundle.encode(bundle.make_bundle("team", [route("a")], NOW), KEY)
    tampered = {**data, bundle.BUNDLE_KEY: data[bundle.BUNDLE_KEY].replace("gpt-4o-mini", "gpt-4o")}
    with pytest.raises(bundle.BundleError, match="not a valid signature"):
        bundle.decode(tampered, PUB)
    other = signing.load_private_key(signing.generate_private_key_pem())
    with pytest.raises(bundle.BundleError):
        bundle.decode(bundle.encode(bundle.make_bundle("team", [], NOW), other), PUB)
    with pytest.raises(bundle.BundleError, match=r"no bundle\.json"):
        bundle.decode({}, PUB)


def test_same_routes_ignores_order_but_not_content() -> None:
    a, b = route("a"), route("b", route="x")
    assert bundle.same_routes([a, b], [b, a])
    assert not bundle.same_routes([a], [route("a", model="gpt-4.1-mini")])


def test_push_body_is_a_signed_config_push_for_one_pod() -> None:
    cfg = SidecarConfig(routes=[route("a")])
    body, headers = signed_body(KEY, "team", "web-1", cfg, NOW, "uid-1")
    assert signing.verify(PUB, body, headers[signing.SIGNATURE_HEADER])
    push = ConfigPush.model_validate_json(body)
    assert (push.audience.namespace, push.audience.name, push.audience.uid) == ("team", "web-1", "uid-1")
    assert push.config.hash == cfg.hash
    assert json.loads(body)["issuedAt"].startswith("2026-11-24T12:00:00")


def test_plan_pushes_only_where_the_hash_differs() -> None:
    routes = [route("a", selector={"matchLabels": {"app": "web"}})]
    h = render_for_pod(routes, {"app": "web"}).config.hash
    pods = [pod("p1", {"app": "web"}, served=h), pod("p2", {"app": "web"}), pod("p3", {"app": "db"}),
            pod("p4", {"app": "web"}, ip=None, phase="Pending")]
    plans = {p.pod.name: p for p in plan(routes, pods)}
    assert not plans["p1"].needs_push
    assert plans["p2"].needs_push and plans["p2"].desired_hash == h
    assert plans["p3"].rendering.config.routes == [] and plans["p3"].needs_push  # empty config, not annotated yet
    assert not plans["p4"].needs_push  # no IP yet
    # A fresh ack overrides a stale annotation; a verify request forces a check.
    assert not {p.pod.name: p for p in plan(routes, pods, served={"uid-p2": h})}["p2"].needs_push
    assert {p.pod.name: p for p in plan(routes, pods, verify=["uid-p1"])}["p1"].needs_push
