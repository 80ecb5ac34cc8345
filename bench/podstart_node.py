"""Pod start on the real one-node cluster: creation -> app container running, with and without
the injected native sidecar (issue 15, goal 1, last part).

The cluster is :class:`NodeCluster` (kubelet, containerd, runc, CNI bridge in a network
namespace of this run's own), the images built here (``imagebuild``), the chart installed
with helm and the provider emulator on the node address, as the node e2e tests set them up
(``modelroute.testing.cluster.nodeapp``). Pods, alternated one at a time:

* ``plain``: the demo app's pod (``nodeapp.app_manifest``'s template) in namespace ``plain``,
  which is not labelled for injection; its openai SDK calls the emulator directly
  (``OPENAI_BASE_URL``), as an app without modelroute calls its provider. The chart's
  opt-in webhook still sees its creation, as it sees every pod's in a cluster with the chart.
* ``injected``: the same pod in namespace ``shop`` (labelled ``modelroute.dev/inject=enabled``,
  ModelRoute ``chat`` selecting it): the webhook adds the native sidecar, the kubelet starts the
  app once the sidecar's postStart hook saw ``/readyz`` 200 (a startup probe before 2026-12-06).

Each pod is created, followed to Ready, deleted, and its deletion awaited, all from one watch
on the apiserver (events, no sleeps). Two clocks:

* ``api``: the pod's own timestamps (creationTimestamp, ``state.running.startedAt``, the
  conditions' ``lastTransitionTime``); the apiserver keeps whole seconds only, so each figure
  is an integer and can be off by up to one second either way;
* ``watch``: this process's monotonic clock, from just before the POST to the arrival of the
  first watch event showing the milestone (sub-second; includes the kubelet's status report,
  and the loopback hop from the apiserver, the same for both modes).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import queue
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness import machine, pct, table, write_result
from modelroute.testing.cluster.binaries import ensure_binaries, ensure_node_binaries
from modelroute.testing.cluster.imagebuild import build_and_import
from modelroute.testing.cluster.node import NodeCluster
from modelroute.testing.cluster.nodeapp import (
    APP_NS,
    EMULATOR_PORT,
    SIDECAR,
    Node,
    app_image_of,
    app_manifest,
    install_release,
    route,
    start_emulator,
)
from modelroute.testing.cluster.nodeconfig import NODE_IP
from modelroute.testing.cluster.processes import stop_pid
from modelroute.testing.cluster.rest import pod_path

PLAIN_NS = "plain"
MODES = {"plain": PLAIN_NS, "injected": APP_NS}
LABEL = "modelroute.dev/bench"
APP = "app"
# milestones seen in a pod's status; the sidecar ones only with injection
MILESTONES = ("admitted", "scheduled", "sidecar_running", "sidecar_started", "sidecar_ready", "initialized",
              "app_running", "ready")


# ---- the watch ----------------------------------------------------------------------------------

class PodWatch:
    """One watch on every bench pod; each event queued with its arrival (monotonic seconds)."""

    def __init__(self, cluster: NodeCluster) -> None:
        url = urllib.parse.urlsplit(cluster.server)
        self._host, self._port = url.hostname or "127.0.0.1", url.port or 443
        self._ctx = ssl.create_default_context(cafile=str(cluster.pki.ca_cert))
        self._ctx.load_cert_chain(str(cluster.pki.admin_cert), str(cluster.pki.admin_key))
        self._rest = cluster.rest()
        self.events: queue.Queue[tuple[float, str, dict[str, Any]]] = queue.Queue()
        self._stop = threading.Event()
        self._conn: http.client.HTTPSConnection | None = None
        rv = self._rest.get("/api/v1/pods", labelSelector=LABEL)["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, args=(str(rv),), daemon=True)
        self._thread.start()

    def _run(self, rv: str) -> None:
        while not self._stop.is_set():
            query = urllib.parse.urlencode({"watch": "1", "labelSelector": LABEL, "resourceVersion": rv,
                                            "timeoutSeconds": "3600"})
            conn = self._conn = http.client.HTTPSConnection(self._host, self._port, context=self._ctx, timeout=None)
            try:
                conn.request("GET", f"/api/v1/pods?{query}", headers={"Accept": "application/json"})
                resp = conn.getresponse()
                while line := resp.readline():
                    arrived = time.monotonic()
                    event = json.loads(line)
                    obj = event["object"]
                    if event["type"] == "ERROR":  # e.g. 410 Gone: start over from now
                        rv = str(self._rest.get("/api/v1/pods", labelSelector=LABEL)["metadata"]["resourceVersion"])
                        break
                    rv = obj["metadata"]["resourceVersion"]
                    self.events.put((arrived, event["type"], obj))
            except (OSError, http.client.HTTPException, ValueError):
                if self._stop.is_set():
                    return
            finally:
                conn.close()

    def next(self, deadline: float) -> tuple[float, str, dict[str, Any]]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no watch event in time")
        try:
            return self.events.get(timeout=left)
        except queue.Empty:
            raise TimeoutError("no watch event in time") from None

    def close(self) -> None:
        self._stop.set()
        conn = self._conn
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)


class TaskStarts:
    """containerd's own ``/tasks/start`` events (``ctr events``): each container's process start,
    stamped by containerd in nanoseconds (the kubelet reports it to the apiserver in seconds);
    and ``/tasks/exit`` of each container's first exec process (the sidecar's only exec is its
    postStart hook: its probes are HTTP)."""

    def __init__(self, cluster: NodeCluster) -> None:
        self._proc = subprocess.Popen(["ctr", f"--address={cluster.containerd_socket}", "events"],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._started: dict[str, float] = {}
        self._exec_exited: dict[str, float] = {}
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            # "2026-12-06 08:30:00.123456789 +0000 UTC k8s.io /tasks/start {"container_id":"...","pid":1}"
            parts = line.rstrip("\n").split(" ", 6)
            if len(parts) < 7 or parts[5] not in ("/tasks/start", "/tasks/exit") or parts[2] != "+0000":
                continue
            at, event = _rfc3339(f"{parts[0]}T{parts[1]}Z"), json.loads(parts[6])
            with self._changed:
                if parts[5] == "/tasks/start":
                    self._started[event["container_id"]] = at
                elif event.get("id") not in (None, event["container_id"]):  # an exec's exit
                    self._exec_exited.setdefault(event["container_id"], at)
                self._changed.notify_all()

    def started(self, container_id: str, timeout: float = 10.0) -> float:
        """Wall-clock seconds at which ``container_id``'s process started."""
        with self._changed:
            if not self._changed.wait_for(lambda: container_id in self._started, timeout):
                raise TimeoutError(f"no /tasks/start event for {container_id}")
            return self._started[container_id]

    def exec_exited(self, container_id: str) -> float | None:
        """Wall-clock seconds at which ``container_id``'s first exec process exited, if any."""
        with self._changed:
            return self._exec_exited.get(container_id)

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(10)


