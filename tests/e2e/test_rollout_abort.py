"""Issue 5, e2e 2: a bad new revision is aborted automatically; all traffic is back on stable at once.

(a) the new revision's model answers 20% of requests with 503 (emulator fault): the error
rate fails the analysis, the rollout aborts, phase Degraded, the canary is gone from every
sidecar after one push, and clients only get stable answers again.
(b) the new revision answers with wrong labels (scripted replies): agreement with stable on
mirrored traffic fails, the rollout aborts the same way.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer

from . import rollout_harness as rh
from .operator_harness import wait_for

pytestmark = pytest.mark.e2e


def assert_back_on_stable(env: rh.RolloutEnv, history: rh.History, old: str, new: str, label: str = "positive") -> dict[str, Any]:
    ro = history.until("the abort", lambda r: r.get("phase") == "Degraded", timeout=40)
    aborted_at = time.monotonic()
    assert ro["stableRevision"] == old and ro["canaryRevision"] == new
    assert ro["weights"] == {"stable": 100, "canary": 0, "mirror": 0}
    # One push: every sidecar drops the canary right away.
    pods = list(env.pods.values())
    wait_for("every sidecar back on stable", lambda: all(rh.canaries(h) == [] for h in pods), timeout=3)
    assert time.monotonic() - aborted_at < 3
    for h in pods:
        for _ in range(5):
            got = rh.answer(h)
            assert rh.STABLE_MODEL in got or got == label
    wait_for("the Aborted event", lambda: "Aborted" in rh.reasons(env), timeout=10)
    # It stays aborted (no new attempt on its own). No event to wait on: the operator does not
    # look at an aborted rollout again unless something changes, which is the point.
    time.sleep(2)
    assert history.poll()["phase"] == "Degraded"
    # `kubectl get mr` says so: the route serves stable (Ready), its rollout is Degraded.
    rows = [line.split() for line in env.cluster.kubectl("get", "mr", "-n", env.ns).stdout.splitlines()]
    assert rows[0][3:5] == ["PHASE", "ROLLOUT"] and rows[1][3:5] == ["Ready", "Degraded"], rows
    return ro


def abort_under_traffic(env: rh.RolloutEnv, strat: dict[str, Any], old: str) -> tuple[dict[str, Any], rh.Traffic]:
    """Roll out the canary model under traffic until it aborts (``assert_back_on_stable``).

    The aborted ``status.rollout`` and the traffic that ran through it.
    """
    history = rh.History(env)
    with rh.Traffic(list(env.pods.values())) as traffic:
        rh.change_model(env, rh.CANARY_MODEL, strat)
        new = history.until("the rollout", lambda r: r.get("canaryRevision") not in (None, old))["canaryRevision"]
        return assert_back_on_stable(env, history, old, new), traffic


def test_error_rate_aborts_the_rollout(cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path) -> None:
    strat = rh.strategy([{"weight": 30}, {"pause": {"duration": "30s"}}],
                        analysis={"interval": "1s", "minSamples": 20, "maxErrorRate": 0.05})
    with rh.rollout_env(cluster, namespace, kubelet, tmp_path) as env:
        old = rh.start_stable(env, strat)
        rh.fault(env, {"kind": "status", "status": 503, "model": rh.CANARY_MODEL, "probability": 0.2})
        ro, traffic = abort_under_traffic(env, strat, old)
        metrics = {m["name"]: m for m in ro["analysis"]["metrics"]}
        assert metrics["errorRate"]["verdict"] == "Fail" and metrics["errorRate"]["value"] > 0.05, metrics
        assert "aborted" in ro["message"]
        assert traffic.errors > 0  # clients did see the canary's 503s while it got 30%


def test_wrong_labels_fail_agreement_and_abort(cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path) -> None:
    strat = rh.strategy([{"mirror": 100}, {"pause": {"duration": "30s"}}],
                        analysis={"interval": "1s", "minSamples": 20, "minAgreement": 0.9})
    with rh.rollout_env(cluster, namespace, kubelet, tmp_path) as env:
        rh.script(env, [{"model": rh.STABLE_MODEL, "reply": {"text": "positive"}},
                        {"model": rh.CANARY_MODEL, "reply": {"text": "negative"}}])
        old = rh.start_stable(env, strat, label="positive")
        ro, traffic = abort_under_traffic(env, strat, old)
        metrics = {m["name"]: m for m in ro["analysis"]["metrics"]}
        assert metrics["agreement"]["verdict"] == "Fail" and metrics["agreement"]["value"] < 0.9, metrics
        # Mirrored answers are never returned: clients only ever saw stable's label.
        assert set(traffic.answers) == {"positive"}, traffic.answers
