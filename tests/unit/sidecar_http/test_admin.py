"""The admin API: probes, GET/PUT /config (bearer and signed-push auth, replay, 422), stats, metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from modelroute.api.config import PodRef, SidecarConfig
from modelroute.api.lifecycledate import ENV_LIFECYCLE_DATE
from modelroute.api.signing import SIGNATURE_HEADER, sign
from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState
from modelroute.testing.sidecars import OperatorKey
from modelroute.testing.waiting import eventually

POD = PodRef(namespace="team-a", name="app-1")
OPERATOR = OperatorKey()
KEY, PUB = OPERATOR.private, OPERATOR.public
MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def token_sidecar(builder: Any, keys: Any) -> AsyncIterator[Sidecar]:
    async with Sidecar(SidecarState(adapters=builder, keys=keys), AuthSettings(admin_token="s3cret-token")) as sc:
        yield sc


@pytest.fixture
async def operator_sidecar(builder: Any, keys: Any) -> AsyncIterator[Sidecar]:
    async with Sidecar(SidecarState(adapters=builder, keys=keys), AuthSettings(operator_key=PUB, pod=POD)) as sc:
        yield sc


def push_body(config: SidecarConfig, *, pod: PodRef = POD, issued: datetime | None = None) -> bytes:
    return OPERATOR.push(config, pod.namespace, pod.name, issued)[0]


async def put(http: aiohttp.ClientSession, sc: Sidecar, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with http.put(sc.admin_url + "/config", data=body, headers=headers or {}) as r:
        return r.status, await r.json()


async def test_probes_follow_config(token_sidecar: Sidecar, http: aiohttp.ClientSession, make_doc: Any) -> None:
    async with http.get(token_sidecar.admin_url + "/healthz") as r:
        assert r.status == 200
    async with http.get(token_sidecar.admin_url + "/readyz") as r:
        assert r.status == 503
        assert "no config" in (await r.json())["reason"]
    status, body = await put(http, token_sidecar, json.dumps([make_doc("a", "classify")]).encode(),
                             {"Authorization": "Bearer s3cret-token"})
    assert status == 200 and body["changed"] is True
    async with http.get(token_sidecar.admin_url + "/readyz") as r:
        assert r.status == 200
        assert (await r.json())["version"] == body["version"]


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic czNjcmV0LXRva2Vu", "s3cret-token"])
async def test_bearer_required(token_sidecar: Sidecar, http: aiohttp.ClientSession, make_doc: Any, header: str | None) -> None:
    status, body = await put(http, token_sidecar, json.dumps([make_doc("a", "classify")]).encode(),
                             {"Authorization": header} if header else None)
    assert status == 401
    assert "s3cret-token" not in json.dumps(body)
    assert token_sidecar.state.current() is None


async def test_token_put_accepts_yaml_and_routes_wrapper(token_sidecar: Sidecar, http: aiohttp.ClientSession,
                                                         make_doc: Any) -> None:
    auth = {"Authorization": "Bearer s3cret-token"}
    text = yaml.safe_dump_all([make_doc("a", "classify"), make_doc("b", "summarize")])
    status, body = await put(http, token_sidecar, text.encode(), auth)
    assert status == 200
    assert sorted(token_sidecar.state.current().routes) == ["classify", "summarize"]  # type: ignore[union-attr]
    status, body = await put(http, token_sidecar, json.dumps({"routes": [make_doc("a", "classify")]}).encode(), auth)
    assert status == 200 and body["changed"] is True
    status, again = await put(http, token_sidecar, json.dumps({"routes": [make_doc("a", "classify")]}).encode(), auth)
    assert status == 200 and again == {"version": body["version"], "changed": False, "warnings": body["warnings"]}


async def test_invalid_config_is_422_and_old_keeps_serving(token_sidecar: Sidecar, http: aiohttp.ClientSession,
                                                           make_doc: Any) -> None:
    auth = {"Authorization": "Bearer s3cret-token"}
    assert (await put(http, token_sidecar, json.dumps([make_doc("a", "classify")]).encode(), auth))[0] == 200
    before = token_sidecar.state.current()
    bad_provider = make_doc("b", "x", targets=[{"name": "t", "provider": "openaix", "model": "m", "apiKey": {"env": "TEST_KEY_A"}}])
    missing_env = make_doc("c", "y", targets=[{"name": "t", "provider": "openai", "model": "gpt-4o-mini", "apiKey": {"env": "NOPE_KEY"}}])
    dup = make_doc("d", "classify")
    status, body = await put(http, token_sidecar, json.dumps([make_doc("a", "classify"), bad_provider, missing_env, dup]).encode(), auth)
    assert status == 422
    problems = body["error"]["problems"]
    assert any("doc 2 (b): spec.targets[0].provider: Input should be" in p for p in problems)
    assert any("doc 3 (c): spec.targets[0].apiKey.env: environment variable NOPE_KEY is not set" in p for p in problems)
    assert any("doc 4 (d): spec.route: route name 'classify' is already defined by body doc 1 (a)" in p for p in problems)
    assert token_sidecar.state.current() is before
    status, body = await put(http, token_sidecar, b"routes: [unclosed", auth)
    assert status == 422 and "YAML syntax error" in body["error"]["problems"][0]


async def test_a_retired_model_in_an_admin_put_is_422_naming_it_and_old_keeps_serving(
        token_sidecar: Sidecar, http: aiohttp.ClientSession, make_doc: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_LIFECYCLE_DATE, "2026-12-06")  # the day this test is about, whatever the run pins
    auth = {"Authorization": "Bearer s3cret-token"}
    assert (await put(http, token_sidecar, json.dumps([make_doc("a", "classify")]).encode(), auth))[0] == 200
    before = token_sidecar.state.current()
    retired = make_doc("b", "summarize", targets=[
        {"name": "sonnet", "provider": "anthropic", "model": "claude-sonnet-4-5", "apiKey": {"env": "TEST_KEY_A"}}])
    status, body = await put(http, token_sidecar, json.dumps([make_doc("a", "classify"), retired]).encode(), auth)
    assert status == 422
    (problem,) = body["error"]["problems"]  # retired on 2026-11-30: an error from then on, whatever the day
    assert problem.startswith("body doc 2 (b): spec.targets[0].model: target 'sonnet': model 'claude-sonnet-4-5' was "
                              "retired by anthropic on 2026-11-30: every call to it fails; current anthropic models include: ")
    assert token_sidecar.state.current() is before


async def test_an_admin_put_is_checked_against_the_pinned_day(token_sidecar: Sidecar, http: aiohttp.ClientSession,
                                                               make_doc: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    auth, body = {"Authorization": "Bearer s3cret-token"}, json.dumps([make_doc("a", "classify")]).encode()  # gpt-4o-mini
    monkeypatch.setenv(ENV_LIFECYCLE_DATE, "2027-01-13")  # the day before its shutdown
    assert (await put(http, token_sidecar, body, auth))[0] == 200
    before = token_sidecar.state.current()
    monkeypatch.setenv(ENV_LIFECYCLE_DATE, "2027-01-14")
    status, refused = await put(http, token_sidecar, body, auth)
    assert status == 422 and refused["error"]["problems"][0].startswith(
        "body doc 1 (a): spec.targets[0].model: target 'primary': model 'gpt-4o-mini' was retired by openai on 2027-01-14")
    assert token_sidecar.state.current() is before


async def test_get_config_is_redacted(token_sidecar: Sidecar, http: aiohttp.ClientSession, make_doc: Any) -> None:
    await put(http, token_sidecar, json.dumps([make_doc("a", "classify")]).encode(), {"Authorization": "Bearer s3cret-token"})
    async with http.get(token_sidecar.admin_url + "/config") as r:
        text = await r.text()
    view = json.loads(text)
    assert view["version"] == token_sidecar.state.current().version  # type: ignore[union-attr]
    assert view["source"] == "admin"
    assert view["routes"][0]["spec"]["targets"][0]["apiKey"] == {"env": "TEST_KEY_A"}
    assert "sk-secret" not in text


async def test_writes_disabled_without_credentials(builder: Any, keys: Any, http: aiohttp.ClientSession, make_doc: Any) -> None:
    async with Sidecar(SidecarState(adapters=builder, keys=keys)) as sc:
        status, body = await put(http, sc, json.dumps([make_doc("a", "classify")]).encode(), {"Authorization": "Bearer x"})
    assert status == 401
    assert "MODELROUTE_ADMIN_TOKEN" in body["error"]["message"] and "--operator-public-key" in body["error"]["message"]


async def test_signed_push_accepted(operator_sidecar: Sidecar, http: aiohttp.ClientSession, make_config: Any,
                                    make_doc: Any) -> None:
    config = make_config(make_doc("a", "classify"))
    body = push_body(config)
    status, resp = await put(http, operator_sidecar, body, {SIGNATURE_HEADER: sign(KEY, body)})
    assert status == 200 and resp["version"] == config.hash
    async with http.get(operator_sidecar.admin_url + "/config") as r:
        view = await r.json()
    assert view["source"] == "push" and view["issuedAt"]
    # the same push again is idempotent; a bearer token means nothing in operator mode
    assert (await put(http, operator_sidecar, body, {SIGNATURE_HEADER: sign(KEY, body)}))[0] == 200
    assert (await put(http, operator_sidecar, body, {"Authorization": "Bearer anything"}))[0] == 401


async def test_signed_push_refusals(operator_sidecar: Sidecar, http: aiohttp.ClientSession, make_config: Any,
                                    make_doc: Any) -> None:
    config = make_config(make_doc("a", "classify"))
    body = push_body(config)
    status, resp = await put(http, operator_sidecar, body)
    assert (status, resp["error"]["code"]) == (401, "missing_signature")
    other = OperatorKey().private
    status, resp = await put(http, operator_sidecar, body, {SIGNATURE_HEADER: sign(other, body)})
    assert (status, resp["error"]["code"]) == (403, "invalid_signature")
    tampered = body.replace(b"classify", b"classifx")
    assert (await put(http, operator_sidecar, tampered, {SIGNATURE_HEADER: sign(KEY, body)}))[0] == 403
    wrong_pod = push_body(config, pod=PodRef(namespace="team-a", name="app-2"))
    status, resp = await put(http, operator_sidecar, wrong_pod, {SIGNATURE_HEADER: sign(KEY, wrong_pod)})
    assert (status, resp["error"]["code"]) == (403, "wrong_audience")
    stale = push_body(config, issued=datetime.now(UTC) - timedelta(minutes=10))
    status, resp = await put(http, operator_sidecar, stale, {SIGNATURE_HEADER: sign(KEY, stale)})
    assert (status, resp["error"]["code"]) == (403, "stale_push")
    future = push_body(config, issued=datetime.now(UTC) + timedelta(minutes=10))
    assert (await put(http, operator_sidecar, future, {SIGNATURE_HEADER: sign(KEY, future)}))[0] == 403
    assert operator_sidecar.state.current() is None


async def test_replay_of_older_push_refused(operator_sidecar: Sidecar, http: aiohttp.ClientSession, make_config: Any,
                                            make_doc: Any) -> None:
    now = datetime.now(UTC)
    old = push_body(make_config(make_doc("a", "classify")), issued=now - timedelta(seconds=30))
    new = push_body(make_config(make_doc("a", "summarize")), issued=now)
    assert (await put(http, operator_sidecar, old, {SIGNATURE_HEADER: sign(KEY, old)}))[0] == 200
    assert (await put(http, operator_sidecar, new, {SIGNATURE_HEADER: sign(KEY, new)}))[0] == 200
    status, resp = await put(http, operator_sidecar, old, {SIGNATURE_HEADER: sign(KEY, old)})
    assert (status, resp["error"]["code"]) == (403, "replayed_push")
    assert list(operator_sidecar.state.current().routes) == ["summarize"]  # type: ignore[union-attr]


async def test_signed_invalid_config_is_422(operator_sidecar: Sidecar, http: aiohttp.ClientSession, make_config: Any,
                                            make_doc: Any) -> None:
    doc = make_doc("a", "classify", targets=[{"name": "t", "provider": "openai", "model": "gpt-4o-mini", "apiKey": {"env": "MISSING_ENV"}}])
    body = push_body(make_config(doc))
    status, resp = await put(http, operator_sidecar, body, {SIGNATURE_HEADER: sign(KEY, body)})
    assert status == 422
    assert resp["error"]["problems"] == [
        "routes[0] (a): spec.targets[0].apiKey.env: environment variable MISSING_ENV is not set"]
    garbage = b'{"audience": {"namespace": "team-a", "name": "app-1"}}'
    status, resp = await put(http, operator_sidecar, garbage, {SIGNATURE_HEADER: sign(KEY, garbage)})
    assert status == 422


async def test_swap_keeps_in_flight_requests_on_their_config(token_sidecar: Sidecar, http: aiohttp.ClientSession,
                                                             builder: Any, make_doc: Any) -> None:
    auth = {"Authorization": "Bearer s3cret-token"}
    assert (await put(http, token_sidecar, json.dumps([make_doc("a", "classify")]).encode(), auth))[0] == 200
    old = token_sidecar.state.current()
    builder.adapters["primary"].plan = [1.0]
    inflight = asyncio.ensure_future(http.post(token_sidecar.inbound_url + "/v1/chat/completions",
                                               json={"model": "classify", "messages": MSG}))
    assert old is not None
    await eventually(lambda: old.inflight == 1, "the request to lease the old config")
    new_targets = [{"name": "fresh", "provider": "openai", "model": "gpt-4o", "apiKey": {"env": "TEST_KEY_A"}}]
    assert (await put(http, token_sidecar, json.dumps([make_doc("a", "classify", targets=new_targets)]).encode(), auth))[0] == 200
    resp = await inflight
    assert resp.headers["x-modelroute-config-version"] == old.version
    assert resp.headers["x-modelroute-target"] == "primary"
    resp.release()
    async with http.post(token_sidecar.inbound_url + "/v1/chat/completions", json={"model": "classify", "messages": MSG}) as r:
        assert r.headers["x-modelroute-target"] == "fresh"
    await asyncio.wait_for(token_sidecar.state.holder.retired(), 5)
    assert old.inflight == 0 and old._closed  # the old runtime is closed by the holder once drained


async def test_stats_and_metrics(token_sidecar: Sidecar, http: aiohttp.ClientSession, make_doc: Any) -> None:
    await put(http, token_sidecar, json.dumps([make_doc("a", "classify")]).encode(), {"Authorization": "Bearer s3cret-token"})
    for _ in range(3):
        async with http.post(token_sidecar.inbound_url + "/v1/chat/completions", json={"model": "classify", "messages": MSG}):
            pass
    async with http.get(token_sidecar.admin_url + "/metrics") as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = await r.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    reqs = {tuple(sorted(s.labels.items())): s.value for s in families["modelroute_requests"].samples}
    assert reqs[(("outcome", "ok"), ("route", "classify"))] == 3
    ready = families["modelroute_ready"].samples[0].value
    assert ready == 1
    assert "sk-secret" not in text
    async with http.get(token_sidecar.admin_url + "/stats") as r:
        stats = await r.json()
    assert stats["routes"]["classify"]["targets"]["primary"]["attempts"] == 3
    assert stats["configVersion"] == token_sidecar.state.current().version  # type: ignore[union-attr]
