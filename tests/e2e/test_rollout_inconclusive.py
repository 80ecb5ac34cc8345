"""Issue 5, e2e 3: too little traffic -> Inconclusive, then Paused; never promoted on no data."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer

from .operator_harness import wait_for
from .rollout_harness import (
    CANARY_MODEL,
    History,
    answer,
    canaries,
    change_model,
    reasons,
    rollout_env,
    start_stable,
    strategy,
)

pytestmark = pytest.mark.e2e


def test_too_little_traffic_pauses_instead_of_promoting(
    cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path,
) -> None:
    strat = strategy([{"mirror": 100}, {"pause": {"duration": "1s"}}, {"weight": 100}],
                     analysis={"interval": "1s", "minSamples": 20, "maxErrorRate": 0.05})
    with rollout_env(cluster, namespace, kubelet, tmp_path) as env:
        old = start_stable(env, strat)
        history = History(env)
        change_model(env, CANARY_MODEL, strat)
        new = history.until("the rollout", lambda r: r.get("canaryRevision") not in (None, old))["canaryRevision"]
        h = next(iter(env.pods.values()))
        wait_for("the sidecar to mirror", lambda: [c["mirror"] for c in canaries(h)] == [100], timeout=10)
        for _ in range(3):  # far below minSamples
            answer(h)
        ro = history.until("an Inconclusive pause", lambda r: any(
            p.get("reason") == "Inconclusive" for p in r.get("pauseConditions") or []), timeout=20)
        assert ro["phase"] == "Paused"
        assert ro["analysis"]["verdict"] == "Inconclusive"
        assert ro["currentStepIndex"] == 1 and ro["weights"]["mirror"] == 100 and ro["weights"]["canary"] == 0
        samples = {m["name"]: m for m in ro["analysis"]["metrics"]}
        assert any(m["verdict"] == "Inconclusive" for m in samples.values()), samples
        wait_for("the AnalysisInconclusive event", lambda: "AnalysisInconclusive" in reasons(env), timeout=10)
        # It waits for a person: nothing moves on its own while the operator looks again (every interval).
        seen = env.operator.reconciles()
        wait_for("three more looks at the paused rollout", lambda: env.operator.reconciles() >= seen + 3, timeout=30)
        ro = history.poll()
        assert ro["phase"] == "Paused" and ro["stableRevision"] == old and ro["canaryRevision"] == new
        assert ro["currentStepIndex"] == 1
        assert "Promoted" not in reasons(env) and "Aborted" not in reasons(env)
