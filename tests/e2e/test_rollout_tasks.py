"""Issue 11, e2e: rollouts where all live traffic uses the task endpoints (``/v1/classify``, ``/v1/extract``).

Real apiserver, operator, two sidecar processes and the emulator. Stable answers one label
(or one JSON object); the candidate answers the same thing spelled its own way (``Billing.``,
or the object with its keys in another order inside a code fence) and, in the abort tests,
something else on the 30% of inputs marked ``#flip``. Mirror agreement is computed on the
normalised label or the extracted JSON: the different candidate is aborted on
``minAgreement``, the equal one is mirrored, weighted and promoted (classify, extract and
streamed chat), and while it holds 30% the canary answers that share of requests within a
binomial 99.9% interval. Apps only ever get stable's answer while the canary is mirrored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelroute.sidecar.eval import stats
from modelroute.sidecar.output.parse import normalize_label
from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer, PodHandle

from . import rollout_harness as rh
from .test_rollout_abort import assert_back_on_stable

pytestmark = pytest.mark.e2e

ANALYSIS = {"interval": "1s", "minSamples": 20, "minAgreement": 0.9, "maxErrorRate": 0.05}
SCHEMA = {"type": "object", "properties": {"amount": {"type": "number"}, "currency": {"type": "string"}},
          "required": ["amount", "currency"]}


@dataclass(frozen=True)
class Kind:
    name: str                   # classify or extract
    extra: dict[str, Any]       # the request's labels or schema
    stable: str                 # what stable's model says
    same: str                   # what the candidate says when it agrees (spelled its own way)
    other: str                  # what a different candidate says on #flip inputs
    answer: str                 # stable's answer as TaskTraffic counts it

    def answer_of(self, body: dict[str, Any]) -> str:
        return str(body["label"]) if self.name == "classify" else json.dumps(body["data"], sort_keys=True)

    def answer_of_text(self, text: str) -> str:
        """An answer as traffic counts it; a chat answer is normalised like a label (``Billing.`` is ``billing``)."""
        return normalize_label(text) if self.name == "stream" else text


CLASSIFY = Kind("classify", {"labels": ["billing", "shipping", "refund"]}, "billing", "Billing.", "shipping", "billing")
EXTRACT = Kind("extract", {"schema": SCHEMA}, '{"amount": 12, "currency": "EUR"}',
               '```json\n{"currency": "EUR", "amount": 12}\n```', '{"amount": 13, "currency": "EUR"}',
               json.dumps({"amount": 12, "currency": "EUR"}, sort_keys=True))


def ticket(i: int) -> str:
    """Ticket ``i``; three in ten are marked ``#flip`` (where a different candidate changes its answer)."""
    return f"ticket {i}: I was charged 12 EUR twice" + (" #flip" if i % 10 in (0, 3, 6) else "")


@contextmanager
def rolling(env: rh.RolloutEnv, strat: dict[str, Any], kind: Kind, *, flips: bool,
            traffic: rh.Traffic | None = None) -> Iterator[tuple[rh.Traffic, str, str, rh.History]]:
    """Stable at the scripted answer, then traffic (default: ``kind``'s task requests) and the candidate
    applied: (traffic, old, new, history)."""
    rules: list[dict[str, Any]] = [{"model": rh.STABLE_MODEL, "reply": {"text": kind.stable}}]
    if flips:
        rules.append({"model": rh.CANARY_MODEL, "contains": "#flip", "reply": {"text": kind.other}})
    rules.append({"model": rh.CANARY_MODEL, "reply": {"text": kind.same}})
    rh.script(env, rules)
    old = rh.start_stable(env, strat, label=kind.stable)
    history = rh.History(env)
    with traffic or rh.TaskTraffic(list(env.pods.values()), kind=kind.name, extra=kind.extra, inputs=ticket) as running:
        rh.change_model(env, rh.CANARY_MODEL, strat)
        new = history.until("the rollout", lambda r: r.get("canaryRevision") not in (None, old))["canaryRevision"]
        yield running, old, str(new), history


def answers_stable(h: PodHandle, kind: Kind) -> bool:
    body, _, _ = rh.task(h, kind.name, ticket(1), kind.extra)
    return kind.answer_of(body) == kind.answer


@pytest.mark.parametrize("kind", [CLASSIFY, EXTRACT], ids=lambda k: k.name)
def test_a_candidate_that_changes_30_percent_of_answers_is_aborted_on_agreement(
    cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path, kind: Kind,
) -> None:
    strat = rh.strategy([{"mirror": 100}, {"pause": {"duration": "30s"}}], analysis=ANALYSIS)
    with rh.rollout_env(cluster, namespace, kubelet, tmp_path) as env:
        with rolling(env, strat, kind, flips=True) as (traffic, old, new, history):
            ro = assert_back_on_stable(env, history, old, new, label=kind.stable)
        metrics = {m["name"]: m for m in ro["analysis"]["metrics"]}
        agreement = metrics["agreement"]
        print(f"{kind.name} agreement:", agreement, "traffic:", traffic.answers, traffic.variants)
        assert agreement["verdict"] == "Fail" and 0.5 < agreement["value"] < 0.9, metrics
        # Mirrored answers are never returned: clients only got stable's answer, from stable.
        assert set(traffic.answers) == {kind.answer} and set(traffic.variants) == {"stable"}, (traffic.answers, traffic.variants)
        assert traffic.errors == 0
        assert all(answers_stable(h, kind) for h in env.pods.values())


