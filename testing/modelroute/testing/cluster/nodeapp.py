"""The demo app on the one-node cluster, shared by ``make demo-cluster`` and the node e2e tests.

``Node`` holds the running :class:`NodeCluster`, the image references and the emulator's
URLs. The app (``examples/openai-app``) runs as Deployment ``chat-app`` in namespace
``shop`` behind ModelRoute ``chat``; callers reach its pods through the apiserver
(``kubectl exec``/``logs``) or from inside the cluster's network namespace (:func:`pod_get`),
never through any other network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from modelroute.api.lifecycledate import ENV_LIFECYCLE_DATE
from modelroute.testing import waiting
from modelroute.testing.cluster.binaries import repo_root
from modelroute.testing.cluster.netns import http_get
from modelroute.testing.cluster.node import NodeCluster
from modelroute.testing.cluster.nodeconfig import NODE_IP
from modelroute.testing.cluster.processes import spawn
from modelroute.testing.workers import Workers

T = TypeVar("T")
RELEASE = "mr"
RELEASE_NS = "modelroute-system"
FULLNAME = "mr-modelroute"
SIDECAR = "modelroute-sidecar"
APP_NS = "shop"
APP_PORT = 8080
EMULATOR_PORT = 18080
OPERATOR_SELECTOR = "app.kubernetes.io/name=modelroute,app.kubernetes.io/component=operator"
WEBHOOK_SELECTOR = "app.kubernetes.io/name=modelroute,app.kubernetes.io/component=webhook"


@dataclass
class Node:
    cluster: NodeCluster
    image: str  # the modelroute image reference
    app_image: str
    emulator_url: str  # from pods
    emulator_host_url: str  # from the tests

    def emulator_post(self, path: str, body: object) -> None:
        req = urllib.request.Request(self.emulator_host_url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            r.read()

    def emulator_get(self, path: str) -> Any:
        with urllib.request.urlopen(self.emulator_host_url + path, timeout=5) as r:
            return json.loads(r.read())


def app_image_of(cluster: NodeCluster) -> str:
    """The app image ``imagebuild.build_and_import`` imported into ``cluster`` (its ``images.env``)."""
    return dict(line.split("=", 1) for line in (cluster.node_dir / "images.env").read_text().split())["APP_IMAGE"]


def start_emulator(cluster: NodeCluster, log_path: Path) -> subprocess.Popen[bytes]:
    """The provider emulator on the node address: pods reach it at ``http://NODE_IP:EMULATOR_PORT``."""
    return spawn(["nsenter", f"--net={cluster.netns}", "--", sys.executable, "-m", "modelroute.testing.emulators",
                  "--host", NODE_IP, "--port", str(EMULATOR_PORT)], log_path=log_path, env=dict(os.environ))


def install_release(node: Node, secret_namespaces: Sequence[str] = (APP_NS,), *, upgrade: bool = False) -> None:
    """``helm install`` of the chart: defaults plus the locally built image (never pulled),
    Secret reads granted in ``secret_namespaces`` (created here first, as the chart needs)."""
    for ns in secret_namespaces:
        node.cluster.kubectl("create", "namespace", ns, check=not upgrade)
    repository, tag = node.image.rsplit(":", 1)
    verb = ["upgrade", "--install"] if upgrade else ["install"]
    node.cluster.helm(
        *verb, RELEASE, str(repo_root() / "charts" / "modelroute"), "-n", RELEASE_NS, "--create-namespace",
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}", "--set", "image.pullPolicy=Never",
        "--set", "rbac.secretReadNamespaces={" + ",".join(secret_namespaces) + "}", "--wait", "--timeout=240s",
        # The operator pod validates routes on the node: it takes the suite's pinned day (``lifecyclepin``).
        "--set-string", f"operator.lifecycleDate={os.environ.get(ENV_LIFECYCLE_DATE, '')}",
        timeout=300,
    )


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.5) -> T:
    """``waiting.wait_for`` with the slower defaults a real cluster needs."""
    return waiting.wait_for(what, fn, timeout, interval)


