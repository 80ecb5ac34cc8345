"""Issue 11, e2e: a rollout where all live traffic uses ``POST /v1/classify``.

Real apiserver, operator, two sidecar processes and the emulator. Stable answers ``billing``;
the candidate answers ``Billing.`` (the same label, spelled its own way) and, in the first
test, ``shipping`` on the 30% of inputs marked ``#flip``. Mirror agreement is computed on the
normalised labels: the different candidate is aborted on ``minAgreement``, the equal one is
mirrored, weighted and promoted. Apps only ever get stable's label while the canary is mirrored.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer, PodHandle

from . import rollout_harness as rh
from .operator_harness import APP_PORT, wait_for
from .test_rollout_abort import assert_back_on_stable

pytestmark = pytest.mark.e2e

LABELS = ("billing", "shipping", "refund")
ANALYSIS = {"interval": "1s", "minSamples": 20, "minAgreement": 0.9, "maxErrorRate": 0.05}


def ticket(i: int) -> str:
    """Ticket ``i``; three in ten are marked ``#flip`` (where a different candidate changes its label)."""
    return f"ticket {i}: I was charged twice" + (" #flip" if i % 10 in (0, 3, 6) else "")


def script_labels(env: rh.RolloutEnv, *, flips: bool) -> None:
    rules: list[dict[str, Any]] = [{"model": rh.STABLE_MODEL, "reply": {"text": "billing"}}]
    if flips:
        rules.append({"model": rh.CANARY_MODEL, "contains": "#flip", "reply": {"text": "shipping"}})
    rules.append({"model": rh.CANARY_MODEL, "reply": {"text": "Billing."}})
    rh.script(env, rules)


@contextmanager
def rolling(env: rh.RolloutEnv, strat: dict[str, Any], *, flips: bool) -> Iterator[tuple[rh.TaskTraffic, str, str, rh.History]]:
    """Stable at the scripted label, then classify traffic and the candidate applied: (traffic, old, new, history)."""
    script_labels(env, flips=flips)
    old = rh.start_stable(env, strat, label="billing")
    history = rh.History(env)
    with rh.TaskTraffic(list(env.pods.values()), labels=LABELS, inputs=ticket) as traffic:
        rh.change_model(env, rh.CANARY_MODEL, strat)
        new = history.until("the rollout", lambda r: r.get("canaryRevision") not in (None, old))["canaryRevision"]
        yield traffic, old, str(new), history


def classify(h: PodHandle) -> str:
    req = urllib.request.Request(f"http://{h.ip}:{APP_PORT}/v1/classify", method="POST",
                                 data=json.dumps({"route": rh.NAME, "input": ticket(1), "labels": list(LABELS)}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return str(json.loads(r.read())["label"])


def test_a_candidate_that_changes_30_percent_of_labels_is_aborted_on_agreement(
    cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path,
) -> None:
    strat = rh.strategy([{"mirror": 100}, {"pause": {"duration": "30s"}}], analysis=ANALYSIS)
    with rh.rollout_env(cluster, namespace, kubelet, tmp_path) as env:
        with rolling(env, strat, flips=True) as (traffic, old, new, history):
            ro = assert_back_on_stable(env, history, old, new, label="billing")
        metrics = {m["name"]: m for m in ro["analysis"]["metrics"]}
        agreement = metrics["agreement"]
        print("agreement on labels:", agreement, "traffic:", traffic.answers, traffic.variants)
        assert agreement["verdict"] == "Fail" and 0.5 < agreement["value"] < 0.9, metrics
        # Mirrored answers are never returned: clients only got stable's label, from stable.
        assert set(traffic.answers) == {"billing"} and set(traffic.variants) == {"stable"}, (traffic.answers, traffic.variants)
        assert traffic.errors == 0
        for h in env.pods.values():
            assert classify(h) == "billing"


def test_an_equal_candidate_on_classify_is_promoted(
    cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path,
) -> None:
    steps: list[dict[str, Any]] = [{"mirror": 100}, {"pause": {"duration": "2s"}}, {"weight": 30}, {"pause": {"duration": "3s"}}]
    strat = rh.strategy(steps, analysis=ANALYSIS)
    with rh.rollout_env(cluster, namespace, kubelet, tmp_path) as env:
        with rolling(env, strat, flips=False) as (traffic, _, new, history):
            history.until("weight 30", lambda r: (r.get("weights") or {}).get("canary") == 30)
            wait_for("canary answers on /v1/classify", lambda: traffic.variants.get("canary", 0) >= 5, timeout=15)
            done = history.until("promotion", lambda r: r.get("phase") == "Healthy" and r.get("stableRevision") == new, timeout=40)
        metrics = {m["name"]: m for m in (done.get("analysis") or {}).get("metrics") or []}
        print("analysis:", done.get("analysis"), "traffic:", traffic.answers, traffic.variants)
        assert (done.get("analysis") or {}).get("verdict") == "Pass"
        assert "agreement" not in metrics or metrics["agreement"]["value"] == 1.0, metrics
        assert traffic.errors == 0 and set(traffic.answers) == {"billing"}, (traffic.answers, traffic.errors)
        assert traffic.variants.get("stable", 0) > 0 and traffic.variants.get("canary", 0) > 0
        rh.wait_each(env, "without canary", rh.without_canary, timeout=10)
        for h in env.pods.values():
            assert classify(h) == "billing"
