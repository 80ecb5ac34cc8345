"""``bench/convergence.py --node``: config convergence on real pods of the one-node cluster.

The chart installed with helm, the app Deployment with N replicas (each with its injected
native sidecar) in an injection-enabled namespace. For each spec change the clock starts
just before the PATCH and stops when the last sidecar's ``GET /config`` (polled from inside
the cluster's network namespace) reports the new hash. As many pods as fit: the default 10
start in about a minute on 2 cores; the 50-sidecar figure stays with the kubelet player.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.testing.cluster.binaries import ensure_binaries, ensure_node_binaries
from modelroute.testing.cluster.imagebuild import build_and_import
from modelroute.testing.cluster.netns import http_get
from modelroute.testing.cluster.node import NodeCluster
from modelroute.testing.cluster.nodeapp import (
    Node,
    app_image_of,
    app_manifest,
    install_release,
    ready,
    wait_for,
)

ADMIN_PORT = 8788


def _served(cluster: NodeCluster, ip: str) -> str | None:
    try:
        status, body = http_get(cluster.netns, ip, ADMIN_PORT, "/config", timeout=2)
    except OSError:
        return None
    return str(json.loads(body).get("version")) if status == 200 else None


def _last_served(cluster: NodeCluster, ips: list[str], version: str, limit: float) -> float:
    """Poll every sidecar (one thread each) until it serves ``version``; when the last one did."""
    done: dict[str, float] = {}

    def one(ip: str) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if _served(cluster, ip) == version:
                done[ip] = time.monotonic()
                return
            time.sleep(0.01)

    threads = [threading.Thread(target=one, args=(ip,)) for ip in ips]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(done) < len(ips):
        raise TimeoutError(f"{len(ips) - len(done)} sidecars did not serve {version} within {limit}s")
    return max(done.values())


def _with_secret_key(spec: dict[str, Any]) -> dict[str, Any]:
    """The bench's spec with the provider key from the mounted Secret (pods have no key env)."""
    for target in spec["targets"]:
        target["apiKey"] = {"secretKeyRef": {"name": "llm-keys", "key": "openai"}}
    return spec


def run(pods: int, changes: int, ns: str, bench_spec: Callable[[int], dict[str, Any]]) -> list[float]:
    def spec(i: int) -> dict[str, Any]:
        return _with_secret_key(bench_spec(i))

    def expected_hash(i: int) -> str:
        route = ModelRoute.model_validate({"metadata": {"name": "bench", "namespace": ns}, "spec": spec(i)})
        return SidecarConfig(routes=[route]).hash

    state = Path(tempfile.mkdtemp(prefix="modelroute-bench-node-"))
    print(f"state dir: {state}", flush=True)
    cluster = NodeCluster(state, ensure_binaries(), ensure_node_binaries(), name="modelroute-bench")
    cluster.up()
    try:
        image = build_and_import(cluster)
        node = Node(cluster, image, app_image_of(cluster), "", "")
        install_release(node, (ns,))
        cluster.kubectl("label", "namespace", ns, "modelroute.dev/inject=enabled")
        cluster.kubectl("create", "secret", "generic", "llm-keys", "-n", ns, "--from-literal=openai=sk-bench")
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(
            {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "bench"}, "spec": spec(0)}))
        deployment = app_manifest(node, pods)
        deployment["metadata"]["namespace"] = ns
        started = time.monotonic()
        cluster.kubectl("apply", "-f", "-", input=json.dumps(deployment))

        def all_ready() -> list[str] | None:
            items = json.loads(cluster.kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]
            ips = [p["status"]["podIP"] for p in items if ready(p) and not p["metadata"].get("deletionTimestamp")]
            return ips if len(ips) == pods else None

        ips = wait_for(f"{pods} app pods Ready", all_ready, timeout=600, interval=1)
        print(f"{pods} pods Ready in {time.monotonic() - started:.0f}s", flush=True)
        _last_served(cluster, ips, expected_hash(0), limit=120)
        path = f"/apis/modelroute.dev/v1alpha1/namespaces/{ns}/modelroutes/bench"
        results = []
        for i in range(1, changes + 1):
            time.sleep(0.5)  # let the previous change's pushes settle
            t0 = time.monotonic()
            cluster.rest().patch(path, {"spec": spec(i)})
            results.append(_last_served(cluster, ips, expected_hash(i), limit=30) - t0)
            print(f"change {i:2d}: {1000 * results[-1]:7.1f} ms (last of {pods} real pods)", flush=True)
        ordered = sorted(results)
        print(f"\nconvergence on {pods} real pods, {changes} changes: p50 {1000 * statistics.median(ordered):.0f} ms, "
              f"p90 {1000 * ordered[int(0.9 * (len(ordered) - 1))]:.0f} ms, max {1000 * ordered[-1]:.0f} ms")
        return results
    finally:
        cluster.down()