# ---- one pod ------------------------------------------------------------------------------------

def _status(pod: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    return next((s for s in pod.get("status", {}).get(kind) or [] if s.get("name") == name), {})


def _condition(pod: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in pod.get("status", {}).get("conditions") or []
                 if c.get("type") == kind and c.get("status") == "True"), None)


def reached(pod: dict[str, Any]) -> set[str]:
    """The milestones ``pod`` (a watch event's object) shows."""
    app, side = _status(pod, "containerStatuses", APP), _status(pod, "initContainerStatuses", SIDECAR)
    seen = {"admitted"}
    for name, cond in (("scheduled", "PodScheduled"), ("initialized", "Initialized"), ("ready", "Ready")):
        if _condition(pod, cond):
            seen.add(name)
    if "running" in app.get("state", {}):
        seen.add("app_running")
    if "running" in side.get("state", {}):
        seen.add("sidecar_running")
    if side.get("started"):
        seen.add("sidecar_started")
    if side.get("ready"):
        seen.add("sidecar_ready")
    return seen


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def api_seconds(pod: dict[str, Any]) -> dict[str, float]:
    """Whole-second figures from the pod's own timestamps, from its creationTimestamp."""
    created = _ts(pod["metadata"]["creationTimestamp"])
    out: dict[str, float] = {}
    app, side = _status(pod, "containerStatuses", APP), _status(pod, "initContainerStatuses", SIDECAR)
    if started := app.get("state", {}).get("running", {}).get("startedAt"):
        out["app_running"] = _ts(started) - created
    if started := side.get("state", {}).get("running", {}).get("startedAt"):
        out["sidecar_running"] = _ts(started) - created
    for name, cond in (("scheduled", "PodScheduled"), ("initialized", "Initialized"), ("ready", "Ready")):
        if c := _condition(pod, cond):
            out[name] = _ts(c["lastTransitionTime"]) - created
    return out


