"""The operator at fleet scale: 1,000 pods in 50 namespaces with 200 ModelRoutes (issue 15, goal 4).

Real kube-apiserver + etcd on loopback, the real operator as a subprocess, and the pods as API
objects reported Running/Ready by the kubelet player, each on its own loopback address. Behind
each pod IP listens the sidecar's own admin app over the sidecar's own state and auth
(``modelroute.testing.standin``: signatures, audience, replay floor and the swap are the
sidecar's code; only the provider adapters are inert), many per process; ``--real N`` of the pods
are real ``modelroute sidecar`` processes instead, for comparison in the same run.

Per namespace: 20 pods (labels ``app=fleet``, ``shard=s0|s1|s2``) and 4 ModelRoutes: ``all``
(every pod) and ``s0``..``s2`` (a third each), so every pod serves two routes. Phases:

1. cold start: the operator starts with every pod unannotated (verify, then push);
2. single changes: ``--changes`` PATCHes one at a time (prompt version), each timed from the
   PATCH to the swap in each selected pod (the stand-in's clock is the same ``CLOCK_MONOTONIC``);
3. burst: route ``all`` of every namespace patched at once (1,000 pods to push);
4. resync: the operator restarted with nothing changed (pushes counted: there should be none),
   then restarted again after one route changed while it was down (only its pods pushed);
5. black-holed: ``--blackhole`` of the pods (one per namespace at 5 %) stop answering (the
   connection is accepted, nothing is ever sent back); single changes and a burst again,
   timed on the healthy pods.

Operator RSS (VmRSS, VmHWM) and CPU time (utime+stime) are read from /proc per phase.

    .venv/bin/python bench/fleet.py [--pods-per-ns 20] [--namespaces 50] [--changes 20] [--real 30]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelroute.api import signing
from modelroute.api.config import SidecarConfig
from modelroute.api.selection import render_for_pod
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.operator.pods import HASH_ANNOTATION
from modelroute.testing import lifecyclepin
from modelroute.testing.cluster.binaries import ensure_binaries
from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer, PodHandle
from modelroute.testing.cluster.loopback import free_port
from modelroute.testing.cluster.processes import spawn, stop_pid

REPO = Path(__file__).resolve().parents[1]
CRD = REPO / "crds"
ADMIN_PORT = 8788
ROUTES = ("all", "s0", "s1", "s2")
RESULTS = REPO / "bench" / "results"


class FleetPlane(ControlPlane):
    """The local control plane with room for a fleet's watch and write traffic."""

    def apiserver_args(self) -> list[str]:
        return [*super().apiserver_args(), "--max-requests-inflight=800", "--max-mutating-requests-inflight=400"]


def spec(route: str, version: int) -> dict[str, Any]:
    s: dict[str, Any] = {
        "route": route,
        "targets": [{"name": "primary", "provider": "openai", "model": "gpt-4o-mini",
                     "baseUrl": "http://127.0.0.1:9/v1", "apiKey": {"env": "OPENAI_API_KEY"}}],
        "prompt": {"version": f"v{version}", "system": "You are a helpful assistant."},
    }
    if route != "all":
        s["selector"] = {"matchLabels": {"shard": route}}
    else:
        s["selector"] = {"matchLabels": {"app": "fleet"}}
    return s


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Pod:
    namespace: str
    name: str
    labels: dict[str, str]
    handle: PodHandle | None = None
    real: bool = False
    blackholed: bool = False
    owner: int = 0  # stand-in process index

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Fleet:
    """What the bench knows: pods, each route's current version, the stand-in processes."""

    pods: list[Pod]
    versions: dict[tuple[str, str], int] = field(default_factory=dict)  # (ns, route) -> prompt version
    controls: list[int] = field(default_factory=list)  # stand-in control ports

    def expected(self, pod: Pod) -> str:
        routes = [ModelRoute.model_validate({"metadata": {"name": r, "namespace": pod.namespace},
                                             "spec": spec(r, self.versions[(pod.namespace, r)])}) for r in ROUTES]
        return SidecarConfig(routes=list(render_for_pod(routes, pod.labels).config.routes)).hash

    def selected(self, ns: str, route: str) -> list[Pod]:
        return [p for p in self.pods if p.namespace == ns and (route == "all" or p.labels["shard"] == route)]


