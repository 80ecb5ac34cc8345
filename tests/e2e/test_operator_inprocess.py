"""The operator's async entry (``modelroute.operator.app.serve``) embedded in a test process.

It runs in its own thread and event loop (kopf cancels every task it did not start when it
stops, so it must not share the test's loop), reconciles, and releases its Lease on stop.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from modelroute.operator.app import Options, Running, serve
from modelroute.testing.cluster.controlplane import ControlPlane

from .operator_harness import Keys, apply, get_route, install_crd, must_condition, wait_for

pytestmark = pytest.mark.e2e


def test_serve_in_process_reconciles_and_releases_the_lease(cluster: ControlPlane, namespace: str, tmp_path: Path) -> None:
    install_crd(cluster)
    keys = Keys(tmp_path / "keys")
    options = Options(signing_key_file=keys.private, namespaces=[namespace], kubeconfig=str(cluster.kubeconfig),
                      metrics_host="127.0.0.1", metrics_port=0, lease_namespace=namespace, lease_duration=3)
    running = Running()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(loop.run_until_complete(serve(options, stop_flag=stop, running=running))))
    thread.start()
    try:
        wait_for("leader", running.leader.is_set, timeout=20)
        assert running.metrics_port
        apply(cluster, namespace, {
            "apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "lonely"},
            "spec": {"route": "chat", "selector": {"matchLabels": {"app": "nobody"}},
                     "targets": [{"name": "a", "provider": "openai", "model": "gpt-4o-mini", "apiKey": {"env": "K"}}]},
        })
        mr = wait_for("Pending status", lambda: (r := get_route(cluster, namespace, "lonely")).get("status") and r, timeout=20)
        assert mr["status"]["phase"] == "Pending"
        assert "matches no pod labelled modelroute.dev/sidecar=true" in must_condition(mr, "Ready")["message"]
        # The bundle ConfigMap holds the accepted route.
        cm = cluster.rest().get(f"/api/v1/namespaces/{namespace}/configmaps/modelroute-routes")
        assert '"lonely"' in cm["data"]["bundle.json"] and cm["data"]["bundle.sig"].startswith("ed25519=")
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
    assert result == [0]
    lease = cluster.rest().get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/modelroute-operator")
    assert not lease["spec"].get("holderIdentity")  # released on a clean stop
    loop.close()
