"""Issue 4, e2e 1-4: the Helm chart on a real kube-apiserver, the operator under the chart's RBAC,
sidecar injection through the registered webhook, and an injected pod served end to end.

* The chart is rendered and applied with ``--dry-run=server``, then installed with helm.
* The operator and the webhook run as local processes with their Deployments' own arguments,
  each authenticated with a bound token of its own ServiceAccount of the chart (TokenRequest):
  each holds only its RBAC, and any 403 in their logs fails the test. (A bound token is
  stricter than impersonation: the request really comes from the ServiceAccount.)
* Services do not route here (no kube-proxy, no endpoints), so the test points the chart's
  MutatingWebhookConfiguration at the webhook's loopback listener (``clientConfig.url``) and
  keeps everything else of it, including the caBundle the webhook wrote.
* The kubelet player creates pods through the API; for the injected pod the test plays the
  native sidecar: it runs the injected ``modelroute sidecar`` command, mapping the injected
  mounts to local directories and the pod network to the pod's loopback address.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelroute.api import signing
from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer, PodHandle
from modelroute.testing.cluster.processes import spawn, stop_pid

from .operator_harness import Emulator, emulator, free_port, wait_for

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelroute"
RELEASE = "mr"
FULLNAME = "mr-modelroute"
MWC = f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{FULLNAME}"
SIDECAR = "modelroute-sidecar"


@dataclass
class Install:
    cluster: ControlPlane
    ns: str  # release namespace
    apps: str  # annotated pods
    served: str  # the injected pod that is played to running
    enabled: str  # labelled modelroute.dev/inject=enabled
    operator: subprocess.Popen[bytes]
    log: Path
    metrics_port: int
    webhook: subprocess.Popen[bytes]
    webhook_log: Path
    webhook_metrics_port: int
    webhook_port: int
    public_pem: str

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def webhook_logs(self) -> str:
        return self.webhook_log.read_text(errors="replace")


def _suffix() -> str:
    return uuid.uuid4().hex[:6]


def _set_args(*namespaces: str) -> list[str]:
    return ["--set", "rbac.secretReadNamespaces={" + ",".join(namespaces) + "}"]


def test_rendered_chart_applies_with_server_dry_run(cluster: ControlPlane) -> None:
    ns = f"mr-dry-{_suffix()}"
    cluster.create_namespace(ns)
    rendered = cluster.helm(
        "template", RELEASE, str(CHART), "-n", ns, "--include-crds", *_set_args(ns)
    ).stdout
    out = cluster.kubectl("apply", "--dry-run=server", "-n", ns, "-f", "-", input=rendered).stdout
    kinds = {line.split("/", 1)[0] for line in out.splitlines() if "/" in line}
    assert {
        "customresourcedefinition.apiextensions.k8s.io",
        "serviceaccount",
        "secret",
        "clusterrole.rbac.authorization.k8s.io",
        "clusterrolebinding.rbac.authorization.k8s.io",
        "role.rbac.authorization.k8s.io",
        "rolebinding.rbac.authorization.k8s.io",
        "service",
        "deployment.apps",
        "mutatingwebhookconfiguration.admissionregistration.k8s.io",
    } <= kinds, out
    assert "(server dry run)" in out


def _deployment_args(cluster: ControlPlane, ns: str, name: str) -> tuple[list[str], list[dict[str, Any]]]:
    manifest = cluster.helm("get", "manifest", RELEASE, "-n", ns).stdout
    dep = next(d for d in yaml.safe_load_all(manifest) if d and d["kind"] == "Deployment" and d["metadata"]["name"] == name)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    return list(container["args"]), list(container.get("env") or [])


def _local_argv(
    args: list[str], key_file: Path, kubeconfig: Path, metrics: int, webhook: int, *extra: str
) -> list[str]:
    """A Deployment's command line, with in-pod paths and listeners mapped to this machine."""
    out = [sys.executable, "-m", "modelroute.cli"]
    for arg in args:
        if arg.startswith("--signing-key="):
            arg = f"--signing-key={key_file}"
        elif arg.startswith("--metrics-listen="):
            arg = f"--metrics-listen=127.0.0.1:{metrics}"
        elif arg.startswith("--webhook-listen="):
            arg = f"--webhook-listen=127.0.0.1:{webhook}"
        out.append(arg)
    # What a pod gets implicitly: its service account credentials.
    return [*out, f"--kubeconfig={kubeconfig}", *extra]


