"""The kubelet player: with no kubelet in the local control plane, tests play its part.

What a kubelet does for a pod, and what the player does instead:

* creates its sandbox and IP -> a distinct loopback address (127.a.b.n) per pod;
* reports status -> :meth:`KubeletPlayer.set_running` / :meth:`set_ready` patch
  ``status`` (phase, ``podIP``/``podIPs``, conditions, ``containerStatuses``);
* runs the containers -> :meth:`start_process` runs any command (bound to the pod IP by
  the caller, e.g. ``modelroute sidecar --host <ip>``); :meth:`stop_process`, :meth:`kill_process`
  (a crash) and :meth:`restart_process` (a container restart; no automatic restarts);
* mounts ConfigMap, Secret, downward-API and projected volumes -> :meth:`sync_volumes`
  writes them under ``PodHandle.volume_path(<volume name>)`` the way the kubelet does
  (atomic writer); the caller points the process at those directories;
* runs readiness probes -> :meth:`probe` (httpGet probes from the pod spec, against the pod IP);
* finishes graceful deletion -> :meth:`sync` stops the process of a pod being deleted and
  removes the object (the apiserver waits for the kubelet because pods are bound to a node).

Everything is explicit and synchronous; :meth:`start_background_sync` additionally runs
:meth:`sync` in a thread (like the kubelet's own loops: volumes follow ConfigMap and label
changes, probes update Ready, deleted pods stop).
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

from modelroute.testing.cluster.loopback import LoopbackAddresses
from modelroute.testing.cluster.processes import spawn, stop_pid
from modelroute.testing.cluster.rest import ApiError, KubeRest, pod_path
from modelroute.testing.cluster.volumes import volume_files, write_atomic

NODE_NAME = "modelroute-player"
HOST_IP = "127.0.0.1"
DEFAULT_IMAGE = "modelroute.dev/placeholder:latest"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PodHandle:
    """One pod the player looks after."""

    namespace: str
    name: str
    uid: str
    ip: str
    directory: Path
    spec: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    ready: bool = False
    running: bool = False
    command: tuple[list[str], dict[str, str], Path] | None = None  # last start_process call
    restarts: int = 0

    def volume_path(self, volume: str) -> Path:
        """Local directory standing in for the pod's volume named ``volume``."""
        return self.directory / "volumes" / volume

    @property
    def log_path(self) -> Path:
        """stdout+stderr of the pod's process."""
        return self.directory / "process.log"

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


class PodParts(TypedDict, total=False):
    """The optional parts of a Pod, as ``pod_manifest`` and ``KubeletPlayer.create_pod`` take them."""

    labels: Mapping[str, str] | None
    annotations: Mapping[str, str] | None
    containers: Sequence[Mapping[str, Any]] | None
    volumes: Sequence[Mapping[str, Any]] | None
    service_account: str | None


def pod_manifest(namespace: str, name: str, *, node_name: str = NODE_NAME, **parts: Unpack[PodParts]) -> dict[str, Any]:
    """A Pod bound to the player's node (pure)."""
    containers, volumes = parts.get("containers"), parts.get("volumes")
    spec: dict[str, Any] = {
        "nodeName": node_name,
        "containers": [dict(c) for c in containers]
        if containers
        else [{"name": "app", "image": DEFAULT_IMAGE}],
        "terminationGracePeriodSeconds": 5,
    }
    if volumes:
        spec["volumes"] = [dict(v) for v in volumes]
    if service_account := parts.get("service_account"):
        spec["serviceAccountName"] = service_account
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(parts.get("labels") or {}),
            "annotations": dict(parts.get("annotations") or {}),
        },
        "spec": spec,
    }