@dataclass
class Sample:
    mode: str
    name: str
    watch: dict[str, float] = field(default_factory=dict)  # milestone -> seconds after the POST (monotonic)
    api: dict[str, float] = field(default_factory=dict)  # milestone -> whole seconds after creationTimestamp
    task: dict[str, float] = field(default_factory=dict)  # container -> containerd's start, seconds after the POST
    deleted_s: float = 0.0  # DELETE -> the pod's DELETED event
    config_source: str = ""  # where the sidecar's first config came from (its "serving config ... from X" line)


def pod_manifest(node: Node, mode: str, name: str) -> dict[str, Any]:
    """The demo app's pod as its Deployment would create it, in ``mode``'s namespace."""
    template = app_manifest(node, 1)["spec"]["template"]
    template["metadata"]["labels"][LABEL] = "podstart"
    if mode == "plain":  # no sidecar: the app calls its provider itself
        template["spec"]["containers"][0]["env"] = [{"name": "OPENAI_BASE_URL", "value": node.emulator_url + "/v1"},
                                                    {"name": "OPENAI_API_KEY", "value": "sk-bench"}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {**template["metadata"], "name": name, "namespace": MODES[mode]}, "spec": template["spec"]}


def container_id(pod: dict[str, Any], kind: str, name: str) -> str | None:
    cid = _status(pod, kind, name).get("containerID")
    return str(cid).split("://", 1)[1] if cid else None


def _rfc3339(value: str) -> float:
    """``2026-12-06T08:30:00.123456789Z`` (nanoseconds: more than ``fromisoformat`` takes) -> epoch seconds."""
    whole, _, frac = value.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{whole}+00:00").timestamp() + float(f"0.{frac or 0}")


SIDECAR_LOG_MARKS = {"sidecar_listening": "modelroute sidecar: inbound on", "sidecar_config": "serving config "}


def sidecar_log_marks(node: Node, ns: str, name: str) -> tuple[dict[str, float], str]:
    """When the sidecar logged that it listens and that it serves a config (containerd's ns log
    timestamps, wall clock), and where the config came from (its log line)."""
    out = node.cluster.kubectl("logs", "-n", ns, name, "-c", SIDECAR, "--timestamps").stdout
    marks: dict[str, float] = {}
    source = ""
    for line in out.splitlines():
        stamp, _, text = line.partition(" ")
        for mark, needle in SIDECAR_LOG_MARKS.items():
            if needle in text and mark not in marks:
                marks[mark] = _rfc3339(stamp)
                if mark == "sidecar_config":
                    source = text.split(" from ", 1)[-1].split(" (", 1)[0]
    return marks, source


def start_one(node: Node, watch: PodWatch, tasks: TaskStarts, mode: str, name: str, timeout: float) -> Sample:
    """Create the pod, follow it to Ready, delete it and wait for it to be gone."""
    rest = node.cluster.rest()
    ns = MODES[mode]
    sample = Sample(mode, name)
    want = set(MILESTONES) if mode == "injected" else set(MILESTONES) - {m for m in MILESTONES if "sidecar" in m}
    posted, posted_wall = time.monotonic(), time.time()
    rest.create(pod_path(ns), pod_manifest(node, mode, name))
    deadline = posted + timeout
    last: dict[str, Any] = {}
    while not want <= set(sample.watch):
        arrived, kind, pod = watch.next(deadline)
        if pod["metadata"]["name"] != name or pod["metadata"]["namespace"] != ns:
            continue
        if kind == "DELETED" or pod["status"].get("phase") == "Failed":
            raise RuntimeError(f"{ns}/{name} ended before Ready: {json.dumps(pod['status'])[:600]}")
        for milestone in reached(pod) - set(sample.watch):
            sample.watch[milestone] = arrived - posted
        last = pod
    sample.api = api_seconds(last)
    for label, kind, container in (("app", "containerStatuses", APP), ("sidecar", "initContainerStatuses", SIDECAR)):
        if cid := container_id(last, kind, container):
            sample.task[label] = tasks.started(cid) - posted_wall
            if label == "sidecar" and (hook := tasks.exec_exited(cid)) is not None:
                sample.task["sidecar_hook"] = hook - posted_wall
    if mode == "injected":
        marks, sample.config_source = sidecar_log_marks(node, ns, name)
        sample.task.update({mark: at - posted_wall for mark, at in marks.items()})
    asked = time.monotonic()
    rest.delete(pod_path(ns, name))
    while True:
        arrived, kind, pod = watch.next(asked + timeout)
        if kind == "DELETED" and pod["metadata"]["name"] == name and pod["metadata"]["namespace"] == ns:
            sample.deleted_s = arrived - asked
            return sample