# -- the operator process ----------------------------------------------------------------------


class Proc:
    """/proc figures of one process: RSS now and peak, CPU seconds."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def rss_mb(self) -> float:
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return 0.0
        m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
        return int(m.group(1)) / 1024 if m else 0.0

    def cpu_s(self) -> float:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_rss = max(self.peak_rss, self.rss_mb())

    def close(self) -> None:
        self._stop.set()


def metrics(port: int) -> str:
    return str(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())


def metric_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for m in re.finditer(rf"^{name}(\{{[^}}]*\}})? ([0-9.e+-]+)$", text, re.M):
        if all(f'{k}="{v}"' in (m.group(1) or "") for k, v in labels.items()):
            total += float(m.group(2))
    return total


def namespaces_reconciled(text: str) -> int:
    return len(re.findall(r"^modelroute_operator_sidecar_pods\{", text, re.M))


LEASE_SECONDS = 15.0


def start_operator(work: Path, plane: ControlPlane, port: int, tag: str) -> tuple[Any, Proc]:
    proc = spawn([sys.executable, "-m", "modelroute.cli", "operator", "--kubeconfig", str(plane.kubeconfig),
                  "--signing-key", str(work / "operator.key"), "--metrics-listen", f"127.0.0.1:{port}",
                  "--lease-namespace", "fleet-00", "--lease-duration", str(LEASE_SECONDS), "--log-level", "info"],
                 log_path=work / f"operator-{tag}.log", tie_to_parent=True)
    return proc, Proc(proc.pid)


# -- the stand-ins and the real sidecars --------------------------------------------------------


def report(fleet: Fleet) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for port in fleet.controls:
        out.update(json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/report", timeout=30).read()))
    return out


def real_applied(pod: Pod) -> tuple[float | None, str | None]:
    """(loadedAt wall clock, version) of a real sidecar's GET /config."""
    assert pod.handle is not None
    try:
        doc = json.loads(urllib.request.urlopen(f"http://{pod.handle.ip}:{ADMIN_PORT}/config", timeout=5).read())
    except OSError:
        return None, None
    return doc.get("loadedAt"), doc.get("version")


def requests_total(rep: dict[str, Any], what: str) -> int:
    return sum(v["requests"].get(what, 0) for v in rep.values())


@dataclass
class Timed:
    """Per pod: seconds from its change's PATCH to the swap; per change: to its last pod."""

    per_pod: list[float] = field(default_factory=list)
    per_change: list[float] = field(default_factory=list)
    real_per_pod: list[float] = field(default_factory=list)
    missing: int = 0

    def summary(self) -> dict[str, float]:
        return {"changes": len(self.per_change), "pods": len(self.per_pod),
                "change_p50_ms": 1000 * percentile(self.per_change, 0.5), "change_p99_ms": 1000 * percentile(self.per_change, 0.99),
                "change_max_ms": 1000 * max(self.per_change, default=float("nan")),
                "pod_p50_ms": 1000 * percentile(self.per_pod, 0.5), "pod_p99_ms": 1000 * percentile(self.per_pod, 0.99),
                "pod_max_ms": 1000 * max(self.per_pod, default=float("nan")),
                "real_pods": len(self.real_per_pod), "real_pod_p50_ms": 1000 * percentile(self.real_per_pod, 0.5),
                "real_pod_p99_ms": 1000 * percentile(self.real_per_pod, 0.99), "missing": self.missing}


def wait_served(fleet: Fleet, changes: list[tuple[str, str, float, float]], timeout: float, timed: Timed) -> None:
    """Wait until every healthy selected pod of each (ns, route, mono t0, wall t0) serves its expected config; record times."""
    want: dict[str, tuple[str, float, float]] = {}  # pod key -> (hash, mono t0, wall t0): the last change touching it
    per_change: dict[int, list[str]] = {}
    for i, (ns, route, t0, w0) in enumerate(changes):
        for p in fleet.selected(ns, route):
            if not p.blackholed:
                want[p.key] = (fleet.expected(p), t0, w0)
                per_change.setdefault(i, []).append(p.key)
    by_key = {p.key: p for p in fleet.pods}
    deadline = time.monotonic() + timeout
    done: dict[str, float] = {}
    while True:
        rep = report(fleet)
        for key, (h, t0, w0) in want.items():
            if key in done:
                continue
            pod = by_key[key]
            if pod.real:
                loaded, version = real_applied(pod)
                if version == h and loaded is not None:
                    done[key] = loaded - w0
            else:
                hits = [t for t, v in rep[key]["applied"] if v == h and t >= t0]
                if hits:
                    done[key] = hits[0] - t0
        if len(done) == len(want) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    timed.missing += len(want) - len(done)
    for key, dt in done.items():
        (timed.real_per_pod if by_key[key].real else timed.per_pod).append(dt)
    for keys in per_change.values():
        got = [done[k] for k in keys if k in done]
        if got and len(got) == len(keys):
            timed.per_change.append(max(got))


