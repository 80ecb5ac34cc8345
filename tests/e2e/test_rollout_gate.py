"""Issue 5: a rollout starts with a golden-dataset gate run through one selected sidecar.

(a) the new revision answers the dataset's labels: the gate passes, status.rollout.gate shows
Pass with the numbers, and the rollout goes on to its first weight step.
(b) the new revision answers wrong labels (scripted emulator replies): the gate fails, the
rollout aborts before any live weight or mirror, phase Degraded, the numbers in status and an
Event; clients never saw the new revision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer

from . import rollout_harness as rh
from .operator_harness import apply, wait_for

pytestmark = pytest.mark.e2e

DATASET = "\n".join(
    ['# golden cases: every ticket here is positive']
    + [f'{{"id": "c{i}", "input": "ticket {i}: works great", "expected": "positive"}}' for i in range(12)]
)


def gated(thresholds: dict[str, Any]) -> dict[str, Any]:
    strat = rh.strategy([{"weight": 50}, {"pause": {}}])
    strat["canary"]["gate"] = {"configMap": "golden", "key": "cases.jsonl", "thresholds": thresholds}
    return strat


def start(env: rh.RolloutEnv, strat: dict[str, Any], canary_label: str,
          canary_rules: tuple[dict[str, Any], ...] = ()) -> tuple[str, rh.History]:
    """``canary_rules``: scripted canary replies tried before ``canary_label`` (e.g. on some inputs only)."""
    apply(env.cluster, env.ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "golden"},
                                "data": {"cases.jsonl": DATASET}})
    rh.script(env, [{"model": rh.STABLE_MODEL, "reply": {"text": "positive"}},
                    *({"model": rh.CANARY_MODEL, **r} for r in canary_rules),
                    {"model": rh.CANARY_MODEL, "reply": {"text": canary_label}}])
    return rh.start_stable(env, strat, label="positive"), rh.History(env)


def gate_event(env: rh.RolloutEnv, reason: str) -> dict[str, Any] | None:
    return next((e for e in rh.events(env) if e.get("reason") == reason), None)


def test_a_passing_gate_lets_the_rollout_proceed(cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer,
                                                 tmp_path: Path) -> None:
    strat = gated({"minExactMatch": 0.9, "maxErrorRate": 0.05, "maxLatencyP95Seconds": 10})
    with rh.rollout_env(cluster, namespace, kubelet, tmp_path) as env:
        old, history = start(env, strat, "positive")
        rh.change_model(env, rh.CANARY_MODEL, strat)
        ro = history.until("the first weight step", lambda r: r.get("canaryRevision") not in (None, old)
                           and (r.get("weights") or {}).get("canary") == 50, timeout=60)
        gate = ro["gate"]
        assert gate["verdict"] == "Pass", gate
        metrics = {m["name"]: m for m in gate["metrics"]}
        assert metrics["exactMatch"]["value"] == 1.0 and metrics["exactMatch"]["samples"] == 12, metrics
        assert metrics["errorRate"]["value"] == 0.0 and metrics["latencyP95Seconds"]["verdict"] == "Pass", metrics
        assert "12 cases" in gate["message"]
        wait_for("the GatePassed event", lambda: gate_event(env, "GatePassed"), timeout=10)
        # The gate ran before any live traffic: every weight seen before the step was 0.
        before = [w for _, _, w in history.seen if w[1] != 50]
        assert all(w[1] == 0 and w[2] == 0 for w in before), history.seen


def test_a_failing_gate_aborts_before_any_live_traffic(cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer,
                                                       tmp_path: Path) -> None:
    strat = gated({"minExactMatch": 0.9})
    with rh.rollout_env(cluster, namespace, kubelet, tmp_path) as env:
        old, history = start(env, strat, "negative")
        with rh.Traffic(list(env.pods.values())) as traffic:
            rh.change_model(env, rh.CANARY_MODEL, strat)
            ro = history.until("the abort", lambda r: r.get("canaryRevision") not in (None, old)
                               and r.get("phase") == "Degraded", timeout=60)
        assert ro["stableRevision"] == old
        assert ro["weights"] == {"stable": 100, "canary": 0, "mirror": 0}
        assert all(w[1] == 0 and w[2] == 0 for _, _, w in history.seen), f"live weight moved: {history.seen}"
        gate = ro["gate"]
        assert gate["verdict"] == "Fail", gate
        metrics = {m["name"]: m for m in gate["metrics"]}
        assert metrics["exactMatch"]["value"] == 0.0 and metrics["exactMatch"]["samples"] == 12, metrics
        assert "gate failed" in ro["message"] and "exactMatch" in ro["message"], ro["message"]
        # Clients only ever got stable's label, and the gate's calls were not live traffic.
        assert set(traffic.answers) == {"positive"}, traffic.answers
        wait_for("every sidecar back on stable", lambda: all(rh.canaries(h) == [] for h in env.pods.values()), timeout=10)
        aborted = wait_for("the Aborted event", lambda: gate_event(env, "Aborted"), timeout=10)
        assert "exactMatch" in str(aborted.get("message")), aborted


def test_a_relative_gate_compares_with_stable_on_the_same_dataset(cluster: ControlPlane, namespace: str,
                                                                   kubelet: KubeletPlayer, tmp_path: Path) -> None:
    """Issue 11: ``maxAccuracyDrop`` runs the dataset on both revisions; status shows both revisions' numbers."""
    strat = gated({"maxAccuracyDrop": 0.1})
    with rh.rollout_env(cluster, namespace, kubelet, tmp_path) as env:
        # The canary gets tickets 1, 10 and 11 wrong: 9/12 against stable's 12/12, a drop of 0.25.
        old, history = start(env, strat, "positive", ({"contains": "ticket 1", "reply": {"text": "negative"}},))
        rh.change_model(env, rh.CANARY_MODEL, strat)
        ro = history.until("the abort", lambda r: r.get("canaryRevision") not in (None, old)
                           and r.get("phase") == "Degraded", timeout=60)
        gate = ro["gate"]
        print("relative gate:", gate)
        assert gate["verdict"] == "Fail", gate
        drop = {m["name"]: m for m in gate["metrics"]}["accuracyDrop"]
        assert drop["value"] == pytest.approx(0.25) and drop["threshold"] == 0.1 and drop["samples"] == 12, drop
        revisions = {r["role"]: r for r in gate["revisions"]}
        assert revisions["candidate"]["revision"] == ro["canaryRevision"] and revisions["candidate"]["exactMatch"] == 0.75
        assert revisions["stable"]["revision"] == old and revisions["stable"]["exactMatch"] == 1.0, revisions
        assert "75.0% vs stable 100.0%" in gate["message"]
        assert all(w[1] == 0 and w[2] == 0 for _, _, w in history.seen), f"live weight moved: {history.seen}"
