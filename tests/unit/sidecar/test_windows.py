"""Context windows: the input estimate, selection by ``when``, the pre-check skip and the context-too-long 400."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1.providers import Provider, Window
from modelroute.api.v1alpha1.registry import ModelRegistry
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.errors import FailureKind, RouteFailed
from modelroute.sidecar.pipeline.compiler import Planner
from modelroute.sidecar.pipeline.windows import (
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD,
    REPLY_OVERHEAD,
    WindowStep,
    estimate_input,
    requested_output,
)
from modelroute.sidecar.providers.errors import from_status
from modelroute.sidecar.routing import router
from modelroute.sidecar.routing.router import AdapterStep
from modelroute.sidecar.routing.runtime import RouteRuntime, Runtime
from modelroute.sidecar.server.envelope import failure_body
from modelroute.sidecar.server.state import SidecarState

from .fakes import FakeAdapter, Recorder
from .test_chain import factory, steps

Json = dict[str, Any]
texts = st.text(max_size=300)
messages = st.lists(st.tuples(st.sampled_from(["user", "assistant", "system"]), texts), max_size=6)


def chat(msgs: list[tuple[str, str]], **extra: Any) -> Json:
    return {"model": "r", "messages": [{"role": r, "content": c} for r, c in msgs], **extra}


@given(messages)
def test_the_estimate_is_never_below_four_bytes_a_token_plus_framing(msgs: list[tuple[str, str]]) -> None:
    size = sum(len(c.encode("utf-8", "surrogatepass")) for _, c in msgs)
    floor = math.ceil(size / 4) + MESSAGE_OVERHEAD * len(msgs) + REPLY_OVERHEAD
    assert estimate_input(chat(msgs)) >= floor


@given(messages, st.sampled_from(["user", "assistant"]), texts, texts)
def test_the_estimate_is_monotone(msgs: list[tuple[str, str]], role: str, more: str, suffix: str) -> None:
    base = estimate_input(chat(msgs))
    assert estimate_input(chat([*msgs, (role, more)])) > base, "a message more never lowers it"
    if msgs:
        longer = [*msgs[:-1], (msgs[-1][0], msgs[-1][1] + suffix)]
        assert estimate_input(chat(longer)) >= base, "longer text never lowers it"


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                           max_leaves=30)


@given(st.dictionaries(st.sampled_from(["messages", "tools", "max_tokens"]), json_values))
def test_the_estimate_never_fails_on_any_json(request: Json) -> None:
    assert estimate_input(request) >= REPLY_OVERHEAD
    call_shaped = {"messages": [{"role": "assistant", "tool_calls": request.get("messages"), "content": request.get("tools")}]}
    assert estimate_input(call_shaped) >= REPLY_OVERHEAD


def test_the_estimate_counts_utf8_bytes_parts_tools_and_tool_calls() -> None:
    assert estimate_input(chat([("user", "a" * 300)])) == 100 + MESSAGE_OVERHEAD + REPLY_OVERHEAD
    assert estimate_input(chat([("user", "é" * 150)])) == 100 + MESSAGE_OVERHEAD + REPLY_OVERHEAD  # 2 bytes each
    parts = {"role": "user", "content": [{"type": "text", "text": "x" * 30}, {"type": "image_url", "image_url": {"url": "u"}}]}
    assert estimate_input({"messages": [parts]}) == 10 + IMAGE_TOKENS + MESSAGE_OVERHEAD + REPLY_OVERHEAD
    tool_call = {"role": "assistant", "content": None,
                 "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f" * 3, "arguments": "y" * 27}}]}
    assert estimate_input({"messages": [tool_call]}) == 10 + MESSAGE_OVERHEAD + REPLY_OVERHEAD
    tools = [{"type": "function", "function": {"name": "lookup"}}]
    assert estimate_input({"messages": [], "tools": tools}) > REPLY_OVERHEAD


def test_requested_output_is_clamped_by_the_params() -> None:
    assert requested_output({"max_tokens": 500}, None) == 500
    assert requested_output({"max_completion_tokens": 500}, 100) == 100
    assert requested_output({}, 100) == 100
    assert requested_output({}, None) == 0


def test_registry_windows_cover_dated_versions_and_overrides() -> None:
    builtin = ModelRegistry()
    assert builtin.window(Provider.OPENAI, "gpt-4o-mini") == Window(128_000, 16_384)
    assert builtin.window(Provider.OPENAI, "gpt-4o-mini-2024-07-18") == Window(128_000, 16_384)
    assert builtin.window(Provider.OPENAI, "gpt-4.1-mini-2025-04-14") == Window(1_047_576, 32_768)
    assert builtin.window(Provider.GEMINI, "models/gemini-2.5-flash") == Window(1_048_576, 65_536)
    assert builtin.window(Provider.ANTHROPIC, "claude-haiku-4-5-20251001") == Window(200_000, 64_000)
    assert builtin.window(Provider.OPENAI_COMPATIBLE, "llama") is None, "unknown: no pre-check"
    over = ModelRegistry.model_validate({"windows": [
        {"provider": "openai", "model": "gpt-4o-mini", "contextWindow": 1000, "maxOutputTokens": 100},
        {"provider": "openai-compatible", "model": "llama", "contextWindow": 8192, "maxOutputTokens": 2048}]})
    assert over.window(Provider.OPENAI, "gpt-4o-mini-2024-07-18") == Window(1000, 100)
    assert over.window(Provider.OPENAI_COMPATIBLE, "llama") == Window(8192, 2048)
    assert ModelRegistry(include_defaults=False).window(Provider.OPENAI, "gpt-4o-mini") is None


def two_targets(a: Json, b: Json, registry: Json | None = None) -> SidecarConfig:
    targets = [{"name": "a", "provider": "openai", "model": "m", "apiKey": {"env": "K"}, **a},
               {"name": "b", "provider": "openai", "model": "m", "apiKey": {"env": "K"}, **b}]
    return SidecarConfig.model_validate({"routes": [{
        "apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "mr"},
        "spec": {"route": "r", "targets": targets, "circuitBreaker": {"failureThreshold": 1}}}],
        **({"modelRegistry": registry} if registry is not None else {})})


def compiled(cfg: SidecarConfig) -> tuple[RouteRuntime, Recorder]:
    rec = Recorder()
    rt = Runtime.build(cfg, lambda t: None, rec, adapters=factory,
                       pipeline=Planner().compiler(registry=cfg.registry())).routes["r"]
    return rt, rec


def adapter(r: RouteRuntime, i: int) -> FakeAdapter:
    view: Any = r.targets[i].adapter
    base: FakeAdapter = view.base
    return base


def test_only_targets_with_a_window_or_a_rule_get_the_pre_check() -> None:
    r, _ = compiled(two_targets({}, {}))
    assert steps(r.chain) == [AdapterStep], "model m has no known window: nothing on the hot path"
    r, _ = compiled(two_targets({"model": "gpt-4o-mini"}, {}))
    assert steps(r.chain) == [WindowStep, AdapterStep]
    r, _ = compiled(two_targets({"when": {"maxInputTokens": 10}, "limits": {"requestsPerMinute": 60}}, {}))
    assert steps(r.chain)[0] is WindowStep, "before the limiter: a skipped request takes no tokens"


@pytest.mark.parametrize("stream", [False, True])
async def test_when_selects_the_target_by_estimated_input(stream: bool) -> None:
    r, rec = compiled(two_targets({"when": {"maxInputTokens": 100}}, {"when": {"minInputTokens": 101}}))
    short, long_ = chat([("user", "hi")]), chat([("user", "x" * 3000)])
    if stream:
        done = await router.open_stream(r, long_)
        assert done.target == "b"
        await done.aclose()
    else:
        assert (await router.complete(r, short)).target == "a"
        done2 = await router.complete(r, long_)
        assert done2.target == "b" and [a.outcome for a in done2.attempts[:1]] == ["input_size"]
        assert done2.attempts[0].status is None and "outside this target's when" in done2.attempts[0].reason
    assert len(adapter(r, 0).calls) == (0 if stream else 1), "a skipped target is never called"
    assert not r.targets[0].breaker.is_open, "a skip is no verdict on the target"
    assert ("r", "a", "input_size", None, None) in rec.attempts


async def test_a_request_beyond_the_window_is_skipped_with_its_reason() -> None:
    registry = {"windows": [{"provider": "openai", "model": "small", "contextWindow": 1000, "maxOutputTokens": 1000}]}
    r, _ = compiled(two_targets({"model": "small"}, {}, registry))
    fits = await router.complete(r, chat([("user", "x" * 1500)], max_tokens=400))
    assert fits.target == "a"
    over = await router.complete(r, chat([("user", "x" * 1500)], max_tokens=600))  # ~507 in + 600 out > 1000
    assert over.target == "b"
    first = over.attempts[0]
    assert (first.target, first.outcome, first.status) == ("a", "context_window", None)
    assert "1000-token context window of small" in first.reason
    assert len(adapter(r, 0).calls) == 1 and not r.targets[0].breaker.is_open


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_output_above_the_models_maximum_is_skipped_before_the_call(field: str) -> None:
    registry = {"windows": [{"provider": "openai", "model": "small", "contextWindow": 100_000, "maxOutputTokens": 500}]}
    r, rec = compiled(two_targets({"model": "small"}, {}, registry))
    assert (await router.complete(r, chat([("user", "hi")], **{field: 500}))).target == "a"
    over = await router.complete(r, chat([("user", "hi")], **{field: 501}))
    assert over.target == "b", "the input fits the window, the requested output does not fit the model"
    first = over.attempts[0]
    assert (first.target, first.outcome, first.status) == ("a", "context_window", None)
    assert first.reason == "501 requested output tokens exceed the 500 maximum output tokens of small"
    assert len(adapter(r, 0).calls) == 1 and not r.targets[0].breaker.is_open
    assert ("r", "a", "context_window", None, None) in rec.attempts


async def test_too_long_for_every_target_is_a_400_for_the_app() -> None:
    r, _ = compiled(two_targets({"when": {"maxInputTokens": 5}}, {"when": {"maxInputTokens": 5}}))
    with pytest.raises(RouteFailed) as caught:
        await router.complete(r, chat([("user", "x" * 300)]))
    status, body = failure_body("r", caught.value)
    assert status == 400 and body["error"]["code"] == "context_length_exceeded"


CONTEXT_400 = {
    "openai": {"error": {"message": "This model's maximum context length is 128000 tokens. However, you requested "
                                    "130000 tokens.", "type": "invalid_request_error", "param": "messages",
                         "code": "context_length_exceeded"}},
    "anthropic": {"type": "error", "error": {"type": "invalid_request_error",
                                             "message": "prompt is too long: 208310 tokens > 200000 maximum"}},
    "gemini": {"error": {"code": 400, "message": "The input token count (1200000) exceeds the maximum number of "
                                                 "tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}},
}


@pytest.mark.parametrize("name", sorted(CONTEXT_400))
def test_each_providers_context_400_is_its_own_failure_class(name: str) -> None:
    err = from_status(400, {}, CONTEXT_400[name], provider=name)
    assert err.kind is FailureKind.CONTEXT_WINDOW and err.kind.falls_back and err.kind.spares_breaker
    assert err.status == 400
    other = from_status(400, {}, {"error": {"message": "temperature must be <= 2", "type": "invalid_request_error"}},
                        provider=name)
    assert other.kind is FailureKind.CLIENT, "any other 400 still goes back to the app"


async def test_a_provider_context_400_falls_through_and_spares_the_breaker() -> None:
    r, _ = compiled(two_targets({}, {}))
    for _ in range(3):  # failureThreshold 1: one blamed failure would open it
        adapter(r, 0).script.append(from_status(400, {}, CONTEXT_400["openai"], provider="openai"))
        done = await router.complete(r, chat([("user", "long")]))
        assert done.target == "b" and done.attempts[0].outcome == "context_window" and done.attempts[0].status == 400
    assert not r.targets[0].breaker.is_open and len(adapter(r, 0).calls) == 3


async def test_private_runtimes_take_the_served_configs_registry() -> None:
    """The gate and eval build configs without a registry: they get the served one's (the operator's) windows."""
    registry = {"models": [{"provider": "openai", "models": ["m"]}],
                "windows": [{"provider": "openai", "model": "m", "contextWindow": 1000, "maxOutputTokens": 100}]}
    state = SidecarState(adapters=factory, keys=KeyResolver(environ={"K": "k"}))
    assert steps(state.build_private(two_targets({}, {}), Recorder()).routes["r"].chain) == [AdapterStep]
    await state.apply(two_targets({}, {}, registry), source="file")
    private = state.build_private(two_targets({}, {}), Recorder())
    assert steps(private.routes["r"].chain) == [WindowStep, AdapterStep]