STREAM = Kind("stream", {}, "billing", "Billing.", "shipping", "billing")   # streamed chat; the answer is the joined chunks
SHARE_SAMPLES = 200     # requests sampled while the canary holds its weight
SHARE_CONFIDENCE = 0.999


def sample_variant(h: PodHandle, kind: Kind, i: int) -> tuple[str, str, str]:
    """One request of ``kind``: (answer, x-modelroute-variant, x-modelroute-revision)."""
    if kind is STREAM:
        return rh.stream_chat(h, ticket(i))
    body, variant, revision = rh.task(h, kind.name, ticket(i), kind.extra)
    return kind.answer_of(body), variant, revision


def assert_canary_share(env: rh.RolloutEnv, kind: Kind, weight: int, old: str, new: str) -> None:
    """``SHARE_SAMPLES`` requests while every sidecar serves the canary at ``weight``%: the observed share of
    canary answers must be within the 99.9% Wilson interval (a binomial test at alpha 0.001)."""
    pods = list(env.pods.values())
    seen = [sample_variant(pods[i % len(pods)], kind, i) for i in range(SHARE_SAMPLES)]
    by = {(variant, revision) for _, variant, revision in seen}
    assert by <= {("stable", old), ("canary", new)}, f"the step ended while sampling: {by}"
    canary = sum(variant == "canary" for _, variant, _ in seen)
    lo, hi = stats.wilson(canary, SHARE_SAMPLES, SHARE_CONFIDENCE)
    print(f"{kind.name}: canary answered {canary}/{SHARE_SAMPLES} at weight {weight}% (99.9% CI {lo:.3f}..{hi:.3f})")
    assert lo <= weight / 100 <= hi, (canary, SHARE_SAMPLES, weight)
    assert {kind.answer_of_text(a) for a, _, _ in seen} == {kind.answer}


@pytest.mark.parametrize("kind", [CLASSIFY, EXTRACT, STREAM], ids=lambda k: k.name)
def test_an_equal_candidate_is_promoted_and_the_canary_answers_its_share(
    cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path, kind: Kind,
) -> None:
    steps: list[dict[str, Any]] = [{"mirror": 100}, {"pause": {"duration": "2s"}}, {"weight": 30}, {"pause": {"duration": "12s"}}]
    strat = rh.strategy(steps, analysis=ANALYSIS)
    with rh.rollout_env(cluster, namespace, kubelet, tmp_path) as env:
        traffic = rh.Traffic(list(env.pods.values()), inputs=ticket, stream=True) if kind is STREAM else None
        with rolling(env, strat, kind, flips=False, traffic=traffic) as (running, old, new, history):
            history.until("weight 30", lambda r: (r.get("weights") or {}).get("canary") == 30)
            rh.wait_each(env, "serving the canary at 30%", lambda h: [c["weight"] for c in rh.canaries(h)] == [30], timeout=10)
            assert_canary_share(env, kind, 30, old, new)
            done = history.until("promotion", lambda r: r.get("phase") == "Healthy" and r.get("stableRevision") == new, timeout=40)
        metrics = {m["name"]: m for m in (done.get("analysis") or {}).get("metrics") or []}
        print("analysis:", done.get("analysis"), "traffic:", running.answers, running.variants)
        assert (done.get("analysis") or {}).get("verdict") == "Pass"
        assert "agreement" not in metrics or metrics["agreement"]["value"] == 1.0, metrics
        assert running.errors == 0 and {kind.answer_of_text(a) for a in running.answers} == {kind.answer}, running.answers
        if kind is not STREAM:
            assert running.variants.get("stable", 0) > 0 and running.variants.get("canary", 0) > 0
        rh.wait_each(env, "without canary", rh.without_canary, timeout=10)
        assert all(sample_variant(h, kind, 1)[1:] == ("stable", new) for h in env.pods.values())


def test_a_streaming_chat_candidate_that_changes_30_percent_of_labels_is_aborted(
    cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path,
) -> None:
    """The same rollout with streamed chat requests: stable's answer is the joined chunks, the mirror copy non-streaming."""
    strat = rh.strategy([{"mirror": 100}, {"pause": {"duration": "30s"}}], analysis=ANALYSIS)
    with rh.rollout_env(cluster, namespace, kubelet, tmp_path) as env:
        streams = rh.Traffic(list(env.pods.values()), inputs=ticket, stream=True)
        with rolling(env, strat, CLASSIFY, flips=True, traffic=streams) as (traffic, old, new, history):
            ro = assert_back_on_stable(env, history, old, new, label=CLASSIFY.stable)
        agreement = {m["name"]: m for m in ro["analysis"]["metrics"]}["agreement"]
        print("streaming chat agreement:", agreement, "traffic:", traffic.answers)
        assert agreement["verdict"] == "Fail" and 0.5 < agreement["value"] < 0.9, agreement
        assert set(traffic.answers) == {"billing"} and traffic.errors == 0, (traffic.answers, traffic.errors)