def patch_route(plane: ControlPlane, fleet: Fleet, ns: str, route: str) -> tuple[str, str, float, float]:
    fleet.versions[(ns, route)] += 1
    body = {"spec": spec(route, fleet.versions[(ns, route)])}
    t0, w0 = time.monotonic(), time.time()
    plane.rest().patch(f"/apis/modelroute.dev/v1alpha1/namespaces/{ns}/modelroutes/{route}", body)
    return ns, route, t0, w0


def singles(plane: ControlPlane, fleet: Fleet, namespaces: list[str], n: int, label: str) -> Timed:
    timed = Timed()
    for i in range(n):
        ns, route = namespaces[(i * 7) % len(namespaces)], ROUTES[i % len(ROUTES)]
        change = patch_route(plane, fleet, ns, route)
        wait_served(fleet, [change], 30, timed)
        print(f"  {label} change {i + 1:2d} {ns}/{route}: {1000 * timed.per_change[-1] if timed.per_change else float('nan'):7.1f} ms",
              flush=True)
        time.sleep(0.3)
    return timed


def burst(plane: ControlPlane, fleet: Fleet, namespaces: list[str]) -> tuple[Timed, float]:
    timed = Timed()
    with ThreadPoolExecutor(8) as pool:
        changes = list(pool.map(lambda ns: patch_route(plane, fleet, ns, "all"), namespaces))
    first = min(t0 for _, _, t0, _ in changes)
    wait_served(fleet, changes, 60, timed)
    # time from the first PATCH to the last healthy pod's swap
    rep = report(fleet)
    last = 0.0
    for p in fleet.pods:
        if not p.blackholed and not p.real:
            h = fleet.expected(p)
            hits = [t for t, v in rep[p.key]["applied"] if v == h]
            if hits:
                last = max(last, hits[0])
    return timed, last - first


def wait_annotated(plane: ControlPlane, fleet: Fleet, timeout: float = 60) -> float:
    """Wait until every healthy pod's config-hash annotation (the operator's record) is its expected hash; seconds waited."""
    t0 = time.monotonic()
    expected = {p.key: fleet.expected(p) for p in fleet.pods if not p.blackholed}
    rest = plane.rest()
    while time.monotonic() - t0 < timeout:
        stale = 0
        for ns in sorted({p.namespace for p in fleet.pods}):
            for item in rest.get(f"/api/v1/namespaces/{ns}/pods")["items"]:
                key = f"{ns}/{item['metadata']['name']}"
                if key in expected and (item["metadata"].get("annotations") or {}).get(HASH_ANNOTATION) != expected[key]:
                    stale += 1
        if not stale:
            break
        time.sleep(0.5)
    return time.monotonic() - t0


