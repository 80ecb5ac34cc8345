"""Issue 5, e2e 3: too little traffic -> Inconclusive, then Paused; never promoted on no data."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer

from . import rollout_harness as rh
from .operator_harness import wait_for

pytestmark = pytest.mark.e2e


def test_too_little_traffic_pauses_instead_of_promoting(
    cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path,
) -> None:
    strat = rh.strategy([{"mirror": 100}, {"pause": {"duration": "1s"}}, {"weight": 100}],
                        analysis={"interval": "1s", "minSamples": 20, "maxErrorRate": 0.05})
    with rh.rollout_env(cluster, namespace, kubelet, tmp_path) as env:
        old = rh.start_stable(env, strat)
        history = rh.History(env)
        rh.change_model(env, rh.CANARY_MODEL, strat)
        new = history.until("the rollout", lambda r: r.get("canaryRevision") not in (None, old))["canaryRevision"]
        h = next(iter(env.pods.values()))
        wait_for("the sidecar to mirror", lambda: [c["mirror"] for c in rh.canaries(h)] == [100], timeout=10)
        for _ in range(3):  # far below minSamples
            rh.answer(h)
        ro = history.until("an Inconclusive pause", lambda r: any(
            p.get("reason") == "Inconclusive" for p in r.get("pauseConditions") or []), timeout=20)
        assert ro["phase"] == "Paused"
        assert ro["analysis"]["verdict"] == "Inconclusive"
        assert ro["currentStepIndex"] == 1 and ro["weights"]["mirror"] == 100 and ro["weights"]["canary"] == 0
        samples = {m["name"]: m for m in ro["analysis"]["metrics"]}
        assert any(m["verdict"] == "Inconclusive" for m in samples.values()), samples
        wait_for("the AnalysisInconclusive event", lambda: "AnalysisInconclusive" in rh.reasons(env), timeout=10)
        # It waits for a person: nothing moves on its own while the operator looks again (every interval).
        seen = env.operator.reconciles()
        wait_for("three more looks at the paused rollout", lambda: env.operator.reconciles() >= seen + 3, timeout=30)
        ro = history.poll()
        assert ro["phase"] == "Paused" and ro["stableRevision"] == old and ro["canaryRevision"] == new
        assert ro["currentStepIndex"] == 1
        assert "Promoted" not in rh.reasons(env) and "Aborted" not in rh.reasons(env)