def _point_webhooks_at(cluster: ControlPlane, port: int) -> dict[str, Any]:
    """Replace the Service reference of each webhook with a loopback URL (same path, same caBundle)."""
    rest = cluster.rest()
    config = rest.get(MWC)
    for hook in config["webhooks"]:
        client = hook["clientConfig"]
        path = client.pop("service")["path"]
        client["url"] = f"https://127.0.0.1:{port}{path}"
    return dict(rest.request("PUT", MWC, config))


@pytest.fixture(scope="module")
def installed(cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    tmp = tmp_path_factory.mktemp("chart")
    s = _suffix()
    ns, apps, served, enabled = f"mr-system-{s}", f"mr-apps-{s}", f"mr-served-{s}", f"mr-enabled-{s}"
    cluster.create_namespace(ns)
    cluster.create_namespace(apps)
    cluster.create_namespace(served)
    cluster.create_namespace(enabled, labels={"modelroute.dev/inject": "enabled"})
    cluster.helm("install", RELEASE, str(CHART), "-n", ns, *_set_args(served))

    args, env = _deployment_args(cluster, ns, f"{FULLNAME}-operator")
    webhook_args, webhook_env = _deployment_args(cluster, ns, f"{FULLNAME}-webhook")
    for e in (env, webhook_env):
        assert {
            "name": "MODELROUTE_OPERATOR_NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        } in [{k: v for k, v in x.items() if k in ("name", "valueFrom")} for x in e]
    secret = cluster.rest().get(f"/api/v1/namespaces/{ns}/secrets/{FULLNAME}-signing-key")
    key_pem = base64.b64decode(secret["data"]["signing-key.pem"])
    key_file = tmp / "signing-key.pem"
    key_file.write_bytes(key_pem)
    key_file.chmod(0o600)
    kubeconfig = cluster.kubeconfig_for_service_account(ns, FULLNAME)
    webhook_kubeconfig = cluster.kubeconfig_for_service_account(ns, f"{FULLNAME}-webhook")

    metrics, webhook_metrics, webhook = free_port(), free_port(), free_port()
    log, webhook_log = tmp / "operator.log", tmp / "webhook.log"
    own_ns = {**os.environ, "MODELROUTE_OPERATOR_NAMESPACE": ns}
    # A short Lease so a rerun takes over quickly; the loopback name the apiserver dials the webhook at.
    proc = spawn(_local_argv(args, key_file, kubeconfig, metrics, 0, "--lease-duration=5"),
                 log_path=log, env=own_ns, tie_to_parent=True)
    webhook_proc = spawn(_local_argv(webhook_args, key_file, webhook_kubeconfig, webhook_metrics, webhook,
                                     "--webhook-host=127.0.0.1"),
                         log_path=webhook_log, env=own_ns, tie_to_parent=True)
    install = Install(
        cluster,
        ns,
        apps,
        served,
        enabled,
        proc,
        log,
        metrics,
        webhook_proc,
        webhook_log,
        webhook_metrics,
        webhook,
        signing.public_key_pem(key_pem).decode(),
    )
    try:
        wait_for(
            "the operator to hold its Lease",
            lambda: _metric(metrics, "modelroute_operator_leader") == 1.0 or _exited(proc, log),
            timeout=60,
        )
        assert proc.poll() is None, install.logs()
        wait_for(
            "caBundle on both webhooks",
            lambda: all(h["clientConfig"].get("caBundle") for h in cluster.rest().get(MWC)["webhooks"])
            or _exited(webhook_proc, webhook_log),
            timeout=30,
        )
        _point_webhooks_at(cluster, webhook)
        yield install
    finally:
        for p in (proc, webhook_proc):
            if p.poll() is None:
                stop_pid(p.pid, timeout=15)
        print(install.logs()[-6000:])
        print(install.webhook_logs()[-3000:])
        cluster.helm("uninstall", RELEASE, "-n", ns, check=False)


def _exited(proc: subprocess.Popen[bytes], log: Path) -> bool:
    if proc.poll() is not None:
        raise AssertionError(
            f"{log.stem} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}"
        )
    return False


def _metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    m = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else None


def _pod(cluster: ControlPlane, ns: str, name: str) -> dict[str, Any]:
    return dict(cluster.rest().get(f"/api/v1/namespaces/{ns}/pods/{name}"))


def _sidecars(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod["spec"]
    return [c for c in (spec.get("initContainers") or []) + spec["containers"] if c["name"] == SIDECAR]


def test_webhook_installs_its_tls_under_its_own_rbac(installed: Install) -> None:
    rest = installed.cluster.rest()
    tls = rest.get(f"/api/v1/namespaces/{installed.ns}/secrets/{FULLNAME}-webhook-tls")
    assert set(tls["data"]) == {"ca.crt", "ca.key", "tls.crt", "tls.key"}
    for hook in rest.get(MWC)["webhooks"]:
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == base64.b64decode(tls["data"]["ca.crt"])
    lease = rest.get(f"/apis/coordination.k8s.io/v1/namespaces/{installed.ns}/leases/{FULLNAME}-leader")
    assert lease["spec"]["holderIdentity"]
    # The ServiceAccount really is limited: no cluster-wide Secret read, no Secret read in apps.
    operator, webhook = (f"system:serviceaccount:{installed.ns}:{name}" for name in (FULLNAME, f"{FULLNAME}-webhook"))

    def can(*a: str, who: str = operator) -> str:
        return installed.cluster.kubectl("auth", "can-i", *a, f"--as={who}", check=False).stdout.strip()

    assert can("get", "secrets", "--all-namespaces") == "no"
    assert can("get", "secrets", "-n", installed.apps) == "no"
    assert can("get", "secrets", "-n", installed.served) == "yes"
    assert can("list", "pods", "--all-namespaces") == "yes"
    assert can("delete", "pods", "-n", installed.apps) == "no"
    assert can("get", f"secrets/{FULLNAME}-webhook-tls", "-n", installed.ns) == "no"  # the webhook's, not the operator's
    assert can("patch", f"mutatingwebhookconfigurations/{FULLNAME}") == "no"
    # The webhook's ServiceAccount may keep its TLS Secret and caBundle, and nothing else.
    assert can("get", f"secrets/{FULLNAME}-webhook-tls", "-n", installed.ns, who=webhook) == "yes"
    assert can("patch", f"mutatingwebhookconfigurations/{FULLNAME}", who=webhook) == "yes"
    assert can("get", f"secrets/{FULLNAME}-signing-key", "-n", installed.ns, who=webhook) == "no"
    assert can("list", "pods", "--all-namespaces", who=webhook) == "no"
    assert can("get", "configmaps", "-n", installed.apps, who=webhook) == "no"


def test_annotated_pod_is_injected_once_and_plain_pods_are_untouched(
    installed: Install, kubelet: KubeletPlayer
) -> None:
    c = installed.cluster
    kubelet.create_pod(installed.apps, "annotated", annotations={"modelroute.dev/inject": "true"})
    pod = _pod(c, installed.apps, "annotated")
    (sidecar,) = _sidecars(pod)
    assert pod["spec"]["initContainers"][0]["name"] == SIDECAR and sidecar["restartPolicy"] == "Always"
    assert pod["metadata"]["labels"]["modelroute.dev/sidecar"] == "true"
    assert pod["metadata"]["annotations"]["modelroute.dev/admin-port"] == "8788"
    assert pod["metadata"]["annotations"]["modelroute.dev/operator-public-key"] == installed.public_pem
    assert sidecar["image"] == "ghcr.io/modelroute/modelroute:0.1.0"
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    # the apiserver's ServiceAccount plugin mounted a token into the app container, not into the sidecar
    assert not any(
        m["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"
        and m["name"] != "modelroute-no-sa-token"
        for m in sidecar["volumeMounts"]
    )

    # Creating the injected pod again (as `kubectl get -o yaml | kubectl create` would) adds nothing.
    again = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "annotated-again",
            "namespace": installed.apps,
            "labels": pod["metadata"]["labels"],
            "annotations": pod["metadata"]["annotations"],
        },
        "spec": pod["spec"],
    }
    kubelet.create_pod(installed.apps, "annotated-again", manifest=again)
    twice = _pod(c, installed.apps, "annotated-again")
    assert len(_sidecars(twice)) == 1
    assert [v["name"] for v in twice["spec"]["volumes"]] == [v["name"] for v in pod["spec"]["volumes"]]

    kubelet.create_pod(installed.apps, "plain", labels={"app": "plain"})
    plain = _pod(c, installed.apps, "plain")
    assert not _sidecars(plain) and "initContainers" not in plain["spec"]
    assert "modelroute.dev/sidecar" not in plain["metadata"].get("labels", {})
    assert not any(k.startswith("modelroute.dev/") for k in plain["metadata"].get("annotations") or {})


def test_labelled_namespace_injects_unless_the_pod_opts_out(
    installed: Install, kubelet: KubeletPlayer
) -> None:
    kubelet.create_pod(installed.enabled, "member")
    assert len(_sidecars(_pod(installed.cluster, installed.enabled, "member"))) == 1
    kubelet.create_pod(installed.enabled, "opted-out", annotations={"modelroute.dev/inject": "false"})
    assert not _sidecars(_pod(installed.cluster, installed.enabled, "opted-out"))


# -- e2e 4: an injected pod, played through to running -----------------------------------------


def _mounts_to_local(
    pod: dict[str, Any], sidecar: dict[str, Any], handle: PodHandle, local: Path
) -> dict[str, Path]:
    """mountPath -> local directory standing in for that volume (kubelet player or test-written)."""
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    out: dict[str, Path] = {}
    for m in sidecar["volumeMounts"]:
        vol = volumes[m["name"]]
        played = "configMap" in vol or "downwardAPI" in vol
        out[m["mountPath"]] = (
            handle.volume_path(m["name"]) if played else local / "root" / m["mountPath"].lstrip("/")
        )
    return out


def _play_secret_volumes(
    cluster: ControlPlane, pod: dict[str, Any], mounts: dict[str, Path], sidecar: dict[str, Any]
) -> None:
    """What the kubelet does for a Secret volume (the player has no Secret support)."""
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    for m in sidecar["volumeMounts"]:
        source = volumes[m["name"]].get("secret")
        if source:
            secret = cluster.rest().get(
                f"/api/v1/namespaces/{pod['metadata']['namespace']}/secrets/{source['secretName']}"
            )
            target = mounts[m["mountPath"]]
            target.mkdir(parents=True, exist_ok=True)
            for key, value in secret["data"].items():
                (target / key).write_bytes(base64.b64decode(value))


def _local(value: str, mounts: dict[str, Path], local: Path) -> str:
    """An in-container path as a local path: player-managed volumes, else under ``local/root``."""
    for mount_path in sorted(mounts, key=len, reverse=True):
        if value == mount_path or value.startswith(mount_path + "/"):
            return str(mounts[mount_path]) + value[len(mount_path) :]
    return str(local / "root" / value.lstrip("/")) if value.startswith("/") else value


def _play_sidecar(
    cluster: ControlPlane, kubelet: KubeletPlayer, handle: PodHandle, local: Path
) -> dict[str, Any]:
    pod = _pod(cluster, handle.namespace, handle.name)
    (sidecar,) = _sidecars(pod)
    mounts = _mounts_to_local(pod, sidecar, handle, local)
    _play_secret_volumes(cluster, pod, mounts, sidecar)
    # The downward-API item of the operator's public key (the player writes only whole-map items).
    key_file = local / "operator-public-key"
    key_file.write_text(pod["metadata"]["annotations"]["modelroute.dev/operator-public-key"])
    argv = [sys.executable, "-m", "modelroute.cli"]
    for arg in sidecar["args"]:
        if arg.startswith("0.0.0.0:"):
            arg = f"{handle.ip}:{arg.split(':', 1)[1]}"  # the pod's only interface besides loopback
        elif arg.endswith("/operator-public-key"):
            arg = str(key_file)
        else:
            arg = _local(arg, mounts, local)
        argv.append(arg)
    env: dict[str, str] = {}
    for e in sidecar["env"]:
        if "value" in e:
            env[e["name"]] = _local(e["value"], mounts, local)
        else:
            field = e["valueFrom"]["fieldRef"]["fieldPath"]
            env[e["name"]] = {"metadata.name": handle.name, "metadata.namespace": handle.namespace,
                               "metadata.uid": handle.uid}[field]
    kubelet.start_process(handle, argv, env=env)
    kubelet.set_running(handle, ready=False)
    return sidecar


def _probe(handle: PodHandle, probe: dict[str, Any]) -> bool:
    get = probe["httpGet"]
    try:
        with urllib.request.urlopen(f"http://{handle.ip}:{get['port']}{get['path']}", timeout=2) as r:
            return 200 <= int(r.status) < 400
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    with emulator(tmp_path) as e:
        yield e


def test_injected_pod_becomes_ready_and_serves_an_unmodified_openai_client(
    installed: Install,
    kubelet: KubeletPlayer,
    emu: Emulator,
    tmp_path: Path,
) -> None:
    c, ns = installed.cluster, installed.served
    c.kubectl("create", "secret", "generic", "llm-keys", "-n", ns, "--from-literal=openai=sk-e2e-from-secret")
    port = free_port()  # the inbound port is per pod on loopback; pods here share the host's loopback
    handle = kubelet.create_pod(
        ns,
        "app",
        labels={"app": "chat"},
        annotations={
            "modelroute.dev/inject": "true",
            "modelroute.dev/inject-env": "true",
            "modelroute.dev/credentials": "llm-keys",
            "modelroute.dev/port": str(port),
        },
    )
    sidecar = _play_sidecar(c, kubelet, handle, tmp_path)
    try:
        wait_for(
            "the sidecar to answer /healthz",
            lambda: _probe(handle, {"httpGet": {"port": 8788, "path": "/healthz"}}),
        )
    finally:
        print(handle.log_path.read_text(errors="replace")[-3000:])
    # The operator wrote the namespace's (empty) route bundle for the new sidecar pod: no route yet.
    wait_for("the sidecar to load the empty bundle", lambda: _served_routes(handle) == [], timeout=30)

    route = {
        "apiVersion": "modelroute.dev/v1alpha1",
        "kind": "ModelRoute",
        "metadata": {"name": "chat"},
        "spec": {
            "route": "chat",
            "selector": {"matchLabels": {"app": "chat"}},
            "targets": [
                {
                    "name": "primary",
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "baseUrl": emu.openai_url,
                    "apiKey": {"secretKeyRef": {"name": "llm-keys", "key": "openai"}},
                }
            ],
        },
    }
    c.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(route))
    try:
        wait_for("the operator's push of the route", lambda: _served_routes(handle) == ["chat"], timeout=60)
    finally:
        mr = c.rest().get(f"/apis/modelroute.dev/v1alpha1/namespaces/{ns}/modelroutes/chat")
        print("ModelRoute status:", json.dumps(mr.get("status"), indent=1))
        print("sidecar log:", handle.log_path.read_text(errors="replace")[-3000:])
    wait_for(
        "the injected sidecar's readiness probe",
        lambda: _probe(handle, sidecar["readinessProbe"]),
        timeout=30,
    )
    kubelet.set_ready(handle, True)  # what the kubelet reports once the readiness probe passes
    ready = next(x for x in _pod(c, ns, "app")["status"]["conditions"] if x["type"] == "Ready")
    assert ready["status"] == "True"
    mr = wait_for("ModelRoute status synced", lambda: _synced(c, ns), timeout=60)
    assert mr["status"]["pods"] == {"selected": 1, "synced": 1, "failed": 0}

    # The app: the real openai SDK, configured by nothing but the env injected into its container.
    app = _pod(c, ns, "app")["spec"]["containers"][0]
    assert not [
        m for m in app.get("volumeMounts") or [] if m["name"].startswith("modelroute-")
    ]  # credentials: sidecar only
    injected_env = {e["name"]: e["value"] for e in app["env"]}
    assert injected_env["OPENAI_BASE_URL"] == f"http://127.0.0.1:{port}/v1"
    code = (
        "import openai; c = openai.OpenAI(max_retries=0, timeout=10); "
        "print(c.chat.completions.create(model='chat', messages=[{'role': 'user', 'content': 'hi'}]).choices[0].message.content)"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "GOOGLE_"))}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, **injected_env, "OPENAI_API_KEY": "unused-by-the-sidecar"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("[openai:gpt-4o-mini]"), out.stdout

    # A ModelRouteEval (`kubectl modelroute eval`) under the chart's RBAC only: the operator finds the route's ready
    # sidecar pod, signs its POST /eval, writes the result into the status and deletes the object after its TTL
    # (test_the_operator_never_lacked_a_permission then finds no 403 in its log).
    rest, evals = c.rest(), f"/apis/modelroute.dev/v1alpha1/namespaces/{ns}/modelrouteevals"
    candidate = json.loads(json.dumps(route["spec"]))
    candidate["targets"][0]["model"] = "gpt-4.1-mini"
    rest.create(evals, {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRouteEval", "metadata": {"name": "rbac"},
                        "spec": {"modelRoute": "chat", "candidate": candidate, "minCases": 1, "ttlSecondsAfterFinished": 2,
                                 "cases": [{"input": f"ticket {i}", "expected": "billing"} for i in range(3)]}})
    done = wait_for("the eval to finish", lambda: (o := rest.get(f"{evals}/rbac")).get("status", {}).get("phase")
                    in ("Succeeded", "Failed") and o, timeout=90)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert (done["status"]["pod"], done["status"]["result"]["casesRun"]) == ("app", 3), done["status"]
    wait_for("the finished eval to be deleted after its TTL", lambda: rest.get_or_none(f"{evals}/rbac") is None, timeout=60)


