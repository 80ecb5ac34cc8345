"""Admin hardening (issue 14): empty configs refused, prompts redacted for anonymous readers,
the replay floor (bundle and persisted), pushes bound to the pod's UID, size limit configurable."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelroute.api.config import ConfigPush, PodRef, SidecarConfig
from modelroute.api.signing import SIGNATURE_HEADER, sign
from modelroute.sidecar.config import loader
from modelroute.sidecar.config.loader import ConfigError
from modelroute.sidecar.server.admin import redact_prompts
from modelroute.sidecar.server.auth import AuthSettings, signature_well_formed
from modelroute.sidecar.server.floor import FloorFile
from modelroute.sidecar.server.guard import AdminLimits
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState

from .test_admin import KEY, PUB

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
POD = PodRef(namespace="team-a", name="app-1", uid="uid-1")


@pytest.fixture
async def token_sidecar(builder: Any, keys: Any) -> AsyncIterator[Sidecar]:
    async with Sidecar(SidecarState(adapters=builder, keys=keys), AuthSettings(admin_token=TOKEN),
                       admin_limits=AdminLimits(max_body_bytes=2048)) as sc:
        yield sc


async def put(http: aiohttp.ClientSession, sc: Sidecar, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with http.put(sc.admin_url + "/config", data=body, headers=headers) as r:
        return r.status, await r.json()


def signed(config: SidecarConfig, issued: datetime, pod: PodRef = POD) -> tuple[bytes, dict[str, str]]:
    body = ConfigPush(audience=pod, issued_at=issued, config=config).model_dump_json(by_alias=True, exclude_none=True).encode()
    return body, {SIGNATURE_HEADER: sign(KEY, body)}


@pytest.mark.parametrize("body", [b"", b"null", b"---", b"---\n---\n", b"# only a comment\n", b"[]", b'{"routes": []}',
                                  b"   \n"])
async def test_empty_config_is_422_and_routes_keep_serving(token_sidecar: Sidecar, http: aiohttp.ClientSession,
                                                           make_doc: Any, body: bytes) -> None:
    assert (await put(http, token_sidecar, json.dumps([make_doc("a", "classify")]).encode(), AUTH))[0] == 200
    status, resp = await put(http, token_sidecar, body, AUTH)
    assert status == 422
    assert "no ModelRoute documents" in resp["error"]["problems"][0]
    assert '"clearRoutes": true' in resp["error"]["problems"][0]  # says how to clear on purpose
    assert list(token_sidecar.state.current().routes) == ["classify"]  # type: ignore[union-attr]


async def test_clearing_routes_takes_the_named_form(token_sidecar: Sidecar, http: aiohttp.ClientSession, make_doc: Any) -> None:
    assert (await put(http, token_sidecar, json.dumps([make_doc("a", "classify")]).encode(), AUTH))[0] == 200
    for bad in ({"routes": [make_doc("a", "classify")], "clearRoutes": True}, {"routes": [], "clearRoutes": "yes"}):
        status, resp = await put(http, token_sidecar, json.dumps(bad).encode(), AUTH)
        assert status == 422 and "clearRoutes" in resp["error"]["problems"][0]
    status, resp = await put(http, token_sidecar, b'{"routes": [], "clearRoutes": true}', AUTH)
    assert status == 200 and resp["changed"] is True
    assert list(token_sidecar.state.current().routes) == []  # type: ignore[union-attr]


async def test_admin_body_limit_is_configurable(token_sidecar: Sidecar, http: aiohttp.ClientSession, make_doc: Any) -> None:
    big = json.dumps([make_doc("a", "classify", prompt={"version": "v1", "system": "x" * 4096})]).encode()
    status, resp = await put(http, token_sidecar, big, AUTH)
    assert status == 413 and "2048" in resp["error"]["message"]
    status, resp = await put(http, token_sidecar, big, {"Authorization": "Bearer nope"})
    assert status == 401  # credentials are checked before the size


async def test_get_config_redacts_prompts_without_the_token(builder: Any, keys: Any, http: aiohttp.ClientSession,
                                                           make_doc: Any) -> None:
    doc = make_doc("a", "classify", prompt={"version": "v7", "system": "You are SECRET-PROMPT."})
    async with Sidecar(SidecarState(adapters=builder, keys=keys), AuthSettings(admin_token=TOKEN)) as sc:
        assert (await put(http, sc, json.dumps([doc]).encode(), AUTH))[0] == 200
        async with http.get(sc.admin_url + "/config") as r:
            text = await r.text()
        assert r.status == 200 and "SECRET-PROMPT" not in text
        assert json.loads(text)["routes"][0]["spec"]["prompt"] == {"version": "v7", "redacted": True}
        async with http.get(sc.admin_url + "/config", headers=AUTH) as r:
            assert "SECRET-PROMPT" in await r.text()
        async with http.get(sc.admin_url + "/config", headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401 and "SECRET-PROMPT" not in await r.text()


def test_redact_prompts_covers_canaries_and_leaves_the_rest() -> None:
    view: dict[str, Any] = {"version": "v", "routes": [{"spec": {"route": "r", "prompt": {"version": "1", "system": "s", "user": "u"}}},
                                       {"spec": {"route": "q"}}],
            "canaries": [{"route": "r", "spec": {"prompt": {"version": "2", "system": "c"}}}]}
    out = redact_prompts(view)
    assert out["routes"][0]["spec"] == {"route": "r", "prompt": {"version": "1", "redacted": True}}
    assert out["routes"][1] == {"spec": {"route": "q"}}
    assert out["canaries"][0]["spec"]["prompt"] == {"version": "2", "redacted": True}
    assert view["routes"][0]["spec"]["prompt"]["system"] == "s"  # the input is not changed


@pytest.mark.parametrize(("header", "ok"), [
    (sign(KEY, b"x"), True), ("ed25519=AAAA", False), ("ed25519=" + "A" * 88, False), ("rsa=" + "A" * 88, False),
    ("ed25519=" + "é" * 88, False), (sign(KEY, b"x")[:-2] + "!!", False),
])
def test_signature_form(header: str, ok: bool) -> None:
    assert signature_well_formed(header) is ok


async def test_push_is_bound_to_the_pod_uid(builder: Any, keys: Any, http: aiohttp.ClientSession, make_config: Any,
                                            make_doc: Any) -> None:
    config = make_config(make_doc("a", "classify"))
    async with Sidecar(SidecarState(adapters=builder, keys=keys), AuthSettings(operator_key=PUB, pod=POD)) as sc:
        for pod in (POD.model_copy(update={"uid": "uid-2"}), POD.model_copy(update={"uid": None})):
            status, resp = await put(http, sc, *signed(config, datetime.now(UTC), pod))
            assert (status, resp["error"]["code"]) == (403, "wrong_audience")
            assert "UID" in resp["error"]["message"]
        assert (await put(http, sc, *signed(config, datetime.now(UTC))))[0] == 200


async def test_floor_survives_a_restart_and_bundles_raise_it(builder: Any, keys: Any, http: aiohttp.ClientSession,
                                                            make_config: Any, make_doc: Any, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    a, b = make_config(make_doc("a", "classify")), make_config(make_doc("a", "summarize"))
    auth = AuthSettings(operator_key=PUB, pod=POD)
    floor = FloorFile(tmp_path / "state")
    old, new = signed(a, now - timedelta(seconds=30)), signed(b, now - timedelta(seconds=20))
    async with Sidecar(SidecarState(adapters=builder, keys=keys, floor_file=floor), auth) as sc:
        assert (await put(http, sc, *old))[0] == 200
        assert (await put(http, sc, *new))[0] == 200
    assert floor.load() == now - timedelta(seconds=20)
    async with Sidecar(SidecarState(adapters=builder, keys=keys, floor_file=floor), auth) as sc:
        for replay in (new, old):
            status, resp = await put(http, sc, *replay)
            assert (status, resp["error"]["code"]) == (403, "replayed_push")
        assert sc.state.current() is None
    # A served bundle is a floor too: a push older than it would roll the config back.
    state = SidecarState(adapters=builder, keys=keys)
    await state.apply(a, source="bundle", issued_at=now - timedelta(seconds=5))
    async with Sidecar(state, auth) as sc:
        status, resp = await put(http, sc, *signed(b, now - timedelta(seconds=10)))
        assert (status, resp["error"]["code"]) == (403, "replayed_push")
        assert (await put(http, sc, *signed(b, now)))[0] == 200


def test_floor_file_tolerates_garbage(tmp_path: Path) -> None:
    floor = FloorFile(tmp_path)
    assert floor.load() is None
    floor.path.write_text("{not json")
    assert floor.load() is None
    floor.save(datetime(2026, 1, 1, tzinfo=UTC), "sha256:x")
    assert floor.load() == datetime(2026, 1, 1, tzinfo=UTC)


BOMB = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['x'] * 9)}]\n"
               for p, c in zip(["", "a", "b", "c", "d", "e"], "abcdef", strict=True))


@pytest.mark.parametrize(("body", "problem"), [
    (b"[" * 100_000, "nested too deeply"),
    (b'{"a":' * 100_000, "nested too deeply"),
    (b"- " * 50_000, "nested too deeply"),
    (b"[" * 70 + b"]" * 70, "nested more than 64 levels deep"),
    (b"1" * 5000, "a number has more than 4300 digits"),
    (b"a: &a [*a]", "a YAML alias refers to the node that contains it"),
    (BOMB.encode(), "more than 200000 values"),
])
async def test_hostile_bodies_are_422_not_500(builder: Any, keys: Any, http: aiohttp.ClientSession, body: bytes,
                                              problem: str) -> None:
    async with Sidecar(SidecarState(adapters=builder, keys=keys), AuthSettings(admin_token=TOKEN)) as sc:  # 4 MiB limit
        status, resp = await put(http, sc, body, AUTH)
    assert status == 422 and problem in resp["error"]["problems"][0], resp


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                              lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                              max_leaves=30).map(lambda v: json.dumps(v).encode())))
def test_admin_body_parsing_only_ever_reports_problems(body: bytes) -> None:
    problems: list[str] = []
    try:
        config = loader.checked(loader.parse_json_or_yaml(body, "body"), None)
    except ConfigError as e:
        problems, config = e.problems, None
    if config is None:
        assert problems and all(isinstance(p, str) and p.startswith("body") for p in problems)
    else:
        assert config.routes or b"clearRoutes" in body  # nothing else can mean "serve zero routes"