def restart(work: Path, plane: ControlPlane, fleet: Fleet, op: Any, proc: Proc, port: int, tag: str,
            n_ns: int, before_start: Callable[[], None] | None = None) -> tuple[Any, Proc, dict[str, float]]:
    """Stop the operator once its records are written (a steady state), start a new one, time the first reconcile of every namespace."""
    waited = wait_annotated(plane, fleet)
    stop_pid(op.pid, timeout=20)
    proc.close()
    if before_start is not None:
        before_start()
    time.sleep(1.0)
    rep0 = report(fleet)
    t0 = time.monotonic()
    op, proc = start_operator(work, plane, port, tag)
    finished = up = None
    while time.monotonic() - t0 < 120:
        try:
            text = metrics(port)
        except OSError:
            time.sleep(0.05)
            continue
        if up is None and metric_sum(text, "modelroute_operator_leader") >= 1:
            up = time.monotonic() - t0  # the process started and holds the Lease: the rest is the resync proper
        if namespaces_reconciled(text) >= n_ns:
            finished = time.monotonic() - t0
            break
        time.sleep(0.05)
    time.sleep(3.0)  # late pushes would show up here
    rep1 = report(fleet)
    text = metrics(port)
    figures = {
        "resync_s": finished if finished is not None else float("nan"),
        "leader_after_s": up if up is not None else float("nan"),
        "puts": requests_total(rep1, "PUT /config") - requests_total(rep0, "PUT /config"),
        "gets": requests_total(rep1, "GET /config") - requests_total(rep0, "GET /config"),
        "op_pushes_ok": metric_sum(text, "modelroute_operator_pushes_total", outcome="ok"),
        "op_push_outcomes": metric_sum(text, "modelroute_operator_pushes_total"),
        "rss_mb": proc.rss_mb(), "cpu_s": proc.cpu_s(), "annotations_settled_s": waited,
    }
    return op, proc, figures


def row(label: str, s: dict[str, float]) -> str:
    return (f"| {label} | {s['change_p50_ms']:.0f} / {s['change_p99_ms']:.0f} / {s['change_max_ms']:.0f} | "
            f"{s['pod_p50_ms']:.0f} / {s['pod_p99_ms']:.0f} / {s['pod_max_ms']:.0f} | "
            f"{s['real_pod_p50_ms']:.0f} / {s['real_pod_p99_ms']:.0f} ({int(s['real_pods'])}) | {int(s['missing'])} |")


