"""The inbound OpenAI API over real HTTP, with scripted adapters behind the real router."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from modelroute.sidecar.routing import router
from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState
from modelroute.testing.waiting import eventually


@pytest.fixture
async def sidecar(builder: Any, keys: Any, make_config: Any, make_doc: Any) -> AsyncIterator[Sidecar]:
    state = SidecarState(adapters=builder, keys=keys, max_body_bytes=64 * 1024)
    await state.apply(make_config(
        make_doc("classifier", "classify", prompt={"version": "v3", "system": "Label tickets."}),
        make_doc("other", "summarize"),
    ), source="file")
    async with Sidecar(state, AuthSettings(admin_token="tok")) as sc:
        yield sc


def sdk(sc: Sidecar) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=sc.inbound_url + "/v1", api_key="x", max_retries=0)


MSG: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


async def test_completion_through_sdk_keeps_provider_model_and_sets_headers(sidecar: Sidecar, builder: Any) -> None:
    client = sdk(sidecar)
    raw = await client.chat.completions.with_raw_response.create(model="classify", messages=MSG)
    resp = raw.parse()
    assert resp.choices[0].message.content == "hello"
    assert resp.model == "gpt-4o-mini"  # the provider's model id: the app sees what answered
    assert raw.headers["x-modelroute-route"] == "classify"
    assert raw.headers["x-modelroute-target"] == "primary"
    assert raw.headers["x-modelroute-prompt-version"] == "v3"
    assert raw.headers["x-modelroute-config-version"] == sidecar.state.current().version  # type: ignore[union-attr]
    assert builder.adapters["primary"].calls[0]["model"] == "classify"
    await client.close()


async def test_no_prompt_header_without_prompt(sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
    async with http.post(sidecar.inbound_url + "/v1/chat/completions", json={"model": "summarize", "messages": MSG}) as r:
        assert r.status == 200
        assert "x-modelroute-prompt-version" not in r.headers


async def test_fallback_to_second_target(sidecar: Sidecar, builder: Any, upstream_error: Any) -> None:
    builder.adapters["primary"].plan = [upstream_error("rate_limited", 429)]
    client = sdk(sidecar)
    raw = await client.chat.completions.with_raw_response.create(model="classify", messages=MSG)
    assert raw.headers["x-modelroute-target"] == "backup"
    assert raw.parse().model == "claude-haiku-4-5"
    await client.close()


async def test_exhausted_is_503_with_attempts(sidecar: Sidecar, builder: Any, upstream_error: Any) -> None:
    builder.adapters["primary"].plan = [upstream_error("rate_limited", 429, "slow down")]
    builder.adapters["backup"].plan = [upstream_error("server_error", 500, "internal")]
    client = sdk(sidecar)
    with pytest.raises(openai.InternalServerError) as ei:
        await client.chat.completions.create(model="classify", messages=MSG)
    assert ei.value.status_code == 503
    body: Any = ei.value.body
    assert body["code"] == "targets_exhausted"
    assert [(a["target"], a["status"], a["outcome"]) for a in body["attempts"]] == [
        ("primary", 429, "rate_limited"), ("backup", 500, "server_error")]
    assert "primary: 429 rate_limited (slow down)" in body["message"]
    await client.close()


async def test_all_garbage_is_502(sidecar: Sidecar, builder: Any, upstream_error: Any, http: aiohttp.ClientSession) -> None:
    builder.adapters["primary"].plan = [upstream_error("bad_response", 200, "not JSON")]
    builder.adapters["backup"].plan = [upstream_error("bad_response", 200, "not JSON")]
    async with http.post(sidecar.inbound_url + "/v1/chat/completions", json={"model": "classify", "messages": MSG}) as r:
        assert r.status == 502
        assert (await r.json())["error"]["code"] == "bad_upstream_response"


async def test_client_error_passes_through_with_its_status(sidecar: Sidecar, builder: Any, upstream_error: Any) -> None:
    builder.adapters["primary"].plan = [upstream_error(
        "client_error", 400, "max_tokens is too large",
        body={"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens is too large"}})]
    client = sdk(sidecar)
    with pytest.raises(openai.BadRequestError) as ei:
        await client.chat.completions.create(model="classify", messages=MSG)
    assert "max_tokens is too large" in ei.value.message
    assert builder.adapters["backup"].calls == []  # no fallback on a request's own error
    await client.close()


async def test_deadline_is_504(builder: Any, keys: Any, make_config: Any, make_doc: Any, http: aiohttp.ClientSession) -> None:
    state = SidecarState(adapters=builder, keys=keys)
    await state.apply(make_config(make_doc("slow", "slow", timeoutSeconds=0.2)), source="file")
    builder.adapters["primary"].plan = [5.0]
    async with Sidecar(state) as sc, http.post(sc.inbound_url + "/v1/chat/completions",
                                               json={"model": "slow", "messages": MSG}) as r:
        assert r.status == 504
        err = (await r.json())["error"]
        assert err["code"] == "deadline_exceeded"
        assert err["attempts"][0]["target"] == "primary"


@pytest.mark.parametrize(("payload", "param", "fragment"), [
    (b"{not json", None, "not valid JSON"),
    (b"[1, 2]", None, "must be a JSON object"),
    (b"", None, "empty"),
    (json.dumps({"messages": MSG}).encode(), "model", "missing required field 'model'"),
    (json.dumps({"model": "classify"}).encode(), "messages", "missing required field 'messages'"),
    (json.dumps({"model": "classify", "messages": []}).encode(), "messages", "non-empty array"),
    (json.dumps({"model": "classify", "messages": MSG, "stream": "yes"}).encode(), "stream", "boolean"),
])
async def test_400_envelopes(sidecar: Sidecar, http: aiohttp.ClientSession, payload: bytes, param: str | None,
                             fragment: str) -> None:
    async with http.post(sidecar.inbound_url + "/v1/chat/completions", data=payload,
                         headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400
        err = (await r.json())["error"]
        assert set(err) >= {"message", "type", "param", "code"}
        assert err["type"] == "invalid_request_error"
        assert err["param"] == param
        assert fragment in err["message"]


async def test_404_lists_known_routes(sidecar: Sidecar) -> None:
    client = sdk(sidecar)
    with pytest.raises(openai.NotFoundError) as ei:
        await client.chat.completions.create(model="nope", messages=MSG)
    assert "known routes: classify, summarize" in ei.value.message
    await client.close()


async def test_413_over_limit(sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
    big = {"model": "classify", "messages": [{"role": "user", "content": "x" * 70_000}]}
    async with http.post(sidecar.inbound_url + "/v1/chat/completions", json=big) as r:
        assert r.status == 413
        assert (await r.json())["error"]["code"] == "request_too_large"

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the reader enforces the limit
        yield json.dumps(big).encode()

    async with http.post(sidecar.inbound_url + "/v1/chat/completions", data=chunked(),
                         headers={"Content-Type": "application/json"}) as r:
        assert r.status == 413
        assert (await r.json())["error"]["type"] == "invalid_request_error"


async def test_unknown_path_and_method_are_envelopes(sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
    async with http.get(sidecar.inbound_url + "/v1/nothing") as r:
        assert r.status == 404
        assert "error" in await r.json()
    async with http.get(sidecar.inbound_url + "/v1/chat/completions") as r:
        assert r.status == 405
        assert "error" in await r.json()


async def test_unexpected_exception_is_500_without_trace(sidecar: Sidecar, http: aiohttp.ClientSession,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(route: Any, request: Any) -> Any:
        raise RuntimeError("secret internals /path/to/file.py line 3")
    monkeypatch.setattr(router, "complete", broken)
    async with http.post(sidecar.inbound_url + "/v1/chat/completions", json={"model": "classify", "messages": MSG}) as r:
        assert r.status == 500
        text = await r.text()
    assert "Traceback" not in text and "secret internals" not in text
    assert json.loads(text)["error"]["code"] == "internal_error"


async def test_not_ready_is_503(builder: Any, keys: Any, http: aiohttp.ClientSession) -> None:
    async with Sidecar(SidecarState(adapters=builder, keys=keys)) as sc, \
            http.post(sc.inbound_url + "/v1/chat/completions", json={"model": "classify", "messages": MSG}) as r:
        assert r.status == 503
        assert (await r.json())["error"]["code"] == "not_ready"


async def test_models_list_and_get(sidecar: Sidecar) -> None:
    client = sdk(sidecar)
    models = await client.models.list()
    assert [m.id for m in models.data] == ["classify", "summarize"]
    assert (await client.models.retrieve("classify")).id == "classify"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("nope")
    await client.close()


async def test_stream_through_sdk_with_usage(sidecar: Sidecar) -> None:
    client = sdk(sidecar)
    stream = await client.chat.completions.create(model="classify", messages=MSG, stream=True,
                                                  stream_options={"include_usage": True})
    text, usage = "", None
    async for c in stream:
        if c.choices:
            text += c.choices[0].delta.content or ""
        if c.usage is not None:
            usage = c.usage
    assert text == "hello"
    assert usage is not None and usage.completion_tokens == 2
    await client.close()


async def test_stream_raw_sse_ends_with_done(sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
    async with http.post(sidecar.inbound_url + "/v1/chat/completions",
                         json={"model": "classify", "messages": MSG, "stream": True}) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        assert r.headers["x-modelroute-target"] == "primary"
        body = (await r.read()).decode()
    events = [e for e in body.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events)
    # usage was not asked for: no usage-only chunk reaches the app
    assert all("usage" not in json.loads(e[6:]) for e in events[:-1])


async def test_stream_falls_back_before_first_chunk(sidecar: Sidecar, builder: Any, upstream_error: Any) -> None:
    builder.adapters["primary"].stream_plan = [upstream_error("overloaded", 529)]
    client = sdk(sidecar)
    stream = await client.chat.completions.create(model="classify", messages=MSG, stream=True)
    chunks = [c async for c in stream]
    assert chunks[0].model == "claude-haiku-4-5"
    await client.close()


async def test_stream_error_before_first_chunk_is_an_http_error(sidecar: Sidecar, builder: Any, upstream_error: Any) -> None:
    builder.adapters["primary"].stream_plan = [upstream_error("overloaded", 529)]
    builder.adapters["backup"].stream_plan = [upstream_error("connection_error")]
    client = sdk(sidecar)
    with pytest.raises(openai.InternalServerError) as ei:
        await client.chat.completions.create(model="classify", messages=MSG, stream=True)
    assert ei.value.status_code == 503
    await client.close()


async def test_stream_cut_after_first_chunk_ends_with_error_event(sidecar: Sidecar, builder: Any, upstream_error: Any,
                                                                  fake_chunk: Any, http: aiohttp.ClientSession) -> None:
    builder.adapters["primary"].stream_plan = [fake_chunk("gpt-4o-mini", "partial"), upstream_error("connection_error",
                                                                                              message="reset by peer")]
    async with http.post(sidecar.inbound_url + "/v1/chat/completions",
                         json={"model": "classify", "messages": MSG, "stream": True}) as r:
        body = (await r.read()).decode()
    events = [e for e in body.split("\n\n") if e]
    assert "[DONE]" not in body
    err = json.loads(events[-1][6:])["error"]
    assert err["code"] == "stream_interrupted" and "reset by peer" in err["message"]
    assert builder.adapters["backup"].calls == []  # no fallback after the first byte

    client = sdk(sidecar)  # the SDK raises instead of ending cleanly
    got: list[Any] = []
    builder.adapters["primary"].stream_plan = [fake_chunk("gpt-4o-mini", "partial"), upstream_error("timeout")]
    stream = await client.chat.completions.create(model="classify", messages=MSG, stream=True)

    async def consume() -> None:
        async for c in stream:
            got.append(c)

    with pytest.raises(openai.APIError, match="failed mid-way"):
        await consume()
    assert got and got[0].choices[0].delta.content == "partial"
    await client.close()


async def test_stats_count_requests_and_rejections(sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
    client = sdk(sidecar)
    await client.chat.completions.create(model="classify", messages=MSG)
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="nope", messages=MSG)
    await client.close()
    async with http.get(sidecar.admin_url + "/stats") as r:
        stats = await r.json()
    route = stats["routes"]["classify"]
    assert route["requests"] == 1 and route["outcomes"] == {"ok": 1}
    assert route["targets"]["primary"]["tokens"] == {"prompt": 3, "completion": 2}
    assert stats["rejected"] == {"404": 1}


async def test_app_going_away_mid_stream_stops_upstream(sidecar: Sidecar, builder: Any, fake_chunk: Any,
                                                        http: aiohttp.ClientSession) -> None:
    plan: list[Any] = [fake_chunk("gpt-4o-mini", "first")]
    for i in range(50):
        plan += [0.02, fake_chunk("gpt-4o-mini", f"more{i}")]
    builder.adapters["primary"].stream_plan = plan
    async with http.post(sidecar.inbound_url + "/v1/chat/completions",
                         json={"model": "classify", "messages": MSG, "stream": True}) as r:
        assert (await r.content.readuntil(b"\n\n")).startswith(b"data: ")
        r.close()  # the app hangs up
    stats = sidecar.state.stats
    await eventually(lambda: "classify" in stats.routes and stats.routes["classify"].outcomes, "the request's outcome")
    assert stats.routes["classify"].outcomes == {"cancelled": 1}
    assert sidecar.state.inflight() == 0


async def test_stopping_mid_stream_cancels_the_relay_and_stops_upstream(builder: Any, keys: Any, make_config: Any,
                                                                        make_doc: Any, fake_chunk: Any,
                                                                        http: aiohttp.ClientSession) -> None:
    """The relay runs in a task of its own (``inbound._relay``): cancelling the handler (a stop past
    its grace period) cancels it, and the upstream stream is closed and reported."""
    state = SidecarState(adapters=builder, keys=keys)
    await state.apply(make_config(make_doc("other", "classify")), source="file")
    sc = Sidecar(state, AuthSettings(admin_token="tok"), grace_seconds=0.05)
    await sc.start()
    builder.adapters["primary"].stream_plan = [fake_chunk("gpt-4o-mini", "first"), 60.0, fake_chunk("gpt-4o-mini", "never")]
    async with http.post(sc.inbound_url + "/v1/chat/completions",
                         json={"model": "classify", "messages": MSG, "stream": True}) as r:
        assert (await r.content.readuntil(b"\n\n")).startswith(b"data: ")
        await sc.stop()  # the handler is cancelled after 0.05 s: the upstream's 60 s wait with it
        with pytest.raises(aiohttp.ClientPayloadError):  # cut: no clean end for the app to mistake
            await r.content.read()
    assert state.stats.routes["classify"].outcomes == {"cancelled": 1}
    assert state.inflight() == 0


async def test_unexpected_error_mid_stream_ends_in_protocol(sidecar: Sidecar, builder: Any, fake_chunk: Any,
                                                            http: aiohttp.ClientSession) -> None:
    original = router.StreamingCompletion._kept  # what every batch of chunks goes through
    calls = {"n": 0}

    def flaky(self: Any, batch: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("bug")
        return original(self, batch)

    builder.adapters["primary"].stream_plan = [fake_chunk("gpt-4o-mini", "first"), fake_chunk("gpt-4o-mini", "second")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(router.StreamingCompletion, "_kept", flaky)
        async with http.post(sidecar.inbound_url + "/v1/chat/completions",
                             json={"model": "classify", "messages": MSG, "stream": True}) as r:
            body = (await r.read()).decode()
    assert "[DONE]" not in body and '"internal_error"' in body and "bug" not in body
