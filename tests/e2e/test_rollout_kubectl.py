"""Issue 5, e2e 7: ``kubectl modelroute promote NAME`` moves a paused rollout on.

Runs the real ``kubectl-modelroute`` console script with the test kubeconfig; it writes the
``modelroute.dev/action`` annotation, the operator applies it once and records it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer

from . import rollout_harness as rh
from .operator_harness import wait_for

pytestmark = pytest.mark.e2e
PLUGIN = Path(sys.executable).parent / "kubectl-modelroute"


def plugin(cluster: ControlPlane, namespace: str, *args: str) -> str:
    out = subprocess.run([str(PLUGIN), "--kubeconfig", str(cluster.kubeconfig), "-n", namespace, *args],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_kubectl_promote_moves_a_paused_rollout_on(cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path) -> None:
    strat = rh.strategy([{"weight": 20}, {"pause": {}}, {"weight": 60}, {"pause": {}}])
    with rh.rollout_env(cluster, namespace, kubelet, tmp_path) as env:
        old = rh.start_stable(env, strat)
        history = rh.History(env)
        rh.change_model(env, rh.CANARY_MODEL, strat)
        ro = history.until("the pause until promoted", lambda r: r.get("currentStepIndex") == 1 and r.get("phase") == "Paused")
        new = ro["canaryRevision"]
        # No event to wait on: a pause without duration or analysis is not looked at again on its own.
        time.sleep(1.5)
        assert history.poll()["currentStepIndex"] == 1  # a pause without duration waits for a person

        plugin(cluster, env.ns, "promote", rh.NAME)
        ro = history.until("the next pause", lambda r: r.get("currentStepIndex") == 3 and r.get("phase") == "Paused")
        assert ro["weights"]["canary"] == 60 and ro["stableRevision"] == old
        assert (ro.get("lastAction") or "").startswith("promote:")
        wait_for("weight 60 on every sidecar", lambda: all(
            [c["weight"] for c in rh.canaries(h)] == [60] for h in env.pods.values()), timeout=10)
        assert "StepPromoted" in rh.reasons(env)
        view = plugin(cluster, env.ns, "get", rh.NAME)
        assert new in view

        plugin(cluster, env.ns, "promote", rh.NAME)
        ro = history.until("promotion", lambda r: r.get("phase") == "Healthy" and r.get("stableRevision") == new)
        rh.wait_each(env, "without canary", rh.without_canary, timeout=10)
        for h in env.pods.values():
            assert rh.CANARY_MODEL in rh.answer(h)
