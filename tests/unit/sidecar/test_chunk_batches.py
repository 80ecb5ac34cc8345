"""An adapter's stream keeps the chunks of one upstream read together (``ChunkStream``), in order, errors last."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from modelroute.api.v1alpha1.spec import Target
from modelroute.sidecar.errors import FailureKind, UpstreamError
from modelroute.sidecar.pipeline.counters import Ledger
from modelroute.sidecar.pipeline.limits import TargetLimiter, Ticket
from modelroute.sidecar.pipeline.stages import LimitedStep
from modelroute.sidecar.providers.build_send import json_event
from modelroute.sidecar.providers.chunkstream import ChunkStream
from modelroute.sidecar.providers.registry import build_adapter
from modelroute.sidecar.providers.transport import Prepared, Transport
from modelroute.sidecar.routing.call import Call
from modelroute.sidecar.routing.router import AdapterStep
from modelroute.sidecar.server.wire import OPENAI

from .fakes import Together, chunk, make_route, usage_chunk

Json = dict[str, Any]
REQ: Json = {"model": "r", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def openai_chunk(text: str | None = None, finish: str | None = None) -> str:
    delta = {"content": text} if text is not None else {}
    return json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}, separators=(",", ":"))


USAGE = json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini", "choices": [],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})


class Reads(Transport):
    """The transport seam: a stream's answer as the events each read completed (nothing leaves the process)."""

    def __init__(self, provider: str, reads: list[list[str]]) -> None:
        super().__init__(provider)
        self.reads = reads

    async def stream(self, req: Prepared, body: bytes, *, timeout: float) -> AsyncGenerator[list[str], None]:  # noqa: ASYNC109
        for events in self.reads:
            yield events


def adapter(provider: str, reads: list[list[str]]) -> Any:
    model = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}[provider]
    a: Any = build_adapter(Target.model_validate({"name": "t", "provider": provider, "model": model,
                                                  "baseUrl": "http://127.0.0.1:9", "apiKey": {"env": "K"}}), lambda: "sk")
    a._transport = Reads(provider, reads)
    return a


async def batches(stream: ChunkStream) -> list[list[Json]]:
    out = []
    while True:
        try:
            out.append(await stream.batch())
        except StopAsyncIteration:
            return out


async def test_the_chunks_of_one_read_come_together_and_keep_their_bytes() -> None:
    reads = [[openai_chunk("a"), openai_chunk("b")], [openai_chunk("c")],
             [openai_chunk(finish="stop"), USAGE, "[DONE]", openai_chunk("after the end")]]
    stream = adapter("openai", reads).stream(REQ, timeout=5)
    assert isinstance(stream, ChunkStream)
    got = await batches(stream)
    assert [len(b) for b in got] == [2, 1, 1]  # the usage-only chunk REQ did not ask for is kept back
    relayed = [OPENAI.stream({}).feed(c) for b in got for c in b]
    assert relayed[:4] == [b"data: " + e.encode() + b"\n\n" for e in (*reads[0], *reads[1], reads[2][0])]


async def test_one_by_one_and_by_batch_draw_from_the_same_place() -> None:
    reads = [[openai_chunk("a"), openai_chunk("b"), openai_chunk("c")], [openai_chunk(finish="stop")]]
    stream = adapter("openai", reads).stream(REQ, timeout=5)
    assert not stream.ready()
    assert (await anext(stream))["choices"][0]["delta"] == {"content": "a"}
    assert stream.ready()
    assert [c["choices"][0]["delta"] for c in await stream.batch()] == [{"content": "b"}, {"content": "c"}]
    assert not stream.ready()
    assert [c["choices"][0]["finish_reason"] async for c in stream] == ["stop"]


async def test_a_bad_event_fails_after_the_chunks_before_it_in_its_read() -> None:
    reads = [[openai_chunk("a"), json.dumps({"error": {"message": "overloaded", "type": "overloaded_error"}}),
              openai_chunk("never")]]
    stream = adapter("openai", reads).stream(REQ, timeout=5)
    assert [c["choices"][0]["delta"] for c in await stream.batch()] == [{"content": "a"}]
    with pytest.raises(UpstreamError) as e:
        await stream.batch()
    assert e.value.kind is FailureKind.OVERLOADED


async def test_a_stream_cut_before_its_end_fails_after_its_chunks() -> None:
    stream = adapter("openai", [[openai_chunk("a"), "not json"]]).stream(REQ, timeout=5)
    assert len(await stream.batch()) == 1
    with pytest.raises(UpstreamError) as e:
        await stream.batch()
    assert e.value.kind is FailureKind.BAD_RESPONSE


async def test_anthropic_events_of_one_read_translate_to_one_batch() -> None:
    def ev(kind: str, **fields: Any) -> str:
        return json.dumps({"type": kind, **fields})

    reads = [[ev("message_start", message={"id": "msg_1", "model": "claude-haiku-4-5", "usage": {"input_tokens": 3}}),
              ev("content_block_start", index=0, content_block={"type": "text", "text": ""}), ev("ping"),
              ev("content_block_delta", index=0, delta={"type": "text_delta", "text": "one "}),
              ev("content_block_delta", index=0, delta={"type": "text_delta", "text": "two"})],
             [ev("content_block_stop", index=0), ev("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 2})],
             [ev("message_stop")]]
    got = await batches(adapter("anthropic", reads).stream({**REQ, "stream_options": {"include_usage": True}}, timeout=5))
    assert [[c["choices"][0]["delta"] if c["choices"] else "usage" for c in b] for b in got] == [
        [{"role": "assistant", "content": ""}, {"content": "one "}, {"content": "two"}],
        [{}, "usage"],  # the second read completed no chunk: none is handed over for it
    ]


@pytest.mark.parametrize("data", ['{"a":1}', ' {"a":1}', '{"a":1}\t', '{"a": [1, {"b": null}]}'])
def test_an_event_is_one_json_object_whatever_the_whitespace(data: str) -> None:
    assert json_event(data) == json.loads(data)


@pytest.mark.parametrize("data", ["", "{", '{"a":1}x', '{"a":1} {}', "[1]", "1", '"s"', "null", "{'a':1}"])
def test_an_event_that_is_not_one_json_object_is_a_bad_response(data: str) -> None:
    with pytest.raises(UpstreamError) as e:
        json_event(data)
    assert e.value.kind is FailureKind.BAD_RESPONSE


class Settling(TargetLimiter):
    """A limiter that also notes the usage each ticket is settled with."""

    def __init__(self) -> None:
        super().__init__("a", requests_per_minute=100)
        self.settled: list[Json | None] = []

    def settle(self, ticket: Ticket, usage: Json | None) -> None:
        self.settled.append(usage)
        super().settle(ticket, usage)


async def test_a_limited_stream_keeps_the_groups_and_settles_on_the_reported_usage() -> None:
    route, ads, _ = make_route({"a": [[Together([chunk("A1"), chunk("A2")]), Together([chunk(finish="stop"), usage_chunk()])]]})
    limiter = Settling()
    step = LimitedStep(AdapterStep(ads["a"]), limiter, Ledger(), "a")
    stream = step.stream(Call(route, None), {"model": "classify", "messages": [], "stream": True}, 5)
    assert isinstance(stream, ChunkStream)
    got = await batches(stream)
    assert [len(b) for b in got] == [2, 2]
    assert limiter.settled == [usage_chunk()["usage"]]
