from __future__ import annotations

from modelroute.operator.acceptance import accept
from modelroute.operator.pods import DEFAULT_ADMIN_PORT, SidecarPod, snapshot
from modelroute.operator.validation import referenced_secrets, validate

from .operator_factories import raw_pod, raw_route


def test_pod_view_reads_ip_phase_ready_port_and_hash() -> None:
    p = SidecarPod.from_raw(raw_pod("a", {"app": "x"}, ip="127.0.0.9", served="sha256:1", admin_port="9001"))
    assert (p.ip, p.phase, p.ready, p.admin_port, p.served_hash) == ("127.0.0.9", "Running", True, 9001, "sha256:1")
    assert p.reachable and p.admin_url == "http://127.0.0.9:9001"
    assert SidecarPod.from_raw(raw_pod("b")).admin_port == DEFAULT_ADMIN_PORT


def test_pod_not_reachable_without_ip_or_with_bad_port() -> None:
    no_ip = SidecarPod.from_raw(raw_pod("a", ip=None, phase="Pending"))
    assert not no_ip.reachable and no_ip.waiting_reason == "the pod is Pending"
    assert not SidecarPod.from_raw(raw_pod("b", admin_port="http")).reachable


def test_snapshot_round_trips_through_the_view() -> None:
    raw = raw_pod("a", {"app": "x"}, served="sha256:2")
    assert SidecarPod.from_raw(snapshot(raw)) == SidecarPod.from_raw(raw)


def test_valid_route_is_parsed_and_slimmed() -> None:
    v = validate(raw_route("r1"), {})
    assert v.valid and v.route is not None
    assert v.route.metadata.model_extra == {}  # resourceVersion/managedFields dropped
    assert v.key == "team/r1" and v.generation == 1


def test_missing_secret_and_missing_key_are_problems() -> None:
    raw = raw_route("r1", api_key={"secretKeyRef": {"name": "keys", "key": "openai"}})
    assert referenced_secrets([raw]) == {"keys"}
    missing = validate(raw, {"keys": None})
    assert not missing.valid
    assert missing.problems == ("spec.targets[main].apiKey.secretKeyRef: Secret 'keys' does not exist in namespace 'team'",)
    assert missing.parsed is not None  # still parsed, so status can show selector and primary
    no_key = validate(raw, {"keys": {"anthropic"}})
    assert "has no key 'openai' (keys: anthropic)" in no_key.problems[0]
    assert validate(raw, {"keys": {"openai"}}).valid


def test_schema_problems_name_the_field() -> None:
    raw = raw_route("r1")
    raw["spec"]["targets"][0]["provider"] = "mistral"
    v = validate(raw, {})
    assert not v.valid and v.route is None
    assert v.problems[0].startswith("spec.targets[0].provider:")


def test_env_key_is_accepted_without_checks() -> None:
    assert validate(raw_route("r1", api_key={"env": "NOT_IN_OPERATOR_ENV"}), {}).valid


def test_invalid_route_keeps_last_accepted_version_and_deleted_routes_vanish() -> None:
    old = validate(raw_route("r1", model="gpt-4o-mini"), {}).route
    gone = validate(raw_route("r2"), {}).route
    assert old is not None and gone is not None
    bad = raw_route("r1", generation=2)
    bad["spec"]["targets"] = []
    accepted = accept([validate(bad, {})], {"team/r1": old, "team/r2": gone})
    assert accepted == {"team/r1": old}


def test_recreated_route_does_not_inherit_the_old_objects_version() -> None:
    old = validate(raw_route("r1"), {}).route
    assert old is not None
    bad = raw_route("r1", uid="new-uid")
    bad["spec"]["targets"] = []
    assert accept([validate(bad, {})], {"team/r1": old}) == {}


def test_valid_route_replaces_last_accepted() -> None:
    old = validate(raw_route("r1", model="gpt-4o-mini"), {}).route
    new = validate(raw_route("r1", model="gpt-4.1-mini", generation=2), {})
    assert old is not None
    assert accept([new], {"team/r1": old}) == {"team/r1": new.route}