def pod_status(
    pod_spec: Mapping[str, Any], ip: str, *, ready: bool, started_at: str, running: bool = True
) -> dict[str, Any]:
    """The ``status`` a kubelet reports for a running pod on ``ip`` (pure)."""
    flag = "True" if ready else "False"
    conditions = [
        {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": started_at},
        {"type": "Initialized", "status": "True", "lastTransitionTime": started_at},
        {"type": "ContainersReady", "status": flag, "lastTransitionTime": _now()},
        {"type": "Ready", "status": flag, "lastTransitionTime": _now()},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": started_at},
    ]
    if not ready:
        for cond in conditions[2:4]:
            cond["reason"] = "ContainersNotReady"
    statuses = []
    for c in pod_spec.get("containers", []):
        state: dict[str, Any] = (
            {"running": {"startedAt": started_at}}
            if running
            else {"waiting": {"reason": "ContainerCreating"}}
        )
        statuses.append(
            {
                "name": c["name"],
                "image": c.get("image", DEFAULT_IMAGE),
                "imageID": "",
                "containerID": f"player://{c['name']}",
                "ready": ready,
                "started": running,
                "restartCount": 0,
                "state": state,
            }
        )
    return {
        "phase": "Running" if running else "Pending",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "hostIP": HOST_IP,
        "hostIPs": [{"ip": HOST_IP}],
        "startTime": started_at,
        "conditions": conditions,
        "containerStatuses": statuses,
    }


class NamespaceObjects:
    """ConfigMaps and Secrets of one namespace, listed once on first use (one sync pass)."""

    def __init__(self, rest: KubeRest, namespace: str) -> None:
        self._rest = rest
        self._namespace = namespace
        self._listed: dict[str, dict[str, Any]] = {}

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        if kind not in self._listed:
            items = self._rest.get(f"/api/v1/namespaces/{self._namespace}/{kind}")["items"]
            self._listed[kind] = {item["metadata"]["name"]: item for item in items}
        return self._listed[kind].get(name)


class KubeletPlayer:
    """Plays the kubelet of node ``modelroute-player`` for the pods it creates.

    ``work_dir`` holds one directory per pod (volumes, process log).
    """

    def __init__(self, rest: KubeRest, work_dir: Path, addresses: LoopbackAddresses | None = None) -> None:
        self.rest = rest
        self.work_dir = work_dir
        self.addresses = addresses or LoopbackAddresses()
        self._own_addresses = addresses is None
        self.pods: dict[tuple[str, str], PodHandle] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- pods ----------------------------------------------------------------------------

    def ensure_default_service_account(self, namespace: str) -> None:
        """The ``default`` ServiceAccount (no controller creates it here); idempotent."""
        body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
        try:
            self.rest.create(f"/api/v1/namespaces/{namespace}/serviceaccounts", body)
        except ApiError as err:
            if err.status != 409:
                raise

    def create_pod(
        self, namespace: str, name: str, *, manifest: Mapping[str, Any] | None = None, **parts: Unpack[PodParts],
    ) -> PodHandle:
        """Create the Pod through the API (Pending, IP reserved but not yet reported).

        Pass a full ``manifest`` to control everything; its ``spec.nodeName`` is forced to
        the player's node. The namespace must exist; its ``default`` ServiceAccount is created.
        """
        body = dict(manifest) if manifest is not None else pod_manifest(namespace, name, **parts)
        body.setdefault("spec", {})["nodeName"] = NODE_NAME
        self.ensure_default_service_account(namespace)
        created = self.rest.create(pod_path(namespace), body)
        handle = PodHandle(
            namespace=namespace,
            name=name,
            uid=created["metadata"]["uid"],
            ip=self.addresses.allocate(),
            directory=self.work_dir / namespace / name,
            spec=created["spec"],
            labels=created["metadata"].get("labels") or {},
        )
        if handle.directory.exists():
            shutil.rmtree(handle.directory)
        handle.directory.mkdir(parents=True)
        self.sync_volumes(handle, pod=created)
        with self._lock:
            self.pods[handle.key] = handle
        return handle

    def set_running(self, handle: PodHandle, *, ready: bool = True) -> dict[str, Any]:
        """Report phase Running with the pod's loopback IP; Ready as given."""
        handle.running = True
        return self._patch_status(handle, ready)

    def set_ready(self, handle: PodHandle, ready: bool) -> dict[str, Any]:
        """Flip the Ready/ContainersReady conditions (and containerStatuses[].ready)."""
        return self._patch_status(handle, ready)

    def _patch_status(self, handle: PodHandle, ready: bool) -> dict[str, Any]:
        pod = self.rest.get(pod_path(handle.namespace, handle.name))
        started = (pod.get("status") or {}).get("startTime") or _now()
        status = pod_status(handle.spec, handle.ip, ready=ready, started_at=started, running=handle.running)
        # merge patch replaces the lists wholesale: the status is exactly what we report
        patched: dict[str, Any] = self.rest.patch(
            pod_path(handle.namespace, handle.name) + "/status", {"status": status}
        )
        handle.ready = ready
        return patched

    def delete_pod(self, handle: PodHandle) -> None:
        """Stop the process, delete the Pod at once (grace 0) and free its address."""
        self.stop_process(handle)
        try:
            self.rest.delete(
                pod_path(handle.namespace, handle.name),
                {"gracePeriodSeconds": 0, "preconditions": {"uid": handle.uid}},
            )
        except ApiError as err:
            if err.status not in (404, 409):
                raise
        self._forget(handle)

    def _forget(self, handle: PodHandle) -> None:
        with self._lock:
            self.pods.pop(handle.key, None)
        self.addresses.release(handle.ip)

    # -- processes -----------------------------------------------------------------------

    def pod_env(self, handle: PodHandle) -> dict[str, str]:
        """What the downward API would give: POD_NAME, POD_NAMESPACE, POD_IP, POD_UID, NODE_NAME."""
        return {
            "POD_NAME": handle.name,
            "POD_NAMESPACE": handle.namespace,
            "POD_IP": handle.ip,
            "POD_UID": handle.uid,
            "NODE_NAME": NODE_NAME,
        }

    def start_process(
        self,
        handle: PodHandle,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Run ``argv`` as the pod's container (one per pod); output to ``handle.log_path``.

        The environment is ``os.environ`` (unless ``inherit_env=False``) + :meth:`pod_env`
        + ``env``. The caller makes the command listen on ``handle.ip``.
        """
        if handle.process is not None and handle.process.poll() is None:
            raise RuntimeError(f"pod {handle.namespace}/{handle.name} already runs a process")
        full_env = {**(os.environ if inherit_env else {}), **self.pod_env(handle), **(env or {})}
        handle.command = (list(argv), full_env, cwd or handle.directory)
        handle.process = spawn(
            argv, log_path=handle.log_path, env=full_env, cwd=cwd or handle.directory, tie_to_parent=True
        )
        return handle.process

    def restart_process(self, handle: PodHandle, timeout: float = 10.0) -> subprocess.Popen[bytes]:
        """Stop (if running) and start again the last command, as a container restart does."""
        if handle.command is None:
            raise RuntimeError(f"pod {handle.namespace}/{handle.name} never ran a process")
        self.stop_process(handle, timeout=timeout)
        argv, env, cwd = handle.command
        handle.restarts += 1
        handle.process = spawn(argv, log_path=handle.log_path, env=env, cwd=cwd, tie_to_parent=True)
        return handle.process

    def stop_process(self, handle: PodHandle, timeout: float = 10.0) -> int | None:
        """SIGTERM (then SIGKILL after ``timeout``); returns the exit code, None if none ran."""
        proc = handle.process
        if proc is None:
            return None
        if proc.poll() is None:
            stop_pid(proc.pid, timeout=timeout)
        return proc.wait()

    def kill_process(self, handle: PodHandle) -> int | None:
        """SIGKILL, as when a container crashes."""
        proc = handle.process
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
        return proc.wait()

    # -- volumes -------------------------------------------------------------------------

    def sync_volumes(
        self,
        handle: PodHandle,
        pod: Mapping[str, Any] | None = None,
        objects: NamespaceObjects | None = None,
    ) -> list[str]:
        """Write the pod's ConfigMap, Secret, downward-API and projected volumes.

        Returns the names of the volumes that changed. A volume whose (non-optional)
        ConfigMap/Secret is missing is left as it was (a kubelet would keep the pod in
        ContainerCreating); check ``PodHandle.volume_path(...)`` in the test.
        """
        pod = pod or self.rest.get(pod_path(handle.namespace, handle.name))
        metadata = pod["metadata"]
        objects = objects or NamespaceObjects(self.rest, handle.namespace)
        changed: list[str] = []
        with self._lock:  # the sync thread and the test may both sync one pod
            handle.labels = metadata.get("labels") or {}
            for volume in pod["spec"].get("volumes") or []:
                files = volume_files(volume, metadata, objects.get)
                if files is not None and write_atomic(handle.volume_path(volume["name"]), files):
                    changed.append(volume["name"])
        return changed

    # -- probes --------------------------------------------------------------------------

    def probe(self, handle: PodHandle, timeout: float = 0.5) -> bool | None:
        """Run the pod's httpGet readiness probes against its IP; None when it has none.

        Ready means: a process runs and every container's probe answers 2xx/3xx.
        """
        probes = [
            c["readinessProbe"]["httpGet"]
            for c in handle.spec.get("containers", [])
            if "httpGet" in (c.get("readinessProbe") or {})
        ]
        if not probes:
            return None
        if handle.process is None or handle.process.poll() is not None:
            return False
        for probe in probes:
            port = _probe_port(handle.spec, probe["port"])
            url = f"http://{handle.ip}:{port}{probe.get('path', '/')}"
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    if not 200 <= int(resp.status) < 400:
                        return False
            except (urllib.error.URLError, OSError):
                return False
        return True

    # -- the sync loop -------------------------------------------------------------------

    def sync(self) -> None:
        """One kubelet pass: finish deletions, refresh volumes, probe and report readiness.

        A few LISTs per namespace (its pods on the player's node, its ConfigMaps and Secrets
        when volumes need them), not a GET per pod.
        """
        with self._lock:
            handles = list(self.pods.values())
        for namespace in sorted({h.namespace for h in handles}):
            listed = self.rest.get(pod_path(namespace), fieldSelector=f"spec.nodeName={NODE_NAME}")
            pods = {p["metadata"]["name"]: p for p in listed["items"]}
            objects = NamespaceObjects(self.rest, namespace)  # one LIST per kind, when needed
            for handle in (h for h in handles if h.namespace == namespace):
                self._sync_pod(handle, pods.get(handle.name), objects)

    def _sync_pod(self, handle: PodHandle, pod: dict[str, Any] | None, objects: NamespaceObjects) -> None:
        if pod is None or pod["metadata"]["uid"] != handle.uid:
            self.stop_process(handle)
            self._forget(handle)
            return
        if pod["metadata"].get("deletionTimestamp"):
            self.delete_pod(handle)
            return
        self.sync_volumes(handle, pod=pod, objects=objects)
        if handle.running:
            ready = self.probe(handle)
            if ready is not None and ready != handle.ready:
                self.set_ready(handle, ready)

    def start_background_sync(self, period: float = 0.5) -> None:
        """Run :meth:`sync` every ``period`` seconds in a daemon thread until :meth:`close`."""
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(period):
                try:
                    self.sync()
                except Exception as exc:  # keep playing; a test sees the effects
                    print(f"[kubelet player] sync failed: {exc}", flush=True)

        self._thread = threading.Thread(target=loop, name="kubelet-player", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the sync thread and every process (pods stay in the API)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            handles = list(self.pods.values())
        for handle in handles:
            self.stop_process(handle)
        if self._own_addresses:
            self.addresses.close()


def _probe_port(spec: Mapping[str, Any], port: int | str) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for container in spec.get("containers", []):
        for p in container.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
    raise ValueError(f"named port {port!r} not found in the pod spec")


__all__ = [
    "NODE_NAME",
    "KubeletPlayer",
    "PodHandle",
    "pod_manifest",
    "pod_status",
]
