"""Issue 5, e2e 4: the operator killed mid-rollout resumes at the same step with the same pause start.

The state lives in the cluster (``status.rollout``; the stable spec in the signed route
bundle), so a new operator process neither restarts the rollout nor the timed pause: the
pause ends at its original start + duration, and the sidecars keep serving the canary meanwhile.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer

from . import rollout_harness as rh
from .operator_harness import served_version, start_sidecar_process, wait_for

pytestmark = pytest.mark.e2e
PAUSE = 8


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_operator_restart_resumes_the_same_step(cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path) -> None:
    strat = rh.strategy([{"mirror": 100}, {"pause": {"duration": f"{PAUSE}s"}}, {"weight": 50}, {"pause": {}}])
    with rh.rollout_env(cluster, namespace, kubelet, tmp_path) as env:
        old = rh.start_stable(env, strat)
        history = rh.History(env)
        rh.change_model(env, rh.CANARY_MODEL, strat)
        ro = history.until("the timed pause", lambda r: r.get("currentStepIndex") == 1 and r.get("pauseConditions"))
        new = ro["canaryRevision"]
        pause_start = ro["pauseConditions"][0]["startTime"]
        assert ro["stableRevision"] == old

        env.operator.kill()  # SIGKILL: no clean shutdown, the Lease has to expire
        # A sidecar restarted while the operator is down reads the bundle: same config, canary included.
        web1, web2 = env.pods["web-1"], env.pods["web-2"]
        kept = served_version(web2)
        env.kubelet.kill_process(web1)
        start_sidecar_process(env.kubelet, web1, env.keys)
        wait_for("web-1 to serve from the bundle", lambda: served_version(web1) == kept, timeout=15)
        assert [(c["revision"], c["mirror"]) for c in rh.canaries(web1)] == [(new, 100)]
        env.operator.start()
        restarted = time.time()

        # Same step, same pause start, same canary on every sidecar.
        ro = history.poll()
        assert ro["currentStepIndex"] == 1 and ro["canaryRevision"] == new
        assert ro["pauseConditions"][0]["startTime"] == pause_start
        for h in env.pods.values():
            assert [(c["revision"], c["mirror"]) for c in rh.canaries(h)] == [(new, 100)]

        ro = history.until("the next step", lambda r: (r.get("currentStepIndex") or 0) >= 3, timeout=30)
        # The pause ended at its original start + duration, not PAUSE seconds after the restart.
        ended = _time(ro["stepStartTime"])
        assert ended - _time(pause_start) < timedelta(seconds=PAUSE + 3), (pause_start, ro["stepStartTime"])
        assert ended.timestamp() < restarted + PAUSE, "the pause restarted with the operator"
        assert ro["canaryRevision"] == new and ro["weights"]["canary"] == 50
        assert rh.reasons(env).count("RolloutStarted") == 1
        wait_for("weight 50 on every sidecar", lambda: all(
            [c["weight"] for c in rh.canaries(h)] == [50] for h in env.pods.values()), timeout=10)
