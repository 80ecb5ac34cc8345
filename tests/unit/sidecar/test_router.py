"""The routing loop, with in-memory adapters: fallback, retries, backoff, breaker, deadline, streams."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from modelroute.sidecar.errors import DeadlineExceeded, FailureKind, RouteFailed, UpstreamError
from modelroute.sidecar.routing import router
from modelroute.sidecar.translate.errors import TranslationError

from .fakes import HANG, Together, answer, chunk, make_route, usage_chunk

REQ: dict[str, Any] = {"model": "classify", "messages": [{"role": "user", "content": "hi"}]}


def err(kind: FailureKind, status: int | None = None, retry_after: float | None = None) -> UpstreamError:
    return UpstreamError(kind, f"boom {kind.value}", status=status, retry_after=retry_after)


async def test_primary_answers() -> None:
    route, ads, rec = make_route({"a": [answer("A")], "b": []})
    c = await router.complete(route, REQ)
    assert c.target == "a"
    assert c.response["choices"][0]["message"]["content"] == "A"
    assert [(a.target, a.outcome) for a in c.attempts] == [("a", "ok")]
    assert ads["b"].calls == []
    assert rec.requests == [("classify", "a", "ok", False)]
    assert rec.attempts[0][4] == {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    assert ads["a"].calls[0] is REQ  # passed through untouched


@pytest.mark.parametrize(
    "kind",
    [FailureKind.RATE_LIMITED, FailureKind.OVERLOADED, FailureKind.SERVER, FailureKind.TIMEOUT,
     FailureKind.CONNECTION, FailureKind.BAD_RESPONSE],
)
async def test_falls_back_in_order_on_every_kind_but_client(kind: FailureKind) -> None:
    route, _, rec = make_route({"a": [err(kind, 500)], "b": [err(kind, 500)], "c": [answer("C")]})
    c = await router.complete(route, REQ)
    assert c.target == "c"
    assert [(a.target, a.outcome) for a in c.attempts] == [("a", kind.value), ("b", kind.value), ("c", "ok")]
    assert [a[1] for a in rec.attempts] == ["a", "b", "c"]


async def test_client_error_is_returned_without_fallback() -> None:
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": "bad tools"}}
    e = UpstreamError(FailureKind.CLIENT, "bad tools", status=400, body=body)
    route, ads, rec = make_route({"a": [e], "b": []})
    with pytest.raises(RouteFailed) as info:
        await router.complete(route, REQ)
    assert info.value.client_error is e
    assert info.value.client_error.body == body
    assert ads["b"].calls == []
    assert rec.requests == [("classify", "a", "client_error", False)]
    assert route.targets[0].breaker.consecutive_failures == 0  # a healthy target


async def test_translation_error_is_a_client_error() -> None:
    route, ads, _ = make_route({"a": [TranslationError("n > 1 is not supported")], "b": []})
    with pytest.raises(RouteFailed) as info:
        await router.complete(route, REQ)
    assert info.value.client_error is not None
    assert info.value.client_error.status == 400
    assert ads["b"].calls == []


async def test_all_exhausted_lists_every_attempt() -> None:
    route, _, rec = make_route({"a": [err(FailureKind.SERVER, 500)], "b": [err(FailureKind.RATE_LIMITED, 429)]})
    with pytest.raises(RouteFailed) as info:
        await router.complete(route, REQ)
    assert info.value.client_error is None
    assert [(a.target, a.outcome, a.status) for a in info.value.attempts] == [
        ("a", "server_error", 500), ("b", "rate_limited", 429)]
    assert rec.requests[-1][2] == "exhausted"


async def test_retries_on_the_same_target_before_falling_back() -> None:
    route, ads, _ = make_route({"a": [err(FailureKind.SERVER), err(FailureKind.SERVER), answer("A3")], "b": []},
                               attempts=3)
    c = await router.complete(route, REQ)
    assert c.target == "a"
    assert len(ads["a"].calls) == 3
    route, ads, _ = make_route({"a": [err(FailureKind.SERVER), err(FailureKind.SERVER)], "b": []}, attempts=2)
    c = await router.complete(route, REQ)
    assert (c.target, len(ads["a"].calls)) == ("b", 2)


async def test_unexpected_adapter_exception_is_bad_response_not_a_crash() -> None:
    route, _, _ = make_route({"a": [KeyError("x")], "b": []})
    c = await router.complete(route, REQ)
    assert c.attempts[0].outcome == "bad_response"
    assert c.target == "b"


async def test_retry_after_is_honoured() -> None:
    route, _, _ = make_route({"a": [err(FailureKind.RATE_LIMITED, 429, retry_after=0.15), answer()]}, attempts=2)
    t = time.perf_counter()
    c = await router.complete(route, REQ)
    assert c.target == "a"
    assert time.perf_counter() - t >= 0.15


async def test_retry_after_is_capped_by_max_ms() -> None:
    route, _, _ = make_route({"a": [err(FailureKind.RATE_LIMITED, 429, retry_after=30), answer()]},
                             attempts=2, max_ms=100)
    t = time.perf_counter()
    c = await router.complete(route, REQ)
    elapsed = time.perf_counter() - t
    assert c.target == "a"
    assert 0.1 <= elapsed < 1.0


async def test_backoff_that_would_cross_the_deadline_is_not_slept() -> None:
    route, ads, _ = make_route(
        {"a": [err(FailureKind.RATE_LIMITED, 429, retry_after=5), answer("A")], "b": [answer("B")]},
        attempts=2, max_ms=10_000, timeout=1.0)
    t = time.perf_counter()
    c = await router.complete(route, REQ)
    assert time.perf_counter() - t < 0.5
    assert c.target == "b"
    assert len(ads["a"].calls) == 1


async def test_deadline_across_all_attempts() -> None:
    route, ads, rec = make_route({"a": [HANG], "b": [answer()]}, timeout=0.2)
    t = time.perf_counter()
    with pytest.raises(DeadlineExceeded) as info:
        await router.complete(route, REQ)
    elapsed = time.perf_counter() - t
    assert 0.18 <= elapsed < 0.6
    assert [(a.target, a.outcome) for a in info.value.attempts] == [("a", "timeout")]
    assert ads["b"].calls == []
    assert rec.requests == [("classify", None, "deadline", False)]


async def test_target_timeout_falls_back_within_the_deadline() -> None:
    route, _, _ = make_route({"a": [HANG], "b": [answer("B")]}, timeout=2.0, target_timeouts={"a": 0.05})
    t = time.perf_counter()
    c = await router.complete(route, REQ)
    assert time.perf_counter() - t < 0.5
    assert c.target == "b"
    assert c.attempts[0].outcome == "timeout"


async def test_open_breaker_skips_the_target_at_once() -> None:
    route, ads, _ = make_route({"a": [err(FailureKind.SERVER)], "b": []}, threshold=1)
    await router.complete(route, REQ)
    assert route.targets[0].breaker.is_open
    t = time.perf_counter()
    c = await router.complete(route, REQ)
    elapsed = time.perf_counter() - t
    assert c.target == "b"
    assert len(ads["a"].calls) == 1  # not called again
    skip = c.attempts[0]
    assert (skip.target, skip.outcome, skip.duration_ms) == ("a", "circuit_open", 0.0)
    assert elapsed < 0.005


async def test_half_open_probe_closes_the_breaker() -> None:
    now = [0.0]
    route, _, _ = make_route({"a": [err(FailureKind.SERVER), answer("A")], "b": []},
                             threshold=1, open_seconds=10, clock=lambda: now[0])
    assert (await router.complete(route, REQ)).target == "b"
    assert (await router.complete(route, REQ)).target == "b"
    now[0] = 11
    c = await router.complete(route, REQ)
    assert c.target == "a"
    assert not route.targets[0].breaker.is_open


async def test_breaker_opening_stops_retries_on_that_target() -> None:
    route, ads, _ = make_route({"a": [err(FailureKind.SERVER)] * 3, "b": []}, threshold=1, attempts=3)
    c = await router.complete(route, REQ)
    assert len(ads["a"].calls) == 1
    assert [(a.target, a.outcome) for a in c.attempts] == [("a", "server_error"), ("b", "ok")]


async def test_cancellation_releases_the_probe_and_reports() -> None:
    route, ads, rec = make_route({"a": [HANG]})
    task = asyncio.create_task(router.complete(route, REQ))
    await ads["a"].hanging.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rec.requests == [("classify", None, "cancelled", False)]
    assert route.targets[0].breaker.consecutive_failures == 0


# ---- streaming ------------------------------------------------------------------------

SREQ: dict[str, Any] = {**REQ, "stream": True}


async def collect(sc: router.StreamingCompletion) -> list[dict[str, Any]]:
    return [c async for c in sc]


async def test_stream_falls_back_before_the_first_chunk() -> None:
    route, _, rec = make_route({
        "a": [[err(FailureKind.OVERLOADED, 529)]],
        "b": [[chunk("B1"), chunk("B2"), chunk(finish="stop")]],
    })
    sc = await router.open_stream(route, SREQ)
    assert sc.target == "b"
    assert sc.first == chunk("B1")
    chunks = await collect(sc)
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["B1", "B2", None]
    assert [(a.target, a.outcome) for a in sc.attempts] == [("a", "overloaded"), ("b", "ok")]
    assert rec.requests == [("classify", "b", "ok", True)]


async def test_stream_that_ends_before_any_chunk_falls_back() -> None:
    route, _, _ = make_route({"a": [[]], "b": [[chunk("B"), chunk(finish="stop")]]})
    sc = await router.open_stream(route, SREQ)
    assert sc.target == "b"
    assert sc.attempts[0].outcome == "bad_response"


async def test_stream_error_after_first_chunk_surfaces_without_fallback() -> None:
    route, ads, rec = make_route({
        "a": [[chunk("A1"), err(FailureKind.SERVER, 500)]],
        "b": [[chunk("B1"), chunk(finish="stop")]],
    })
    sc = await router.open_stream(route, SREQ)
    assert sc.target == "a"
    seen: list[dict[str, Any]] = []

    async def drain() -> None:
        async for c in sc:
            seen.append(c)

    with pytest.raises(UpstreamError) as info:
        await drain()
    assert info.value.kind is FailureKind.SERVER
    assert seen == [chunk("A1")]
    assert ads["b"].calls == []
    assert rec.requests == [("classify", "a", "stream_error", True)]
    assert [(a.target, a.outcome) for a in sc.attempts] == [("a", "server_error")]


async def test_stream_stall_after_first_chunk_times_out() -> None:
    route, _, _ = make_route({"a": [[chunk("A1"), HANG]]}, timeout=5, target_timeouts={"a": 0.1})
    sc = await router.open_stream(route, SREQ)
    with pytest.raises(UpstreamError) as info:
        await collect(sc)
    assert info.value.kind is FailureKind.TIMEOUT


async def test_stream_first_chunk_deadline() -> None:
    route, _, _ = make_route({"a": [[HANG]]}, timeout=0.1)
    with pytest.raises(DeadlineExceeded):
        await router.open_stream(route, SREQ)


async def test_stream_client_error_does_not_fall_back() -> None:
    e = UpstreamError(FailureKind.CLIENT, "bad", status=422)
    route, ads, _ = make_route({"a": [[e]], "b": []})
    with pytest.raises(RouteFailed) as info:
        await router.open_stream(route, SREQ)
    assert info.value.client_error is e
    assert ads["b"].calls == []


async def test_stream_usage_is_recorded_but_hidden_unless_asked() -> None:
    route, ads, rec = make_route({"a": [[chunk("A"), chunk(finish="stop"), usage_chunk()]]})
    chunks = await collect(await router.open_stream(route, SREQ))
    assert all(c.get("usage") is None for c in chunks)
    assert len(chunks) == 2
    assert ads["a"].calls[0]["stream_options"] == {"include_usage": True}  # asked upstream for stats
    assert "stream_options" not in SREQ  # the app's request is not mutated
    assert rec.attempts[-1][4] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


async def test_stream_usage_is_forwarded_when_asked() -> None:
    route, _, _ = make_route({"a": [[chunk("A"), chunk(finish="stop"), usage_chunk()]]})
    req = {**SREQ, "stream_options": {"include_usage": True}}
    chunks = await collect(await router.open_stream(route, req))
    assert chunks[-1]["usage"]["total_tokens"] == 5


async def test_stream_closed_by_the_app_is_reported_and_closes_upstream() -> None:
    route, _, rec = make_route({"a": [[chunk("A1"), chunk("A2"), HANG]]})
    sc = await router.open_stream(route, SREQ)
    it = aiter(sc)
    assert (await anext(it))["choices"][0]["delta"]["content"] == "A1"
    await sc.aclose()
    assert rec.requests == [("classify", "a", "cancelled", True)]
    await sc.aclose()  # idempotent
    assert len(rec.requests) == 1


async def test_stream_failing_right_after_an_empty_role_chunk_still_falls_back() -> None:
    role = {**chunk(), "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    route, _, _ = make_route({
        "a": [[role, err(FailureKind.OVERLOADED, 529)]],
        "b": [[role, chunk("B1"), chunk(finish="stop")]],
    })
    sc = await router.open_stream(route, SREQ)
    assert sc.target == "b"
    assert sc.first == role
    chunks = await collect(sc)
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "B1", None]


def texts(batches: list[list[dict[str, Any]]]) -> list[list[Any]]:
    return [[c["choices"][0]["delta"].get("content") for c in b] for b in batches]


async def test_the_held_back_head_comes_as_one_batch() -> None:
    """The inbound relay writes each of ``batches()`` in one send: the role chunks held back
    with the first content go out together (and with the response headers)."""
    role = {**chunk(), "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    route, _, _ = make_route({"a": [[role, role, chunk("A1"), chunk("A2"), chunk(finish="stop")]]})
    sc = await router.open_stream(route, SREQ)
    assert texts([b async for b in sc.batches()]) == [["", "", "A1"], ["A2"], [None]]


async def test_a_head_ending_in_a_hidden_usage_chunk_is_not_left_buffered() -> None:
    role = {**chunk(), "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    route, _, _ = make_route({"a": [[role, usage_chunk(), chunk("A1"), chunk(finish="stop")]]})
    sc = await router.open_stream(route, SREQ)  # the app did not ask for usage: that chunk is not relayed
    assert texts([b async for b in sc.batches()]) == [[""], ["A1"], [None]]
    assert sc.usage == usage_chunk()["usage"]


async def test_chunks_that_arrived_together_come_as_one_batch() -> None:
    """An upstream read's chunks (``ChunkStream``) stay together, the head's read's with the head;
    the usage chunk the app did not ask for is left out of its batch; nothing waits to fill one."""
    role = {**chunk(), "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
    route, _, rec = make_route({"a": [[Together([role, chunk("A1"), chunk("A2")]), chunk("A3"),
                                       Together([chunk("A4"), chunk(finish="stop"), usage_chunk()])]]})
    sc = await router.open_stream(route, SREQ)
    assert texts([b async for b in sc.batches()]) == [["", "A1", "A2"], ["A3"], ["A4", None]]
    assert sc.usage == usage_chunk()["usage"]
    assert rec.requests == [("classify", "a", "ok", True)]


async def test_batched_chunks_one_by_one_and_a_failure_after_a_batch() -> None:
    """``async for`` still gives the chunks one at a time; a failure after a read raises after its chunks."""
    route, _, rec = make_route({"a": [[Together([chunk("A1"), chunk("A2")]), err(FailureKind.SERVER, 500)]]})
    sc = await router.open_stream(route, SREQ)
    it = aiter(sc)
    assert [(await anext(it))["choices"][0]["delta"]["content"] for _ in range(2)] == ["A1", "A2"]
    with pytest.raises(UpstreamError):
        await anext(it)
    assert rec.requests == [("classify", "a", "stream_error", True)]


async def test_a_failing_observer_does_not_fail_the_request() -> None:
    route, _, rec = make_route({"a": [answer("A")]})
    rec.broken = True
    assert (await router.complete(route, REQ)).target == "a"
