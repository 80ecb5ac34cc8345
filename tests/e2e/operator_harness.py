"""Helpers for the operator e2e tests: the operator and sidecars as real processes, the emulator.

Not a test module: test files import it relatively.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai

from modelroute.api import signing
from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer, PodHandle
from modelroute.testing.cluster.loopback import free_port as free_port  # re-exported for the e2e tests
from modelroute.testing.cluster.processes import spawn, stop_pid
from modelroute.testing.waiting import wait_for as wait_for  # re-exported for the e2e tests

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "crds"  # every generated CRD: ModelRoute and ProviderQuota
ADMIN_PORT = 8788
APP_PORT = 8787


def install_crd(cluster: ControlPlane) -> None:
    """Install the committed CRD (server-side apply: idempotent across tests)."""
    cluster.install_crds(CRD)


class Keys:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        pem = signing.generate_private_key_pem()
        self.private = directory / "operator.key"
        self.public = directory / "operator.pub"
        self.private.write_bytes(pem)
        self.public.write_bytes(signing.public_key_pem(pem))


class OperatorProcess:
    """``modelroute operator`` for one namespace, as a subprocess with its own log and metrics port."""

    def __init__(self, cluster: ControlPlane, namespace: str, keys: Keys, log_dir: Path) -> None:
        self.cluster, self.namespace, self.keys = cluster, namespace, keys
        self.log_dir = log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0
        self.starts = 0
        self.extra_args: list[str] = []  # more `modelroute operator` options, e.g. --quota-poll-seconds

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"operator-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        self.metrics_port = free_port()
        argv = [
            sys.executable, "-m", "modelroute.cli", "operator",
            "--kubeconfig", str(self.cluster.kubeconfig), "--namespace", self.namespace,
            "--signing-key", str(self.keys.private), "--metrics-listen", f"127.0.0.1:{self.metrics_port}",
            "--lease-namespace", self.namespace, "--lease-duration", "3", "--log-level", "info", *self.extra_args,
        ]
        self.proc = spawn(argv, log_path=self.log_path, tie_to_parent=True)
        wait_for("operator metrics endpoint", lambda: self.metric("modelroute_operator_leader") == 1.0, timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_pid(self.proc.pid, timeout=10)
            self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as r:
            return str(r.read().decode())

    def metric(self, name: str, labels: str = "") -> float | None:
        pattern = re.escape(name + (("{" + labels + "}") if labels else "")) + r" ([0-9.e+-]+)$"
        try:
            text = self.metrics_text()
        except (urllib.error.URLError, OSError):
            return None
        for line in text.splitlines():
            m = re.match(pattern, line)
            if m:
                return float(m.group(1))
        return None

    def reconciles(self) -> float:
        """Namespace reconciles so far, whatever their result."""
        return sum(self.metric("modelroute_operator_reconciles_total", f'result="{r}"') or 0.0
                   for r in ("converged", "retry", "error"))

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("operator-*.log")))


class Emulator:
    """The provider emulator as a subprocess on 127.0.0.1 (any free port)."""

    def __init__(self, log_path: Path, args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.proc = spawn([sys.executable, "-m", "modelroute.testing.emulators", "--host", "127.0.0.1",
                           "--port", str(self.port), *args], log_path=log_path, tie_to_parent=True)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for("emulator", lambda: _port_open("127.0.0.1", self.port), timeout=20)

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    def close(self) -> None:
        if self.proc.poll() is None:
            stop_pid(self.proc.pid, timeout=5)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def sidecar_argv(handle: PodHandle, keys: Keys) -> list[str]:
    return [
        sys.executable, "-m", "modelroute.cli", "sidecar",
        "--listen", f"{handle.ip}:{APP_PORT}", "--admin-listen", f"{handle.ip}:{ADMIN_PORT}",
        "--operator-public-key", str(keys.public),
        "--bundle-dir", str(handle.volume_path("routes")),
        "--pod-labels-file", str(handle.volume_path("podinfo") / "labels"),
        "--pod-namespace", handle.namespace, "--pod-name", handle.name, "--pod-uid", handle.uid,
        "--state-dir", str(handle.directory / "state"),  # an emptyDir: survives restart_process
    ]


def start_sidecar_pod(kubelet: KubeletPlayer, namespace: str, name: str, labels: dict[str, str], keys: Keys,
                      env: dict[str, str] | None = None) -> PodHandle:
    """A pod whose one container is a real ``modelroute sidecar`` process on the pod's loopback IP."""
    handle = kubelet.create_pod(
        namespace, name,
        labels={"modelroute.dev/sidecar": "true", **labels},
        annotations={"modelroute.dev/admin-port": str(ADMIN_PORT)},
        containers=[{
            "name": "modelroute", "image": "modelroute.dev/sidecar:dev",
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": ADMIN_PORT}},
        }],
        volumes=[
            {"name": "routes", "configMap": {"name": "modelroute-routes", "optional": True}},
            {"name": "podinfo", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        ],
    )
    start_sidecar_process(kubelet, handle, keys, env)
    kubelet.set_running(handle, ready=False)  # the player's probe flips Ready once /readyz answers
    return handle


def start_sidecar_process(kubelet: KubeletPlayer, handle: PodHandle, keys: Keys, env: dict[str, str] | None = None) -> None:
    """``env``: extra variables for the sidecar process (e.g. ``OTEL_*``)."""
    kubelet.start_process(handle, sidecar_argv(handle, keys), env={"OPENAI_API_KEY": "sk-e2e-test", **(env or {})})


def served_version(handle: PodHandle) -> str | None:
    with urllib.request.urlopen(f"http://{handle.ip}:{ADMIN_PORT}/config", timeout=2) as r:
        version = json.loads(r.read()).get("version")
        return str(version) if version else None


def served_routes(handle: PodHandle) -> list[str]:
    with urllib.request.urlopen(f"http://{handle.ip}:{ADMIN_PORT}/config", timeout=2) as r:
        return sorted(str(x["spec"]["route"]) for x in json.loads(r.read()).get("routes") or [])


def chat(handle: PodHandle, model: str = "chat", text: str = "hello") -> str:
    """One chat completion through the pod's sidecar with the real openai SDK."""
    client = openai.OpenAI(base_url=f"http://{handle.ip}:{APP_PORT}/v1", api_key="unused-by-the-sidecar", max_retries=0, timeout=10)
    try:
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])
    finally:
        client.close()
    return reply.choices[0].message.content or ""


def route_missing(handle: PodHandle, model: str = "chat") -> bool:
    try:
        chat(handle, model)
    except openai.NotFoundError:
        return True
    return False


def modelroute(name: str, emulator: Emulator, *, route: str = "chat", model: str = "gpt-4o-mini",
               selector: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "route": route,
        "targets": [{"name": "primary", "provider": "openai", "model": model, "baseUrl": emulator.openai_url,
                     "apiKey": {"env": "OPENAI_API_KEY"}}],
    }
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": name}, "spec": spec}


def apply(cluster: ControlPlane, namespace: str, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


def get_route(cluster: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    return dict(cluster.rest().get(f"/apis/modelroute.dev/v1alpha1/namespaces/{namespace}/modelroutes/{name}"))


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return None


def must_condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    """The ``type_`` condition, which must be there."""
    c = condition(obj, type_)
    assert c is not None, f"no {type_} condition in {obj.get('status')}"
    return c


@contextmanager
def emulator(log_dir: Path, *args: str) -> Iterator[Emulator]:
    """``args``: more emulator options, e.g. ``--tpm 12000`` (the provider's own limit)."""
    emu = Emulator(log_dir / "emulator.log", args)
    try:
        yield emu
    finally:
        emu.close()
