"""Config convergence benchmark: from a ModelRoute change to the last sidecar serving it.

Real kube-apiserver + etcd (a throwaway control plane), the real operator as a subprocess,
and N real ``modelroute sidecar`` processes (default 50) started by the kubelet player on
their own loopback IPs. For each of M spec changes (default 20) the clock starts just
before the PATCH is sent and stops when the last sidecar's ``GET /config`` reports the new
hash. The operator's convergence histogram marks the last ack (polled every 10 ms);
then every sidecar's ``GET /config`` is checked to report the new hash (computed locally).

    .venv/bin/python bench/convergence.py [--pods 50] [--changes 20]
    .venv/bin/python bench/convergence.py --node [--pods 10]   # real pods (convergence_node.py)

Prints p50/p90/p99/max and the operator's own histogram count/sum.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from modelroute.api import signing
from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.testing import lifecyclepin
from modelroute.testing.cluster.binaries import ensure_binaries
from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer, PodHandle
from modelroute.testing.cluster.loopback import free_port
from modelroute.testing.cluster.processes import spawn, stop_pid

REPO = Path(__file__).resolve().parents[1]
CRD = REPO / "crds"  # every generated CRD: ModelRoute and ProviderQuota
NS = "bench"
ADMIN_PORT = 8788


CHANGES = {
    # only the prompt's version label: the sidecar keeps its SDK clients
    "prompt-version": lambda i: {"version": f"v{i}", "system": "You are a helpful assistant."},
    # the system prompt: the sidecar binds a new view to its existing SDK client (runtime.py)
    "system-prompt": lambda i: {"version": "v1", "system": f"You are assistant number {i}."},
}
CHANGE = "prompt-version"


def spec(i: int) -> dict[str, Any]:
    return {
        "route": "chat",
        "targets": [{"name": "primary", "provider": "openai", "model": "gpt-4o-mini",
                     "baseUrl": "http://127.0.0.1:9/v1", "apiKey": {"env": "OPENAI_API_KEY"}}],
        "prompt": CHANGES[CHANGE](i),
    }


def expected_hash(i: int) -> str:
    route = ModelRoute.model_validate({"metadata": {"name": "bench", "namespace": NS}, "spec": spec(i)})
    return SidecarConfig(routes=[route]).hash


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def wait_all(session: aiohttp.ClientSession, pods: list[PodHandle], version: str, limit: float = 30.0,
                   interval: float = 0.005) -> float:
    """Poll every sidecar until it serves ``version``; the monotonic time the last one did."""
    done_at: dict[str, float] = {}

    async def one(pod: PodHandle) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://{pod.ip}:{ADMIN_PORT}/config") as r:
                    if (await r.json()).get("version") == version:
                        done_at[pod.name] = time.monotonic()
                        return
            except (aiohttp.ClientError, TimeoutError, ValueError):
                pass
            await asyncio.sleep(interval)
        raise TimeoutError(f"{pod.name} did not serve {version} within {limit}s")

    await asyncio.gather(*(one(p) for p in pods))
    return max(done_at.values())


def operator_histogram(port: int) -> tuple[float, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    count = float(re.search(r"^modelroute_operator_convergence_seconds_count ([0-9.e+-]+)$", text, re.M).group(1))  # type: ignore[union-attr]
    total = float(re.search(r"^modelroute_operator_convergence_seconds_sum ([0-9.e+-]+)$", text, re.M).group(1))  # type: ignore[union-attr]
    return count, total


async def measure(plane: ControlPlane, pods: list[PodHandle], changes: int, metrics_port: int) -> list[tuple[float, float]]:
    """Per change: (bench clock: PATCH sent -> operator reports the last ack, operator clock: event -> last ack).

    The operator's histogram moves once the last sidecar acknowledged (a sidecar answers a push
    only after it swapped the config in), so the bench watches that one cheap endpoint instead
    of hammering 50 sidecars; afterwards every sidecar is checked to serve the new hash.
    """
    rest = plane.rest()
    path = f"/apis/modelroute.dev/v1alpha1/namespaces/{NS}/modelroutes/bench"
    results: list[tuple[float, float]] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        await wait_all(session, pods, expected_hash(0), limit=180, interval=0.25)
        await asyncio.sleep(2)
        for i in range(1, changes + 1):
            await asyncio.sleep(0.5)
            count0, sum0 = await asyncio.to_thread(operator_histogram, metrics_port)
            started = time.monotonic()
            await asyncio.to_thread(rest.patch, path, {"spec": spec(i)})
            while True:
                count, total = await asyncio.to_thread(operator_histogram, metrics_port)
                if count > count0:
                    finished = time.monotonic()
                    break
                if time.monotonic() - started > 30:
                    raise TimeoutError(f"change {i} did not converge in 30s")
                await asyncio.sleep(0.01)
            await wait_all(session, pods, expected_hash(i), limit=5, interval=0.05)  # every sidecar serves it
            results.append((finished - started, (total - sum0) / (count - count0)))
            print(f"change {i:2d}: {1000 * (finished - started):7.1f} ms (operator: {1000 * results[-1][1]:.1f} ms)", flush=True)
    return results


def main() -> int:
    lifecyclepin.pin()  # the route names gpt-4o-mini (shut down 2027-01-14): the operator started here takes a fixed day
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=None, help="default 50 (player), 10 with --node")
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--change", choices=sorted(CHANGES), default="prompt-version",
                        help="what each change edits (system-prompt re-binds params/prompt to the kept SDK client)")
    parser.add_argument("--node", action="store_true", help="real pods on the one-node cluster (default 10)")
    args = parser.parse_args()
    global CHANGE
    CHANGE = args.change
    if args.node:
        sys.path.insert(0, str(Path(__file__).parent))
        from convergence_node import run

        run(args.pods or 10, args.changes, NS, spec)
        return 0
    args.pods = args.pods or 50

    work = Path(tempfile.mkdtemp(prefix="modelroute-bench-"))
    print(f"work dir: {work}", flush=True)
    plane = ControlPlane(work / "cluster", ensure_binaries(), name="modelroute-bench", tie_to_parent=True)
    plane.up()
    kubelet = KubeletPlayer(plane.rest(), work / "pods")
    operator = None
    try:
        plane.install_crds(CRD)
        plane.create_namespace(NS)
        pem = signing.generate_private_key_pem()
        (work / "operator.key").write_bytes(pem)
        (work / "operator.pub").write_bytes(signing.public_key_pem(pem))
        metrics_port = free_port()
        operator = spawn([sys.executable, "-m", "modelroute.cli", "operator", "--kubeconfig", str(plane.kubeconfig),
                          "--namespace", NS, "--signing-key", str(work / "operator.key"),
                          "--metrics-listen", f"127.0.0.1:{metrics_port}", "--lease-namespace", NS],
                         log_path=work / "operator.log", tie_to_parent=True)
        plane.kubectl("apply", "-n", NS, "-f", "-", input=json.dumps(
            {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "bench"}, "spec": spec(0)}))

        print(f"starting {args.pods} sidecar processes ...", flush=True)
        t0 = time.monotonic()
        pods: list[PodHandle] = []
        for n in range(args.pods):
            h = kubelet.create_pod(
                NS, f"app-{n:03d}", labels={"modelroute.dev/sidecar": "true", "app": "bench"},
                annotations={"modelroute.dev/admin-port": str(ADMIN_PORT)},
                containers=[{"name": "modelroute", "image": "modelroute.dev/sidecar:dev",
                             "readinessProbe": {"httpGet": {"path": "/readyz", "port": ADMIN_PORT}}}],
                volumes=[{"name": "routes", "configMap": {"name": "modelroute-routes", "optional": True}},
                         {"name": "podinfo", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}],
            )
            kubelet.start_process(h, [
                sys.executable, "-m", "modelroute.cli", "sidecar", "--listen", f"{h.ip}:8787",
                "--admin-listen", f"{h.ip}:{ADMIN_PORT}", "--operator-public-key", str(work / "operator.pub"),
                "--bundle-dir", str(h.volume_path("routes")), "--pod-labels-file", str(h.volume_path("podinfo") / "labels"),
                "--pod-namespace", NS, "--pod-name", h.name, "--log-level", "warning",
            ], env={"OPENAI_API_KEY": "sk-bench"})
            kubelet.set_running(h, ready=False)
            pods.append(h)
        kubelet.start_background_sync(period=1.0)
        results = asyncio.run(measure(plane, pods, args.changes, metrics_port))
        print(f"(sidecars up and serving after {time.monotonic() - t0:.1f}s)")
        ms = [1000 * r for r, _ in results]
        op = [1000 * o for _, o in results]
        print(f"\nconvergence over {len(ms)} changes ({args.change}), {args.pods} sidecar processes "
              f"(PATCH sent -> last sidecar acknowledged the new config):")
        print(f"  p50 {percentile(ms, 0.5):.1f} ms   p90 {percentile(ms, 0.9):.1f} ms   "
              f"p99 {percentile(ms, 0.99):.1f} ms   max {max(ms):.1f} ms   mean {statistics.mean(ms):.1f} ms")
        print(f"  operator's own histogram (watch event received -> last ack): "
              f"p50 {percentile(op, 0.5):.1f} ms   p99 {percentile(op, 0.99):.1f} ms")
        return 0
    finally:
        kubelet.close()
        if operator is not None and operator.poll() is None:
            stop_pid(operator.pid, timeout=10)
        plane.down()


if __name__ == "__main__":
    sys.exit(main())
