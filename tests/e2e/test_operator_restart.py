"""Issue 3, e2e 5: the operator and the sidecars survive restarts; state lives in the cluster.

* Kill the operator (SIGKILL) and start a new one: it pushes nothing (the pods' config-hash
  annotations say what they serve) and the status stays right.
* Kill a sidecar and restart it: it comes back with its config (from the route bundle).
* Start a pod while the operator is down: it becomes ready with the right routes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer

from . import operator_harness as oh

pytestmark = pytest.mark.e2e
WEB = {"matchLabels": {"app": "web"}}
HASH = "modelroute.dev/config-hash"


def test_restarts_keep_routes_and_do_not_storm(
    cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path
) -> None:
    oh.install_crd(cluster)
    keys = oh.Keys(tmp_path / "keys")
    op = oh.OperatorProcess(cluster, namespace, keys, tmp_path)
    rest = cluster.rest()
    with oh.emulator(tmp_path) as emu:
        op.start()
        try:
            pods = {n: oh.start_sidecar_pod(kubelet, namespace, n, {"app": "web"}, keys) for n in ("web-1", "web-2")}
            oh.apply(cluster, namespace, oh.modelroute("support", emu, selector=WEB))

            def synced(n: int) -> dict[str, object] | None:
                mr = oh.get_route(cluster, namespace, "support")
                st = mr.get("status") or {}
                return mr if st.get("pods") == {"selected": n, "synced": n, "failed": 0} else None

            before = oh.wait_for("2 pods synced", lambda: synced(2), timeout=60)
            annotations = {n: rest.get(f"/api/v1/namespaces/{namespace}/pods/{n}")["metadata"]["annotations"][HASH]
                           for n in pods}
            assert set(annotations.values()) == {oh.served_version(pods["web-1"])}

            # 1. Kill the operator; the new one (after the Lease expires) pushes nothing.
            op.kill()
            op.start()
            oh.wait_for("the new operator reconciled", lambda: (op.metric("modelroute_operator_reconciles_total",
                                                                         'result="converged"') or 0) >= 1, timeout=30)
            assert (op.metric("modelroute_operator_pushes_total", 'outcome="ok"') or 0) == 0, op.logs()[-3000:]
            after = oh.get_route(cluster, namespace, "support")
            assert after["status"] == before["status"]  # unchanged, lastTransitionTime included

            # 2. Kill a sidecar and restart it: it serves its routes again (read from the bundle).
            kubelet.kill_process(pods["web-1"])
            oh.wait_for("web-1 reported not ready", lambda: not kubelet.pods[(namespace, "web-1")].ready, timeout=10)
            oh.start_sidecar_process(kubelet, pods["web-1"], keys)
            oh.wait_for("web-1 ready again", lambda: kubelet.pods[(namespace, "web-1")].ready, timeout=30)
            assert oh.served_routes(pods["web-1"]) == ["chat"]
            assert oh.served_version(pods["web-1"]) == annotations["web-1"]
            assert oh.chat(pods["web-1"]).startswith("[openai:gpt-4o-mini]")

            # 3. A pod started while the operator is down gets its routes from the bundle.
            op.stop()
            late = oh.start_sidecar_pod(kubelet, namespace, "web-3", {"app": "web"}, keys)
            other = oh.start_sidecar_pod(kubelet, namespace, "db-1", {"app": "db"}, keys)
            oh.wait_for("web-3 ready without the operator", lambda: kubelet.pods[(namespace, "web-3")].ready, timeout=30)
            oh.wait_for("db-1 ready without the operator", lambda: kubelet.pods[(namespace, "db-1")].ready, timeout=30)
            assert oh.chat(late).startswith("[openai:gpt-4o-mini]")
            assert oh.served_version(late) == annotations["web-1"]
            assert oh.route_missing(other)

            # The operator comes back, counts the new pod, and needs no push for it either.
            op.start()
            oh.wait_for("3 pods synced", lambda: synced(3), timeout=30)
            assert (op.metric("modelroute_operator_pushes_total", 'outcome="ok"') or 0) == 0, op.logs()[-3000:]
        finally:
            op.stop()
            print(op.logs()[-5000:])