def _served_routes(handle: PodHandle) -> list[str] | None:
    try:
        with urllib.request.urlopen(f"http://{handle.ip}:8788/config", timeout=2) as r:
            return sorted(str(x["spec"]["route"]) for x in json.loads(r.read()).get("routes") or [])
    except (urllib.error.URLError, OSError):
        return None


def _synced(c: ControlPlane, ns: str) -> dict[str, Any] | None:
    mr = c.rest().get(f"/apis/modelroute.dev/v1alpha1/namespaces/{ns}/modelroutes/chat")
    conds = {x["type"]: x["status"] for x in (mr.get("status") or {}).get("conditions") or []}
    return dict(mr) if conds.get("Synced") == "True" else None


def test_the_operator_never_lacked_a_permission(installed: Install) -> None:
    # Runs last in this module: everything above went through the chart's RBAC only.
    logs = installed.logs()
    assert installed.operator.poll() is None, logs[-4000:]
    assert installed.webhook.poll() is None, installed.webhook_logs()[-4000:]
    # the webhook's metrics are on its own /metrics
    assert (
        _metric(installed.webhook_metrics_port, 'modelroute_webhook_admissions_total{result="injected"}') or 0
    ) >= 3
    logs += installed.webhook_logs()
    denied = [
        # (?<!,): not the milliseconds of a log timestamp ("15:51:34,403")
        line for line in logs.splitlines() if re.search(r"(?<!,)\b403\b|[Ff]orbidden|not enough permissions", line)
    ]
    assert not denied, "\n".join(denied[:20])