def kjson(node: Node, *args: str) -> Any:
    return json.loads(node.cluster.kubectl(*args, "-o", "json").stdout)


def operator_pod(node: Node) -> dict[str, Any]:
    pods = kjson(node, "get", "pods", "-n", RELEASE_NS, "-l", OPERATOR_SELECTOR)["items"]
    running = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(running) == 1, [p["metadata"]["name"] for p in pods]
    return dict(running[0])


def ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def app_manifest(node: Node, replicas: int) -> dict[str, Any]:
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
                        "ports": [{"containerPort": APP_PORT}],
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": APP_PORT}, "periodSeconds": 2},
                    }],
                },
            },
        },
    }


def route(node: Node, model: str, strategy: dict[str, Any] | None = None, fallback: str | None = None) -> dict[str, Any]:
    """ModelRoute ``chat`` for the app: ``model`` at the emulator, optionally a fallback target."""
    def target(name: str, target_model: str) -> dict[str, Any]:
        return {
            "name": name,
            "provider": "openai",
            "model": target_model,
            "baseUrl": node.emulator_url + "/v1",
            "apiKey": {"secretKeyRef": {"name": "llm-keys", "key": "openai"}},
        }

    targets = [target("primary", model)] + ([target("fallback", fallback)] if fallback else [])
    spec: dict[str, Any] = {"route": "chat", "selector": {"matchLabels": {"app": "chat"}}, "targets": targets}
    if strategy is not None:
        spec["strategy"] = strategy
    return {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute",
            "metadata": {"name": "chat", "namespace": APP_NS}, "spec": spec}


def app_pods(node: Node) -> list[dict[str, Any]]:
    pods = kjson(node, "get", "pods", "-n", APP_NS, "-l", "app=chat")["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def ask(node: Node, pod: str, model: str = "chat") -> dict[str, Any]:
    """The app's own SDK call, triggered inside its container (kubectl exec: a kubelet feature)."""
    code = (
        "import urllib.request,sys; "
        f"sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:{APP_PORT}/ask?model={model}', timeout=40).read().decode())"
    )
    out = node.cluster.kubectl("exec", "-n", APP_NS, pod, "-c", "app", "--", "/opt/app/bin/python", "-c", code,
                               timeout=60)
    return dict(json.loads(out.stdout))


def pod_get(node: Node, pod_ip: str, path: str, timeout: float = 30.0) -> dict[str, Any]:
    """``GET`` the app at its pod IP from inside the cluster's network namespace."""
    status, body = http_get(node.cluster.netns, pod_ip, APP_PORT, path, timeout=timeout)
    assert status == 200, (status, body[:300])
    return dict(json.loads(body))


def rollout(node: Node) -> dict[str, Any]:
    mr = kjson(node, "get", "modelroute", "chat", "-n", APP_NS)
    return dict((mr.get("status") or {}).get("rollout") or {})


def model_of(answer: dict[str, Any]) -> str | None:
    """``gpt-4o`` from an app answer ``{"ok": true, "content": "[openai:gpt-4o] ..."}``."""
    content = str(answer.get("content") or "")
    return content[len("[openai:"):].split("]", 1)[0] if answer.get("ok") and content.startswith("[openai:") else None


class Traffic(Workers[str]):
    """Requests through every app pod (its real SDK) from inside the namespace; counts by model."""

    join_timeout = 60.0

    def __init__(self, node: Node, pause: float = 0.05) -> None:
        self.node, self.pause = node, pause
        self.answers: dict[str, int] = {}
        self.errors: list[str] = []
        super().__init__(p["status"]["podIP"] for p in app_pods(node))

    def work(self, ip: str) -> None:
        while not self.stopping.is_set():
            try:
                answer = pod_get(self.node, ip, "/ask?model=chat")
                model = model_of(answer)
                with self.lock:
                    if model is None:
                        self.errors.append(str(answer)[:200])
                    else:
                        self.answers[model] = self.answers.get(model, 0) + 1
            except (OSError, AssertionError) as exc:
                with self.lock:
                    self.errors.append(repr(exc)[:200])
            self.stopping.wait(self.pause)
