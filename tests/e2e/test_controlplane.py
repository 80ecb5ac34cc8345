"""Smoke tests of the local control plane and the kubelet player."""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelroute.testing.cluster.binaries import KUBERNETES_VERSION
from modelroute.testing.cluster.controlplane import CommandError, ControlPlane
from modelroute.testing.cluster.kubelet import NODE_NAME, KubeletPlayer

pytestmark = pytest.mark.e2e


def eventually(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout}s")


def get_pod(cluster: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    pod: dict[str, Any] = json.loads(
        cluster.kubectl("get", "pod", name, "-n", namespace, "-o", "json").stdout
    )
    return pod


def ready_condition(pod: dict[str, Any]) -> str:
    return str(next(c["status"] for c in pod["status"]["conditions"] if c["type"] == "Ready"))


def test_apiserver_is_ready_and_kubectl_works(cluster: ControlPlane) -> None:
    assert cluster.is_ready()
    assert cluster.server.startswith("https://127.0.0.1:")
    readyz = cluster.kubectl("get", "--raw", "/readyz?verbose").stdout
    assert "readyz check passed" in readyz
    names = cluster.kubectl("get", "ns", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/kube-system"} <= set(names)
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == KUBERNETES_VERSION
    # the kubeconfig works on its own, e.g. for the official client
    from kubernetes import client

    api = client.VersionApi(cluster.api_client())
    assert api.get_code().git_version == KUBERNETES_VERSION


def test_rbac_is_enforced(cluster: ControlPlane, namespace: str) -> None:
    assert cluster.kubectl("auth", "can-i", "list", "pods", "-n", namespace).stdout.strip() == "yes"
    denied = cluster.kubectl("auth", "can-i", "list", "pods", "-n", namespace, "--as=someone", check=False)
    assert denied.stdout.strip() == "no"
    forbidden = cluster.kubectl("get", "pods", "-n", namespace, "--as=someone", check=False)
    assert forbidden.returncode != 0
    assert "Forbidden" in forbidden.stderr
    # a real client certificate for a user without rights, then a RoleBinding grants them
    user_kubeconfig = cluster.kubeconfig_for_user("alice", groups=["developers"])
    with pytest.raises(CommandError, match="Forbidden"):
        cluster.kubectl("get", "pods", "-n", namespace, kubeconfig=user_kubeconfig)
    # (not the aggregated `view` ClusterRole: no controller-manager fills aggregated roles here)
    cluster.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", namespace)
    cluster.kubectl(
        "create", "rolebinding", "alice-reads", "--role=pod-reader", "--user=alice", "-n", namespace
    )
    eventually(
        lambda: (
            cluster.kubectl(
                "get", "pods", "-n", namespace, kubeconfig=user_kubeconfig, check=False
            ).returncode
            == 0
        ),
        what="RoleBinding takes effect",
    )


def test_service_account_token_kubeconfig(cluster: ControlPlane, namespace: str) -> None:
    cluster.kubectl("create", "serviceaccount", "robot", "-n", namespace)
    sa_kubeconfig = cluster.kubeconfig_for_service_account(namespace, "robot")
    whoami = json.loads(cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=sa_kubeconfig).stdout)
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:robot"
    denied = cluster.kubectl("get", "pods", kubeconfig=sa_kubeconfig, check=False)
    assert "Forbidden" in denied.stderr


def test_pod_status_is_played(cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer) -> None:
    handle = kubelet.create_pod(namespace, "web", labels={"app": "web"})
    pod = get_pod(cluster, namespace, "web")
    assert pod["spec"]["nodeName"] == NODE_NAME
    assert pod["spec"]["serviceAccountName"] == "default"
    assert pod["status"]["phase"] == "Pending"

    kubelet.set_running(handle, ready=True)
    pod = get_pod(cluster, namespace, "web")
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["podIP"] == handle.ip
    assert handle.ip.startswith("127.") and handle.ip != "127.0.0.1"
    assert pod["status"]["podIPs"] == [{"ip": handle.ip}]
    assert ready_condition(pod) == "True"
    assert pod["status"]["containerStatuses"][0]["ready"] is True
    listed = cluster.kubectl("get", "pods", "-n", namespace, "-l", "app=web", "-o", "wide").stdout
    assert "Running" in listed and handle.ip in listed

    kubelet.set_ready(handle, False)
    assert ready_condition(get_pod(cluster, namespace, "web")) == "False"

    second = kubelet.create_pod(namespace, "web-2")
    assert second.ip != handle.ip


HTTP_SERVER = [sys.executable, "-m", "http.server", "--bind"]


def test_processes_on_pod_ips_with_probes_volumes_and_deletion(
    cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer
) -> None:
    cluster.kubectl("create", "configmap", "routes", "-n", namespace, "--from-literal=bundle.json={}")
    volumes = [
        {"name": "routes", "configMap": {"name": "routes"}},
        {
            "name": "podinfo",
            "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]},
        },
    ]
    container = {
        "name": "server",
        "image": "python",
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
    }
    handles = [
        kubelet.create_pod(
            namespace,
            f"srv-{i}",
            labels={"app": "srv", "idx": str(i)},
            containers=[container],
            volumes=volumes,
        )
        for i in range(2)
    ]
    for h in handles:
        kubelet.set_running(h, ready=False)
        # the same port on two pods: each process binds its own pod IP
        kubelet.start_process(h, [*HTTP_SERVER, h.ip, "8080"], cwd=h.volume_path("routes"))
    for h in handles:
        name = h.name
        eventually(
            lambda: ready_condition(get_pod(cluster, namespace, name)) == "True",  # noqa: B023
            what=f"{name} becomes Ready through its probe",
        )
        with urllib.request.urlopen(f"http://{h.ip}:8080/bundle.json", timeout=5) as resp:
            assert resp.read() == b"{}"

    first = handles[0]
    labels_file = first.volume_path("podinfo") / "labels"
    assert labels_file.read_text() == 'app="srv"\nidx="0"\n'
    cluster.kubectl("label", "pod", first.name, "-n", namespace, "tier=gold")
    eventually(lambda: 'tier="gold"' in labels_file.read_text(), what="labels file follows the pod's labels")
    cluster.kubectl(
        "patch",
        "configmap",
        "routes",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"data": {"bundle.json": '{"v":2}'}}),
    )
    bundle = first.volume_path("routes") / "bundle.json"
    eventually(lambda: bundle.read_text() == '{"v":2}', what="ConfigMap volume follows the ConfigMap")

    # a crashed container makes the pod unready
    kubelet.kill_process(first)
    eventually(
        lambda: ready_condition(get_pod(cluster, namespace, first.name)) == "False",
        what="pod becomes unready when its process dies",
    )
    kubelet.restart_process(first)  # the container restarts with the same command
    eventually(
        lambda: ready_condition(get_pod(cluster, namespace, first.name)) == "True",
        what="pod ready again after its process restarts",
    )
    assert first.restarts == 1

    # graceful deletion: the apiserver waits for the kubelet, the player stops the process
    second = handles[1]
    proc = second.process
    assert proc is not None and proc.poll() is None
    cluster.kubectl("delete", "pod", second.name, "-n", namespace, "--wait=false")
    eventually(lambda: proc.poll() is not None, what="process stopped on pod deletion")
    eventually(
        lambda: cluster.kubectl("get", "pod", second.name, "-n", namespace, check=False).returncode != 0,
        what="pod object removed",
    )


