"""Task endpoints (``/v1/classify``, ``/v1/extract``) take part in rollouts exactly like chat requests.

The same ``RolloutRequest`` picks the variant (weight, stickiness), mirrors stable-answered
tasks to the canary and counts per-variant evidence; agreement compares the normalised label
or the extracted JSON (``output.answer``); ``revision`` in the body and the variant header say
who answered.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

from modelroute.api.stats import SidecarStats
from modelroute.api.v1alpha1.strategy import variant_for
from modelroute.operator.rollout.counters import evidence_from_stats
from modelroute.sidecar.eval import scoring
from modelroute.sidecar.output import answer
from modelroute.testing.scrape import sample

from .conftest import FakeAdapters, Running, config

Start = Callable[..., Awaitable[Running]]
Json = dict[str, Any]
LABELS = ["billing", "shipping", "refund"]


def _ticket(request: Json) -> int:
    """The ticket number in a task's user turn ("ticket 17: ...")."""
    text = str(request["messages"][-1]["content"])
    return int(text.split("ticket ", 1)[1].split(":", 1)[0])


async def test_a_classify_canary_answers_its_weights_share(start: Start, adapters: FakeAdapters) -> None:
    random.seed(11)
    cfg = config(weight=30)
    sc = await start(cfg)
    adapters["old"].text = "Billing"
    adapters["new"].text = "shipping"
    adapters_seen: dict[str, int] = {"stable": 0, "canary": 0}
    n = 400
    for i in range(n):
        status, headers, body = await sc.task("classify", input=f"ticket {i}: where is my parcel", labels=LABELS)
        assert status == 200, body
        variant = headers["x-modelroute-variant"]
        adapters_seen[variant] += 1
        assert body["revision"] == headers["x-modelroute-revision"]
        assert (variant == "canary") == (body["revision"] == cfg.canaries[0].revision)
        assert (body["target"], body["label"]) == (("new", "shipping") if variant == "canary" else ("old", "billing"))
    share = adapters_seen["canary"] / n
    sd = (0.3 * 0.7 / n) ** 0.5
    assert abs(share - 0.3) < 4 * sd, share          # binomial tolerance: 4 standard deviations
    stats = SidecarStats.model_validate(await sc.stats())
    stable, canary = evidence_from_stats({"pod": stats}, "classify", "run.0")
    assert (stable.requests, canary.requests) == (adapters_seen["stable"], adapters_seen["canary"])
    assert canary.outputs_valid == canary.requests and canary.prompt_tokens == 10 * canary.requests
    assert canary.priced == canary.requests and canary.cost_usd > 0


async def test_a_sticky_key_pins_a_task_to_one_revision(start: Start, adapters: FakeAdapters) -> None:
    cfg = config(weight=50, sticky="x-user-id")
    sc = await start(cfg)
    revision = cfg.canaries[0].revision
    for i in range(20):
        key = f"user-{i}"
        seen = set()
        for kind in ("classify", "classify", "extract"):
            extra: Json = {"labels": LABELS} if kind == "classify" else {"schema": {"type": "object"}}
            adapters["old"].text = adapters["new"].text = "billing" if kind == "classify" else '{"a": 1}'
            status, headers, _ = await sc.task(kind, headers={"X-User-Id": key}, input="ticket 1: hi", **extra)
            assert status == 200
            seen.add(headers["x-modelroute-variant"])
        assert seen == {variant_for(key, revision, 50)}


