"""Issue 5, e2e 5: sticky routing: one ``x-user-id`` gets one revision across requests and pods."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer

from . import rollout_harness as rh
from .operator_harness import APP_PORT, wait_for

pytestmark = pytest.mark.e2e


def test_one_user_one_revision_on_every_pod(cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path) -> None:
    strat = rh.strategy([{"weight": 50}, {"pause": {}}], sticky="x-user-id")
    with rh.rollout_env(cluster, namespace, kubelet, tmp_path) as env:
        old = rh.start_stable(env, strat)
        history = rh.History(env)
        rh.change_model(env, rh.CANARY_MODEL, strat)
        ro = history.until("weight 50, paused", lambda r: r.get("canaryRevision") not in (None, old)
                           and r.get("phase") == "Paused" and r["weights"]["canary"] == 50)
        pods = list(env.pods.values())
        wait_for("weight 50 with the sticky header on every sidecar", lambda: all(
            [(c["weight"], c.get("stickyHeader")) for c in rh.canaries(h)] == [(50, "x-user-id")] for h in pods), timeout=10)
        seen: dict[str, set[str]] = {}
        clients = [openai.OpenAI(base_url=f"http://{h.ip}:{APP_PORT}/v1", api_key="unused", max_retries=0, timeout=10) for h in pods]
        try:
            for i in range(30):
                user = f"user-{i}"
                for client in clients:  # every pod, several times
                    for _ in range(3):
                        reply = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}],
                                                               extra_headers={"x-user-id": user})
                        text = reply.choices[0].message.content or ""
                        seen.setdefault(user, set()).add(rh.CANARY_MODEL if rh.CANARY_MODEL in text else rh.STABLE_MODEL)
        finally:
            for client in clients:
                client.close()
        assert all(len(models) == 1 for models in seen.values()), {u: m for u, m in seen.items() if len(m) > 1}
        got = {next(iter(m)) for m in seen.values()}
        assert got == {rh.STABLE_MODEL, rh.CANARY_MODEL}, seen  # 30 users at 50%: both revisions answer someone
        assert history.poll()["canaryRevision"] == ro["canaryRevision"]