# ---- the cluster ------------------------------------------------------------------------------------

@contextmanager
def cluster_with_release(state: Path) -> Iterator[Node]:
    """The node, the images, the emulator and the chart, as the node e2e fixtures set them up;
    torn down with the cluster's own ``down``."""
    cluster = NodeCluster(state, ensure_binaries(), ensure_node_binaries(), name="modelroute-bench-podstart")
    cluster.up()
    emulator = None
    try:
        image = build_and_import(cluster)
        emulator = start_emulator(cluster, state / "emulator.log")
        node = Node(cluster, image, app_image_of(cluster), f"http://{NODE_IP}:{EMULATOR_PORT}", "")
        install_release(node)
        cluster.kubectl("label", "namespace", APP_NS, "modelroute.dev/inject=enabled")
        cluster.kubectl("create", "secret", "generic", "llm-keys", "-n", APP_NS, "--from-literal=openai=sk-bench")
        cluster.kubectl("apply", "-f", "-", input=json.dumps(route(node, "gpt-4o-mini")))
        cluster.kubectl("create", "namespace", PLAIN_NS)
        yield node
    finally:
        if emulator is not None:
            stop_pid(emulator.pid, timeout=5)
        cluster.down()


# ---- report -----------------------------------------------------------------------------------------

def _between(start: tuple[str, str], end: tuple[str, str]) -> Callable[[Sample], float | None]:
    """``end - start``, each a (clock, milestone); every clock counts seconds from the POST."""
    def get(s: Sample) -> float | None:
        marks = {"watch": s.watch, "api": s.api, "task": s.task}
        a, b = marks[start[0]].get(start[1]), marks[end[0]].get(end[1])
        return b - a if a is not None and b is not None else None
    return get


ROWS: tuple[tuple[str, str, Callable[[Sample], float | None]], ...] = (  # (label, clock, figure of a sample)
    ("POST -> admitted (watch ADDED)", "watch", lambda s: s.watch.get("admitted")),
    ("POST -> scheduled", "watch", lambda s: s.watch.get("scheduled")),
    ("POST -> sidecar running", "watch", lambda s: s.watch.get("sidecar_running")),
    ("POST -> sidecar started (status)", "watch", lambda s: s.watch.get("sidecar_started")),
    ("POST -> app container running", "watch", lambda s: s.watch.get("app_running")),
    ("POST -> pod Ready", "watch", lambda s: s.watch.get("ready")),
    ("POST -> sidecar process start", "task", lambda s: s.task.get("sidecar")),
    ("POST -> app process start", "task", lambda s: s.task.get("app")),
    ("sidecar start -> app start", "task", _between(("task", "sidecar"), ("task", "app"))),
    ("sidecar start -> it logs listening", "task", _between(("task", "sidecar"), ("task", "sidecar_listening"))),
    ("sidecar start -> it logs serving config", "task", _between(("task", "sidecar"), ("task", "sidecar_config"))),
    ("sidecar serves config -> started (status)", "task/watch",
     _between(("task", "sidecar_config"), ("watch", "sidecar_started"))),
    ("sidecar start -> started (status)", "task/watch",
     _between(("task", "sidecar"), ("watch", "sidecar_started"))),
    ("sidecar start -> sidecar ready", "task/watch", _between(("task", "sidecar"), ("watch", "sidecar_ready"))),
    ("sidecar serves config -> postStart hook exits", "task",
     _between(("task", "sidecar_config"), ("task", "sidecar_hook"))),
    ("postStart hook exits -> app start", "task", _between(("task", "sidecar_hook"), ("task", "app"))),
    ("started (status) -> app start", "watch/task", _between(("watch", "sidecar_started"), ("task", "app"))),
    ("app start -> pod Ready", "task/watch", _between(("task", "app"), ("watch", "ready"))),
    ("created -> app startedAt", "api", lambda s: s.api.get("app_running")),
    ("created -> Ready", "api", lambda s: s.api.get("ready")),
    ("created -> sidecar startedAt", "api", lambda s: s.api.get("sidecar_running")),
    ("sidecar startedAt -> Initialized", "api", _between(("api", "sidecar_running"), ("api", "initialized"))),
    ("DELETE -> gone", "watch", lambda s: s.deleted_s),
)


