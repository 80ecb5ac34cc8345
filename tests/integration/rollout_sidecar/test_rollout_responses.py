"""A Responses API app on a route under a canary: variants split, evidence counted, like the chat entry point."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from modelroute.api.stats import SidecarStats
from modelroute.operator.rollout.counters import evidence_from_stats
from modelroute.testing.emulators.server import EmulatorServer

from .conftest import CANARY_MODEL, STABLE_MODEL, Pod, rollout_config

Pods = Callable[..., Awaitable[Pod]]


async def test_responses_requests_split_and_count_as_evidence(pods: Pods, emu: EmulatorServer) -> None:
    cfg = rollout_config(emu, weight=50)
    pod = await pods(cfg)
    variants: list[str] = []
    for i in range(30):
        if i % 2:
            raw = await pod.client.responses.with_raw_response.create(model="classify", input=f"ticket {i}")
            assert raw.parse().output_text
            variants.append(raw.headers["x-modelroute-variant"])
        else:
            async with pod.client.responses.with_streaming_response.create(
                    model="classify", input=f"ticket {i}", stream=True) as resp:
                body = await resp.read()
                variants.append(resp.headers["x-modelroute-variant"])
            assert b"event: response.completed" in body
    assert {"stable", "canary"} <= set(variants)
    assert emu.count("anthropic", CANARY_MODEL) == variants.count("canary")
    assert emu.count("openai", STABLE_MODEL) == variants.count("stable")
    stable, canary = evidence_from_stats({pod.name: SidecarStats.model_validate(await pod.stats())}, "classify",
                                         cfg.canaries[0].run_id)
    assert stable.requests == variants.count("stable") and canary.requests == variants.count("canary")
    assert canary.prompt_tokens > 0 and stable.prompt_tokens > 0