def test_helm_runs_and_installs(cluster: ControlPlane, namespace: str, tmp_path: Path) -> None:
    version = cluster.helm("version", "--short").stdout
    assert version.startswith("v4.")
    chart = tmp_path / "smoke"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: smoke\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n"
        "data:\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
    )
    cluster.helm("install", "smoke", str(chart), "-n", namespace)
    data = json.loads(cluster.kubectl("get", "cm", "smoke-cm", "-n", namespace, "-o", "json").stdout)["data"]
    assert data["kube"] == KUBERNETES_VERSION


def test_up_is_idempotent(cluster: ControlPlane) -> None:
    before = cluster.status()
    assert cluster.up() == 0.0
    assert cluster.status() == before


WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.smoke.modelroute.dev
spec:
  group: smoke.modelroute.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              description: What the widget should be.
              properties:
                size: {type: integer, minimum: 1, description: How big.}
"""


def test_install_crds_waits_until_established(cluster: ControlPlane, namespace: str, tmp_path: Path) -> None:
    (tmp_path / "widget.yaml").write_text(WIDGET_CRD)
    assert cluster.install_crds(tmp_path) == ["widgets.smoke.modelroute.dev"]
    # the OpenAPI document that `kubectl explain` reads is published shortly after
    eventually(
        lambda: "How big." in cluster.kubectl("explain", "widget.spec.size", check=False).stdout,
        what="kubectl explain shows the CRD's field descriptions",
    )
    bad = cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        check=False,
        input='{"apiVersion": "smoke.modelroute.dev/v1", "kind": "Widget", "metadata": {"name": "w"},'
        ' "spec": {"size": 0}}',
    )
    assert bad.returncode != 0 and "spec.size" in bad.stderr