async def test_mirror_agreement_on_classify_compares_normalised_labels(start: Start, adapters: FakeAdapters) -> None:
    sc = await start(config(mirror=100, canary_spec={"prompt": {"version": "v2", "user": "Canary asks: {{input}}"}}))
    adapters["old"].text = "Billing"
    # The canary spells the label its own way (agrees) except on every third ticket (disagrees).
    adapters["new"].respond = lambda req: "refund" if _ticket(req) % 3 == 0 else "billing."
    for i in range(12):
        status, headers, body = await sc.task("classify", input=f"ticket {i}: charged twice", labels=LABELS)
        assert status == 200 and body["label"] == "billing" and headers["x-modelroute-variant"] == "stable"
    await asyncio.wait_for(sc.state.mirrors.drained(), 10)
    mirror = (await sc.stats())["rollouts"]["classify"]["variants"]["mirror"]
    assert mirror["agreement"] == {"compared": 12, "agreed": 8, "taskCompared": 12, "taskAgreed": 8}
    # The same counts on /metrics, per route, run and variant.
    text, run = await sc.metrics(), (await sc.stats())["rollouts"]["classify"]["run"]
    lbl = {"route": "classify", "run": run, "variant": "mirror"}
    assert sample(text, "modelroute_rollout_task_compared_total", **lbl) == 12
    assert sample(text, "modelroute_rollout_task_agreed_total", **lbl) == 8
    assert sample(text, "modelroute_rollout_agreed_total", **lbl) == 8
    assert mirror["requests"] == 12 and mirror["outputs"] == {"checked": 12, "valid": 12}
    # The copy was written from the canary's own prompt, and checked against the task's labels.
    assert all(str(c["messages"][-1]["content"]).startswith("Canary asks: ticket") for c in adapters["new"].calls)
    assert not any("Canary" in str(c["messages"][-1]["content"]) for c in adapters["old"].calls)


async def test_mirror_agreement_on_extract_compares_json_after_normalisation(start: Start, adapters: FakeAdapters) -> None:
    sc = await start(config(mirror=100))
    adapters["old"].text = '{"amount": 12, "currency": "EUR"}'
    # Same value, other key order and a fence: agrees; a different amount on odd tickets: disagrees.
    adapters["new"].respond = lambda req: (
        '```json\n{"currency": "EUR", "amount": 13}\n```' if _ticket(req) % 2 else '```json\n{"currency": "EUR", "amount": 12}\n```')
    schema = {"type": "object", "properties": {"amount": {"type": "number"}, "currency": {"type": "string"}},
              "required": ["amount", "currency"]}
    for i in range(10):
        status, headers, body = await sc.task("extract", input=f"ticket {i}: 12 EUR", schema=schema)
        assert status == 200 and body["data"] == {"amount": 12, "currency": "EUR"}
        assert headers["x-modelroute-variant"] == "stable" and body["revision"] == headers["x-modelroute-revision"]
    await asyncio.wait_for(sc.state.mirrors.drained(), 10)
    mirror = (await sc.stats())["rollouts"]["classify"]["variants"]["mirror"]
    assert mirror["agreement"] == {"compared": 10, "agreed": 5, "taskCompared": 10, "taskAgreed": 5}


async def test_a_canary_that_breaks_the_task_contract_fails_in_its_evidence(start: Start, adapters: FakeAdapters) -> None:
    sc = await start(config(weight=100))
    adapters["new"].text = "I think it is about money"      # no label, even after the repair turn
    status, headers, body = await sc.task("classify", input="ticket 1: charged twice", labels=LABELS)
    assert status == 422 and headers["x-modelroute-variant"] == "canary", body
    stats = SidecarStats.model_validate(await sc.stats())
    _, canary = evidence_from_stats({"pod": stats}, "classify", "run.0")
    assert canary.requests == 1 and canary.errors == {"invalid_output": 1}
    assert (canary.outputs_checked, canary.outputs_valid) == (1, 0), "an answer that never passed the check is an invalid output"


async def test_bad_task_input_is_a_400_counted_for_no_variant(start: Start, adapters: FakeAdapters) -> None:
    sc = await start(config(weight=50, mirror=100))
    status, _, body = await sc.task("classify", input="ticket 1")        # no labels, and the route has none
    assert status == 400 and body["error"]["param"] == "labels"
    run = (await sc.stats())["rollouts"]["classify"]["variants"]
    assert all(v["requests"] == 0 and not v["errors"] for v in run.values())


def test_one_definition_of_the_answer() -> None:
    """Eval, the gate and mirror agreement read and compare answers with the same functions."""
    assert scoring.answers_agree is answer.answers_agree and scoring.normalize_label('"Billing."') == "billing"
    call = {"id": "1", "type": "function", "function": {"name": "label", "arguments": '{"x": 1}'}}
    completion = {"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]}}]}
    text = answer.answer_of(completion)
    assert json.loads(text) == [{"name": "label", "arguments": {"x": 1}}]
    assert answer.answers_agree(text, '[{"name": "label", "arguments": {"x": 1}}]')
    assert not answer.answers_agree(text, '[{"name": "label", "arguments": {"x": 2}}]')
