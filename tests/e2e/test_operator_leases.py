"""Issue 13: sidecars share one ProviderQuota through the operator's leases.

Real kube-apiserver, real ``modelroute operator`` (rebalancing every second), six real
``modelroute sidecar`` processes (two hot, four idle) and the provider emulator, whose request log
is what "the provider saw". The quota is 120 requests per minute; the hot pods alone want 360.

- while the operator runs: no 60-s window at the provider holds more than the limit, the last
  minute of load uses at least 85% of it, and each hot pod gets at least limit / (2N);
- the operator is killed: the leases expire, shrink, and the total still stays within the limit;
- the operator is back and five pods are added: each holds a lease within 10 s, still within the limit;
- ``kubectl get providerquota`` shows used/limit.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer, PodHandle
from modelroute.testing.workers import Workers

from .operator_harness import (
    ADMIN_PORT,
    APP_PORT,
    Emulator,
    Keys,
    OperatorProcess,
    apply,
    emulator,
    install_crd,
    modelroute,
    served_routes,
    start_sidecar_pod,
    wait_for,
)

pytestmark = pytest.mark.e2e

LIMIT = 120          # requests per minute, all pods together
PODS = 6
HOT = 2
RATE = 3.0           # requests per second each hot pod is asked for (3x what the limit allows them together)


def quota(ns: str) -> dict[str, Any]:
    return {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ProviderQuota", "metadata": {"name": "org", "namespace": ns},
            "spec": {"provider": "openai", "apiKey": {"env": "OPENAI_API_KEY"}, "leaseSeconds": 5,
                     "limits": {"requestsPerMinute": LIMIT}}}


def held_generation(pod: PodHandle, key: str) -> int:
    with urllib.request.urlopen(f"http://{pod.ip}:{ADMIN_PORT}/stats", timeout=2) as r:
        doc = json.loads(r.read())
    return int(((doc.get("quotas") or {}).get(key) or {}).get("generation") or 0)


def provider_times(emu: Emulator) -> list[float]:
    """When the provider accepted each chat request."""
    with urllib.request.urlopen(emu.url + "/_emulator/requests?provider=openai", timeout=5) as r:
        doc = json.loads(r.read())
    return sorted(float(x["time"]) for x in doc["requests"] if x.get("status") == 200)


def busiest_window(times: list[float], window: float = 60.0) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def _serving(pod: PodHandle) -> Callable[[], bool]:
    return lambda: served_routes(pod) == ["chat"]


def _leased(pod: PodHandle, key: str) -> Callable[[], int | None]:
    return lambda: held_generation(pod, key) or None


class Load(Workers[PodHandle]):
    """One thread per hot pod, each asking ``RATE`` requests per second; answers counted per pod."""

    def __init__(self, pods: list[PodHandle]) -> None:
        self.pods = pods
        self.ok: dict[str, list[float]] = {p.name: [] for p in pods}
        self.refused: dict[str, int] = {p.name: 0 for p in pods}
        super().__init__(pods)

    def work(self, pod: PodHandle) -> None:
        body = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hello"}]}).encode()
        next_at = time.monotonic()
        while not self.stopping.is_set():
            req = urllib.request.Request(f"http://{pod.ip}:{APP_PORT}/v1/chat/completions", data=body,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10):
                    self.ok[pod.name].append(time.time())
            except urllib.error.HTTPError as e:
                if e.code == 429:
                    self.refused[pod.name] += 1
            except OSError:
                pass
            next_at += 1 / RATE
            self.stopping.wait(max(0.0, next_at - time.monotonic()))


def test_sidecars_share_one_quota_within_its_limit(
        cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path) -> None:
    install_crd(cluster)
    keys = Keys(tmp_path / "keys")
    op = OperatorProcess(cluster, namespace, keys, tmp_path)
    op.extra_args = ["--rebalance-seconds", "1"]
    key = f"{namespace}/org"
    with emulator(tmp_path) as emu:
        op.start()
        try:
            apply(cluster, namespace, quota(namespace))
            apply(cluster, namespace, modelroute("shared", emu, selector={"matchLabels": {"app": "web"}}))
            pods = [start_sidecar_pod(kubelet, namespace, f"web-{i}", {"app": "web"}, keys) for i in range(PODS)]
            for pod in pods:
                wait_for(f"{pod.name} serves the route", _serving(pod), timeout=60)
            for pod in pods:
                wait_for(f"{pod.name} holds a lease", _leased(pod, key), timeout=30)

            with Load(pods[:HOT]) as load:
                started = time.time()
                time.sleep(75)
                times = provider_times(emu)
                assert busiest_window(times) <= LIMIT, "the provider saw more than the limit in a minute"
                last_minute = [t for t in times if t > time.time() - 60]
                assert len(last_minute) >= 0.85 * LIMIT, f"utilisation {len(last_minute)}/{LIMIT} in the last minute"
                for pod in pods[:HOT]:
                    got = [t for t in load.ok[pod.name] if t > started + 15]
                    assert len(got) >= LIMIT / (2 * PODS), f"{pod.name} starved: {len(got)} answers"
                shown = cluster.kubectl("get", "providerquota", "org", "-n", namespace).stdout
                assert f"/{LIMIT}" in shown, shown

                figures = {"busiest_minute": busiest_window(times), "last_minute": len(last_minute),
                           "hot_answers": {p.name: len(load.ok[p.name]) for p in pods[:HOT]}}

                op.kill()  # the leases expire, shrink to min(share, limit / pods), then limit / pods
                time.sleep(45)
                times = provider_times(emu)
                assert busiest_window(times) <= LIMIT, "over the limit after the operator died"
                figures["after_kill_last_40s"] = len([t for t in times if t > time.time() - 40])

                op.start()  # back, then five more pods: each holds a lease within 10 s of serving
                added = [start_sidecar_pod(kubelet, namespace, f"web-{i}", {"app": "web"}, keys) for i in range(PODS, PODS + 5)]
                waits = []
                for pod in added:
                    wait_for(f"{pod.name} serves the route", _serving(pod), timeout=60)
                    ready = time.monotonic()
                    wait_for(f"{pod.name} holds a lease", _leased(pod, key), timeout=10)
                    waits.append(time.monotonic() - ready)
                figures["lease_after_join_s"] = round(max(waits), 2)
                time.sleep(20)
            times = provider_times(emu)
            assert busiest_window(times) <= LIMIT, "over the limit after pods joined"
            assert sum(load.refused.values()) > 0  # the hot pods were refused (429) rather than overshooting
            figures["provider_total"] = len(times)
            print("quota e2e figures:", json.dumps(figures))
        finally:
            op.stop()
            print(op.logs()[-5000:])
