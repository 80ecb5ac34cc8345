"""Issue 10 on real pods: a provider key Secret rotated through the kubelet's Secret volume
(the sidecar uses the new key without a restart; no log shows a key), and an app pod deleted
with requests in flight (none lost: the app finishes them, the native sidecar outlives it)."""

from __future__ import annotations

import functools
import threading
from typing import Any

import pytest

from modelroute.testing.emulators import key_fingerprint

from .node_harness import APP_NS, RELEASE_NS, SIDECAR, Node, app_pods, operator_pod, pod_get, wait_for

pytestmark = pytest.mark.e2e

KEYS = ("sk-node-e2e-1", "sk-node-e2e-2")


def _sidecar_restarts(pod: dict[str, Any]) -> int:
    return sum(s["restartCount"] for s in pod["status"]["initContainerStatuses"] if s["name"] == SIDECAR)


def _last_key(node: Node, pod_ip: str) -> str | None:
    """Send one call through the pod; the fingerprint of the key the emulator received."""
    answer = pod_get(node, pod_ip, "/ask?model=chat")
    if not answer.get("ok"):
        return None
    requests = node.emulator_get("/_emulator/requests")["requests"]
    return str(requests[-1]["headers"].get("authorization")) if requests else None


def test_a_rotated_key_secret_is_used_without_a_restart_and_never_logged(app: Node) -> None:
    before = {p["metadata"]["name"]: _sidecar_restarts(p) for p in app_pods(app)}
    secret = app.cluster.kubectl("create", "secret", "generic", "llm-keys", "-n", APP_NS,
                                 f"--from-literal=openai={KEYS[1]}", "--dry-run=client", "-o", "yaml").stdout
    app.cluster.kubectl("apply", "-f", "-", input=secret)
    new = key_fingerprint(KEYS[1])
    for pod in app_pods(app):
        ip = pod["status"]["podIP"]
        # The kubelet rewrites the mounted Secret (atomic symlink swap); the sidecar reloads it.
        wait_for(f"{pod['metadata']['name']} to call with the new key", functools.partial(lambda i: _last_key(app, i) == new, ip),
                 timeout=120, interval=1)
    after = {p["metadata"]["name"]: _sidecar_restarts(p) for p in app_pods(app)}
    assert after == before, (before, after)
    logs = [app.cluster.kubectl("logs", "-n", APP_NS, name, "-c", SIDECAR).stdout for name in after]
    logs.append(app.cluster.kubectl("logs", "-n", RELEASE_NS, operator_pod(app)["metadata"]["name"]).stdout)
    for text in logs:
        assert text  # something was logged, and no key in it
        assert not any(k in text for k in KEYS)


def test_an_app_pod_deleted_with_requests_in_flight_loses_none(app: Node) -> None:
    pod = app_pods(app)[0]
    name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
    app.emulator_post("/_emulator/faults", {"kind": "latency", "latency_ms": 4000})
    results: list[dict[str, Any] | BaseException] = []

    def call() -> None:
        try:
            results.append(pod_get(app, ip, "/ask?model=chat", timeout=60))
        except BaseException as exc:  # reported by the assertion below
            results.append(exc)

    seen = max((r["seq"] for r in app.emulator_get("/_emulator/requests")["requests"]), default=0)
    threads = [threading.Thread(target=call) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        wait_for("4 calls in flight at the provider", lambda: len([
            r for r in app.emulator_get("/_emulator/requests")["requests"] if r["seq"] > seen and r["status"] == 0
        ]) >= 4, timeout=30, interval=0.1)
        app.cluster.kubectl("delete", "pod", "-n", APP_NS, name, "--wait=false")
        for t in threads:
            t.join(timeout=90)
    finally:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(app.emulator_host_url + "/_emulator/faults", method="DELETE"),
                               timeout=5).read()
    assert len(results) == 4 and all(isinstance(r, dict) and r.get("ok") for r in results), results
    wait_for("the Deployment back at 3 Ready pods", lambda: len([
        p for p in app_pods(app) if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"]["conditions"])
    ]) == 3, timeout=120)