def figures(samples: list[Sample]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for label, _, get in ROWS:
        for mode in MODES:
            xs = [v for s in samples if s.mode == mode and (v := get(s)) is not None]
            if xs:
                out.setdefault(label, {})[mode] = {"n": len(xs), "p50": pct(xs, 50), "p99": pct(xs, 99),
                                                   "min": min(xs), "max": max(xs)}
    return out


def report(samples: list[Sample], loads: list[float]) -> tuple[str, dict[str, Any]]:
    figs = figures(samples)
    rows = []
    for label, clock, _ in ROWS:
        by_mode = figs.get(label, {})
        for mode, f in by_mode.items():
            unit = 1.0 if clock == "api" else 1000.0
            diff = ""
            if mode == "injected" and "plain" in by_mode:
                diff = f"{unit * (f['p50'] - by_mode['plain']['p50']):+.0f}"
            rows.append([label, clock, mode, f["n"], *(f"{unit * f[k]:.0f}" for k in ("p50", "p99", "min", "max")),
                         diff])
    text = table(["figure", "clock", "mode", "n", "p50", "p99", "min", "max", "injected-plain p50"], rows)
    text += ("\n(watch: ms, this process's monotonic clock at the watch event's arrival; task: ms, containerd's "
             "/tasks/start and log-line timestamps (ns) against the wall clock before the POST; api: whole seconds from the pod's "
             "own timestamps)"
             f"\nthe sidecars' first config came from: "
             f"{dict(Counter(s.config_source for s in samples if s.mode == 'injected'))}"
             f"\nload average (1 min) before/after: {loads[0]:.2f} / {loads[-1]:.2f}")
    return text, figs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=10, help="pods per mode (alternated), after one warm-up each")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds a pod may take to Ready (or to go)")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="mr-podstart-"))
    print(f"state dir: {state}", flush=True)
    samples: list[Sample] = []
    loads, info = [os.getloadavg()[0]], machine()
    with cluster_with_release(state) as node:
        watch, tasks = PodWatch(node.cluster), TaskStarts(node.cluster)
        try:
            for i in range(args.pods + 1):
                for mode in (("plain", "injected") if i % 2 else ("injected", "plain")):
                    s = start_one(node, watch, tasks, mode, f"podstart-{mode}-{i:03d}", args.timeout)
                    tag = "warm-up" if i == 0 else f"{i:3d}"
                    side = f"sidecar start {1000 * s.task['sidecar']:5.0f} ms, " if "sidecar" in s.task else ""
                    print(f"{tag:>7} {mode:<8} {side}app start {1000 * s.task['app']:5.0f} ms; watch: app running "
                          f"{1000 * s.watch['app_running']:5.0f} ms, Ready {1000 * s.watch['ready']:5.0f} ms; "
                          f"api: {s.api.get('app_running', 0):.0f} s (load {os.getloadavg()[0]:.2f})", flush=True)
                    if i:
                        samples.append(s)
        finally:
            watch.close()
            tasks.close()
    loads.append(os.getloadavg()[0])
    text, figs = report(samples, loads)
    print("\n" + text)
    path = write_result("podstart_node", {
        "machine": info, "pods_per_mode": args.pods, "loadavg_1m": loads, "figures": figs,
        "units": {"watch": "seconds after the POST, client monotonic clock at the watch event's arrival",
                  "api": "whole seconds after creationTimestamp (the apiserver's 1 s resolution)",
                  "task": "seconds after the POST, containerd's /tasks/start event and log-line times (ns) minus "
                          "the wall clock just before the POST"},
        "samples": [vars(s) for s in samples],
    })
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
