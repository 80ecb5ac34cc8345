"""Issue 10 on real pods: the chart installed with helm, the operator pod under its
ServiceAccount holding its Lease, the webhook reached through its Service, native sidecars
injected into a 3-replica app whose real openai SDK reaches the emulator through localhost.

The cluster is :class:`NodeCluster` (real kubelet, containerd, runc, CNI bridge, in a network
namespace of the test run's own). Tests talk to pods through the apiserver (``kubectl exec``,
``logs``), as a platform engineer would.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make the harness importable

from node_harness import RELEASE_NS, Node, wait_for

pytestmark = pytest.mark.e2e

FULLNAME = "mr-modelroute"
SIDECAR = "modelroute-sidecar"
APP_NS = "shop"


def _json(node: Node, *args: str) -> Any:
    return json.loads(node.cluster.kubectl(*args, "-o", "json").stdout)


def _operator_pod(node: Node) -> dict[str, Any]:
    pods = _json(node, "get", "pods", "-n", RELEASE_NS, "-l", "app.kubernetes.io/name=modelroute")["items"]
    running = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(running) == 1, [p["metadata"]["name"] for p in pods]
    return dict(running[0])


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def test_operator_pod_runs_under_the_chart_serviceaccount_and_holds_its_lease(release: Node) -> None:
    pod = wait_for("the operator pod Ready", lambda: (p := _operator_pod(release)) and _ready(p) and p, timeout=120)
    assert pod["status"]["phase"] == "Running"
    assert pod["spec"]["serviceAccountName"] == FULLNAME
    leases = _json(release, "get", "leases", "-n", RELEASE_NS)["items"]
    holders = [lease["spec"].get("holderIdentity") or "" for lease in leases]
    assert any(pod["metadata"]["name"] in h for h in holders), holders
    # The webhook is registered against the Service (no url): the apiserver dials it through
    # the Service's endpoints (--enable-aggregator-routing; there is no kube-proxy).
    mwc = _json(release, "get", "mutatingwebhookconfiguration", FULLNAME)
    for hook in mwc["webhooks"]:
        assert hook["clientConfig"].get("service", {}).get("name") == f"{FULLNAME}-webhook", hook["clientConfig"]
        assert "url" not in hook["clientConfig"]
        assert hook["clientConfig"].get("caBundle")  # managed TLS: the operator wrote its CA


def _app_manifest(node: Node, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "chat-app", "namespace": APP_NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "chat"}},
            "template": {
                "metadata": {
                    "labels": {"app": "chat"},
                    "annotations": {"modelroute.dev/inject-env": "true", "modelroute.dev/credentials": "llm-keys"},
                },
                "spec": {
                    "containers": [{
                        "name": "app",
                        "image": node.app_image,
                        "imagePullPolicy": "Never",
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 2},
                    }],
                },
            },
        },
    }


def _route(node: Node, model: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelroute.dev/v1alpha1",
        "kind": "ModelRoute",
        "metadata": {"name": "chat", "namespace": APP_NS},
        "spec": {
            "route": "chat",
            "selector": {"matchLabels": {"app": "chat"}},
            "targets": [{
                "name": "primary",
                "provider": "openai",
                "model": model,
                "baseUrl": node.emulator_url + "/v1",
                "apiKey": {"secretKeyRef": {"name": "llm-keys", "key": "openai"}},
            }],
        },
    }


def _app_pods(node: Node) -> list[dict[str, Any]]:
    pods = _json(node, "get", "pods", "-n", APP_NS, "-l", "app=chat")["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def _ask(node: Node, pod: str, model: str = "chat") -> dict[str, Any]:
    """The app's own SDK call, triggered inside its container (kubectl exec: a kubelet feature)."""
    code = (
        "import urllib.request,sys; "
        f"sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:8080/ask?model={model}', timeout=40).read().decode())"
    )
    out = node.cluster.kubectl("exec", "-n", APP_NS, pod, "-c", "app", "--", "/opt/app/bin/python", "-c", code,
                               timeout=60)
    return dict(json.loads(out.stdout))


@pytest.fixture(scope="module")
def app(release: Node) -> Node:
    c = release.cluster
    c.kubectl("create", "namespace", APP_NS)
    c.kubectl("label", "namespace", APP_NS, "modelroute.dev/inject=enabled")
    c.kubectl("create", "secret", "generic", "llm-keys", "-n", APP_NS, "--from-literal=openai=sk-node-e2e-1")
    c.kubectl("apply", "-f", "-", input=json.dumps(_route(release, "gpt-4o-mini")))
    c.kubectl("apply", "-f", "-", input=json.dumps(_app_manifest(release, 3)))
    try:
        wait_for("3 app pods Ready", lambda: len([p for p in _app_pods(release) if _ready(p)]) == 3, timeout=240)
    finally:
        print(c.kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout)
        print(c.kubectl("get", "events", "-n", APP_NS, check=False).stdout[-4000:])
    return release


def test_every_replica_gets_the_native_sidecar_and_the_app_starts_after_it(app: Node) -> None:
    pods = _app_pods(app)
    assert len(pods) == 3
    for pod in pods:
        init = pod["spec"]["initContainers"]
        assert init[0]["name"] == SIDECAR and init[0]["restartPolicy"] == "Always"
        assert init[0]["image"] == app.image
        statuses = {s["name"]: s for s in pod["status"]["initContainerStatuses"]}
        assert statuses[SIDECAR]["ready"] and statuses[SIDECAR]["started"]
        # The app's first SDK call, made once at start with no retry, got an HTTP answer: the
        # sidecar was listening before the app container started (kubelet's native-sidecar order).
        log = app.cluster.kubectl("logs", "-n", APP_NS, pod["metadata"]["name"], "-c", "app").stdout
        start = next(json.loads(line) for line in log.splitlines() if '"event": "start"' in line)
        assert start["sidecar_answered"] is True, start
        assert start["base_url"].startswith("http://127.0.0.1:")


def test_the_apps_real_sdk_calls_reach_the_emulator_through_the_sidecar(app: Node) -> None:
    for pod in _app_pods(app):
        answer = wait_for(
            "the route served", lambda p=pod: (a := _ask(app, p["metadata"]["name"]))["ok"] and a, timeout=60
        )
        assert answer["content"].startswith("[openai:gpt-4o-mini]"), answer


def test_a_changed_modelroute_is_served_by_all_three_pods(app: Node) -> None:
    app.cluster.kubectl("apply", "-f", "-", input=json.dumps(_route(app, "gpt-4o")))
    for pod in _app_pods(app):
        name = pod["metadata"]["name"]
        wait_for(
            f"{name} serving the new model",
            lambda n=name: _ask(app, n).get("content", "").startswith("[openai:gpt-4o]"),
            timeout=60,
        )


def test_the_sidecar_runs_read_only_as_uid_10001(app: Node) -> None:
    name = _app_pods(app)[0]["metadata"]["name"]
    probe = (
        "import os; print(os.getuid(), os.getgid());\n"
        "try:\n open('/opt/modelroute/x', 'w')\nexcept OSError as e: print('readonly', e.errno)"
    )
    out = app.cluster.kubectl("exec", "-n", APP_NS, name, "-c", SIDECAR, "--", "python", "-c", probe).stdout.split()
    assert out[:2] == ["10001", "10001"], out
    assert out[2:4] == ["readonly", "30"], out  # EROFS