def main() -> int:
    lifecyclepin.pin()  # the route names gpt-4o-mini (shut down 2027-01-14): the operator started here takes a fixed day
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--pods-per-ns", type=int, default=20)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--real", type=int, default=30, help="real sidecar processes among the pods (one per namespace)")
    parser.add_argument("--blackhole", type=float, default=0.05, help="share of pods black-holed in phase 5")
    parser.add_argument("--standin-procs", type=int, default=2)
    parser.add_argument("--lease-duration", type=float, default=60.0,
                        help="the operator's --lease-duration (its default, 15 s, renews within 3 s: see bench/README.md)")
    args = parser.parse_args()
    global LEASE_SECONDS
    LEASE_SECONDS = args.lease_duration

    work = Path(tempfile.mkdtemp(prefix="modelroute-fleet-"))
    print(f"work dir: {work}; load average {os.getloadavg()}", flush=True)
    plane = FleetPlane(work / "cluster", ensure_binaries(), name="modelroute-fleet", tie_to_parent=True)
    plane.up()
    rest = plane.rest()
    kubelet = KubeletPlayer(rest, work / "pods")
    standins: list[Any] = []
    op: Any = None
    proc: Proc | None = None
    results: dict[str, Any] = {"args": vars(args), "load_start": os.getloadavg()}
    try:
        plane.install_crds(CRD)
        namespaces = [f"fleet-{i:02d}" for i in range(args.namespaces)]
        pem = signing.generate_private_key_pem()
        (work / "operator.key").write_bytes(pem)
        (work / "operator.pub").write_bytes(signing.public_key_pem(pem))
        t = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(plane.create_namespace, namespaces))
        fleet = Fleet(pods=[])
        for ns in namespaces:
            for r in ROUTES:
                fleet.versions[(ns, r)] = 0
                rest.create(f"/apis/modelroute.dev/v1alpha1/namespaces/{ns}/modelroutes",
                            {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": r}, "spec": spec(r, 0)})
        every = round(1 / args.blackhole) if args.blackhole > 0 else 0
        for i, ns in enumerate(namespaces):
            for n in range(args.pods_per_ns):
                fleet.pods.append(Pod(ns, f"app-{n:02d}", {"modelroute.dev/sidecar": "true", "app": "fleet", "shard": f"s{n % 3}"},
                                      real=n == args.pods_per_ns - 1 and i < args.real))
        standin_pods = [p for p in fleet.pods if not p.real]
        if every:
            for j, p in enumerate(standin_pods):
                p.owner = j % args.standin_procs
            to_blackhole = [p for j, p in enumerate(standin_pods) if j % every == every // 2]
        else:
            to_blackhole = []

        def create(p: Pod) -> None:
            p.handle = kubelet.create_pod(p.namespace, p.name, labels=p.labels,
                                          annotations={"modelroute.dev/admin-port": str(ADMIN_PORT)},
                                          containers=[{"name": "modelroute", "image": "modelroute.dev/sidecar:dev"}])
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, fleet.pods))
        print(f"{len(fleet.pods)} pods and {len(fleet.versions)} ModelRoutes created in {time.monotonic() - t:.1f}s", flush=True)

        # stand-in processes, then the real sidecars
        env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "PYTHONOPTIMIZE": "2"}
        for k in range(args.standin_procs):
            mine = [p for p in standin_pods if p.owner == k]
            assert all(p.handle for p in mine)
            (work / f"standin-{k}.json").write_text(json.dumps([
                {"namespace": p.namespace, "name": p.name, "uid": p.handle.uid, "ip": p.handle.ip, "port": ADMIN_PORT}  # type: ignore[union-attr]
                for p in mine]))
            port = free_port()
            fleet.controls.append(port)
            standins.append(spawn([sys.executable, "-m", "modelroute.testing.standin", "--pods", str(work / f"standin-{k}.json"),
                                   "--operator-public-key", str(work / "operator.pub"), "--control", f"127.0.0.1:{port}",
                                   "--ready-file", str(work / f"standin-{k}.ready")],
                                  log_path=work / f"standin-{k}.log", env=env, tie_to_parent=True))
        for p in fleet.pods:
            if p.real:
                assert p.handle is not None
                kubelet.start_process(p.handle, [
                    sys.executable, "-m", "modelroute.cli", "sidecar", "--listen", f"{p.handle.ip}:8787",
                    "--admin-listen", f"{p.handle.ip}:{ADMIN_PORT}", "--operator-public-key", str(work / "operator.pub"),
                    "--pod-namespace", p.namespace, "--pod-name", p.name, "--pod-uid", p.handle.uid, "--log-level", "warning",
                ], env={"OPENAI_API_KEY": "sk-bench", "PYTHONOPTIMIZE": "2"})
        deadline = time.monotonic() + 300
        while not all((work / f"standin-{k}.ready").exists() for k in range(args.standin_procs)):
            if time.monotonic() > deadline:
                raise TimeoutError("stand-ins did not start")
            time.sleep(0.2)
        for p in fleet.pods:
            if p.real:
                while True:
                    try:
                        urllib.request.urlopen(f"http://{p.handle.ip}:{ADMIN_PORT}/healthz", timeout=2)  # type: ignore[union-attr]
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda p: kubelet.set_running(p.handle, ready=True), fleet.pods))
        standin_rss = [Proc(s.pid).rss_mb() for s in standins]
        print(f"stand-ins ({args.standin_procs} processes, RSS {', '.join(f'{r:.0f}' for r in standin_rss)} MB) and "
              f"{sum(p.real for p in fleet.pods)} real sidecars up; all pods Ready after {time.monotonic() - t:.1f}s", flush=True)
        results["standin_rss_mb"] = standin_rss

        # 1. cold start
        mport = free_port()
        t0, w0 = time.monotonic(), time.time()
        op, proc = start_operator(work, plane, mport, "1")
        cold = Timed()
        wait_served(fleet, [(ns, "all", t0, w0) for ns in namespaces], 180, cold)
        rep = report(fleet)
        results["cold"] = {"all_pods_s": max(cold.per_change, default=float("nan")), "missing": cold.missing,
                           "puts": requests_total(rep, "PUT /config"), "gets": requests_total(rep, "GET /config"),
                           "rss_mb": proc.rss_mb(), "cpu_s": proc.cpu_s()}
        results["cold"]["annotations_settled_s"] = wait_annotated(plane, fleet, 180)  # the cold start's writes are done
        print(f"1. cold start: every pod serving {results['cold']['all_pods_s']:.1f}s after the operator started "
              f"({results['cold']}); ", flush=True)
        time.sleep(3)

        # 2. single changes, 3. burst
        cpu0 = proc.cpu_s()
        results["singles"] = singles(plane, fleet, namespaces, args.changes, "healthy").summary()
        timed, all_s = burst(plane, fleet, namespaces)
        results["burst"] = {**timed.summary(), "first_patch_to_last_pod_s": all_s}
        results["changes_cpu_s"] = proc.cpu_s() - cpu0
        print(f"2. single changes: {results['singles']}\n3. burst: {results['burst']}", flush=True)

        # 4. resync: nothing changed; then one route changed while the operator was down
        op, proc, results["resync"] = restart(work, plane, fleet, op, proc, mport, "2", len(namespaces))
        print(f"4. resync (nothing changed): {results['resync']}", flush=True)
        changed: list[tuple[str, str, float, float]] = []
        op, proc, results["resync_one_changed"] = restart(
            work, plane, fleet, op, proc, mport, "3", len(namespaces),
            before_start=lambda: changed.append(patch_route(plane, fleet, namespaces[3], "all")))
        results["resync_one_changed"]["selected_pods"] = len(fleet.selected(namespaces[3], "all"))
        print(f"   resync (route {namespaces[3]}/all changed while down): {results['resync_one_changed']}", flush=True)
        wait_served(fleet, changed, 30, Timed())

        # 5. black-holed pods
        if to_blackhole:
            for k, port in enumerate(fleet.controls):
                keys = [p.key for p in to_blackhole if p.owner == k]
                req = urllib.request.Request(f"http://127.0.0.1:{port}/blackhole", data=json.dumps({"pods": keys}).encode(),
                                             method="POST")
                urllib.request.urlopen(req, timeout=60).read()
            for p in to_blackhole:
                p.blackholed = True
            print(f"5. {len(to_blackhole)} pods black-holed", flush=True)
            results["blackholed_pods"] = len(to_blackhole)
            results["bh_singles"] = singles(plane, fleet, namespaces, args.changes, "black-holed").summary()
            timed, all_s = burst(plane, fleet, namespaces)
            results["bh_burst"] = {**timed.summary(), "first_patch_to_last_pod_s": all_s}
            print(f"   single changes: {results['bh_singles']}\n   burst: {results['bh_burst']}", flush=True)
            op, proc, results["bh_resync"] = restart(work, plane, fleet, op, proc, mport, "4", len(namespaces))
            print(f"   resync with black-holed pods: {results['bh_resync']}", flush=True)
            results["bh_after_restart_singles"] = singles(plane, fleet, namespaces, max(5, args.changes // 4), "after restart").summary()
        results["operator_rss_mb"] = proc.rss_mb()
        results["operator_peak_rss_mb"] = proc.peak_rss
        results["load_end"] = os.getloadavg()
        print_table(results)
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"fleet-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.write_text(json.dumps(results, indent=2))
        print(f"results: {out}")
        return 0
    finally:
        if op is not None and op.poll() is None:
            stop_pid(op.pid, timeout=10)
        for s in standins:
            if s.poll() is None:
                stop_pid(s.pid, timeout=10)
        kubelet.close()
        plane.down()


def print_table(r: dict[str, Any]) -> None:
    print("\n| run | per change: p50 / p99 / max ms | per pod: p50 / p99 / max ms | real sidecars: p50 / p99 ms (n) | missing |")
    print("|---|---|---|---|---|")
    for label, key in (("single changes", "singles"), ("burst: all 50 namespaces", "burst"),
                       ("5 % black-holed: single changes", "bh_singles"), ("5 % black-holed: burst", "bh_burst"),
                       ("black-holed, after a restart", "bh_after_restart_singles")):
        if key in r:
            print(row(label, r[key]))
    for key in ("resync", "resync_one_changed", "bh_resync"):
        if key in r:
            s = r[key]
            print(f"{key}: {s['resync_s']:.2f} s from exec (leader after {s['leader_after_s']:.2f} s), {s['puts']} PUT /config, {s['gets']} GET /config, "
                  f"operator RSS {s['rss_mb']:.0f} MB, CPU {s['cpu_s']:.1f} s")
    print(f"operator: RSS {r.get('operator_rss_mb', 0):.0f} MB (peak {r.get('operator_peak_rss_mb', 0):.0f}), "
          f"CPU during changes {r.get('changes_cpu_s', 0):.1f} s; burst first PATCH -> last pod "
          f"{r.get('burst', {}).get('first_patch_to_last_pod_s', float('nan')):.2f} s")


if __name__ == "__main__":
    sys.exit(main())
