"""Issue 5, e2e 1: a healthy new revision goes mirror -> weights -> promotion.

Real apiserver, operator, two sidecar processes, the emulator, traffic through the openai SDK.
Status and Events show every step; afterwards the stable revision is the new one and the
sidecars serve it without a canary. The bundle in the cluster then holds the new spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer

from . import rollout_harness as rh
from .operator_harness import wait_for

pytestmark = pytest.mark.e2e

STEPS: list[dict[str, Any]] = [{"mirror": 100}, {"pause": {"duration": "2s"}}, {"weight": 50}, {"pause": {"duration": "2s"}}]
ANALYSIS = {"interval": "1s", "minSamples": 20, "maxErrorRate": 0.05}


def test_healthy_revision_is_mirrored_weighted_and_promoted(
    cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path,
) -> None:
    strat = rh.strategy(STEPS, analysis=ANALYSIS)
    with rh.rollout_env(cluster, namespace, kubelet, tmp_path) as env:
        old = rh.start_stable(env, strat)
        pods = list(env.pods.values())
        assert all(rh.canaries(h) == [] for h in pods)
        history = rh.History(env)
        with rh.Traffic(pods) as traffic:
            rh.change_model(env, rh.CANARY_MODEL, strat)
            ro = history.until("a rollout of the new revision", lambda r: r.get("canaryRevision") not in (None, old))
            new = ro["canaryRevision"]
            assert ro["stableRevision"] == old
            # Mirror first: every sidecar serves the canary at weight 0, mirror 100.
            history.until("mirror 100", lambda r: (r.get("weights") or {}).get("mirror") == 100)
            wait_for("every sidecar to mirror the canary", lambda: all(
                [(c["revision"], c["weight"], c["mirror"]) for c in rh.canaries(h)] == [(new, 0, 100)] for h in pods), timeout=10)
            history.until("weight 50", lambda r: (r.get("weights") or {}).get("canary") == 50)
            wait_for("canary answers", lambda: traffic.answers.get(rh.CANARY_MODEL, 0) >= 5, timeout=15)
            done = history.until("promotion", lambda r: r.get("phase") == "Healthy" and r.get("stableRevision") == new, timeout=40)
        assert done.get("canaryRevision") is None
        assert (done.get("analysis") or {}).get("verdict") == "Pass"
        # Status walked the steps in order: mirror (step 0), pause (1), weight 50 (2, acked within ms), pause (3), promotion.
        steps = [s for _, s, _ in history.seen if s is not None]
        assert steps == sorted(steps) and {0, 1, 3} <= set(steps), history.seen
        assert ("Paused", 1, (100, 0, 100)) in history.seen and ("Paused", 3, (50, 50, 0)) in history.seen, history.seen
        weights = [w for _, _, w in history.seen]
        assert (100, 0, 100) in weights and (50, 50, 0) in weights, history.seen
        assert traffic.errors == 0
        assert traffic.answers.get(rh.STABLE_MODEL, 0) > 0 and traffic.answers.get(rh.CANARY_MODEL, 0) > 0
        # Events for the start, every step and the promotion.
        wait_for("events", lambda: "Promoted" in rh.reasons(env), timeout=10)
        rs = rh.reasons(env)
        assert rs.count("RolloutStarted") == 1 and rs.count("StepStarted") >= 4 and "Promoted" in rs, rs
        # Afterwards: the new revision serves all traffic, no canary anywhere.
        rh.wait_each(env, "without canary", rh.without_canary, timeout=10)
        for h in env.pods.values():
            assert rh.CANARY_MODEL in rh.answer(h)
