"""Issue 13: ten sidecars share one ProviderQuota through the operator's leases, and the provider says so.

Real kube-apiserver, real ``modelroute operator`` (rebalancing every second), ten real ``modelroute
sidecar`` processes (two hot, eight idle) and the provider emulator enforcing its own 60-s window of
``LIMIT`` tokens per API key (429 beyond it): its request log is what "the provider saw".

- while the operator runs, over 60 s: no 60-s window at the provider holds more than the limit (and it
  answered no 429), the hot pods' answers use at least 85% of it, each hot pod gets at least limit / (2N);
- the operator is killed: the leases expire, shrink, fall to limit / pods; still within the limit;
- the operator is back and five pods are added: within 10 s every pod holds a lease of a round that saw
  all fifteen, the leases sum to at most the limit, and the provider still sees at most the limit.

Every wait is on an event (a pod serves, a lease is held, the status says so, a pod is answered), except
the 60-s measurement window the issue asks for.
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

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

LIMIT = 12_000       # tokens per minute for the key: the quota's limit and the emulated provider's own
PODS, HOT, ADDED = 10, 2, 5
WORDS = 99           # each request: 99 input words + 1 output word (max_tokens 1) = 100 tokens at the emulator
TOKENS = WORDS + 1
RATE = 3.0           # requests per second each hot pod is asked for: together 36,000 tokens a minute, 3x the limit
LEASE_SECONDS = 5
GRACE_SECONDS = 30   # the operator's shrink step before the fallback share (quotaround.GRACE_SECONDS)
START = 120.0        # seconds a pod may take to serve on a loaded 2-core CI host


def quota(ns: str) -> dict[str, Any]:
    return {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ProviderQuota", "metadata": {"name": "org", "namespace": ns},
            "spec": {"provider": "openai", "apiKey": {"env": "OPENAI_API_KEY"}, "leaseSeconds": LEASE_SECONDS,
                     "limits": {"tokensPerMinute": LIMIT}}}


def quota_report(pod: PodHandle, key: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{pod.ip}:{ADMIN_PORT}/stats", timeout=2) as r:
        doc = json.loads(r.read())
    return dict((doc.get("quotas") or {}).get(key) or {})


def quota_status(cluster: ControlPlane, ns: str) -> dict[str, Any]:
    return dict(cluster.rest().get(f"/apis/modelroute.dev/v1alpha1/namespaces/{ns}/providerquotas/org").get("status") or {})


def provider_log(emu: Emulator) -> list[tuple[float, int]]:
    """(time, status) of every chat request the provider received, in time order."""
    with urllib.request.urlopen(emu.url + "/_emulator/requests?provider=openai", timeout=5) as r:
        doc = json.loads(r.read())
    return sorted((float(x["time"]), int(x["status"])) for x in doc["requests"] if x["path"].endswith("/chat/completions"))


def busiest_window(times: list[float], window: float = 60.0) -> int:
    """The most requests in any ``window`` seconds."""
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def within_limit(emu: Emulator) -> dict[str, int]:
    """What the provider saw, checked: every request answered (no 429), no minute above the limit."""
    log = provider_log(emu)
    statuses = [s for _, s in log]
    assert statuses.count(429) == 0, f"the provider refused {statuses.count(429)} requests (429)"
    peak = busiest_window([t for t, _ in log]) * TOKENS
    assert peak <= LIMIT, f"the provider saw {peak} tokens in a minute, above {LIMIT}"
    return {"requests": len(log), "busiest_minute_tokens": peak}


def _serving(pod: PodHandle) -> Callable[[], bool]:
    return lambda: served_routes(pod) == ["chat"]


def _leased(pod: PodHandle, key: str) -> Callable[[], int]:
    return lambda: int(quota_report(pod, key).get("generation") or 0)


class Load(Workers[PodHandle]):
    """One thread per hot pod, each asking ``RATE`` requests per second; answers (time, tokens) kept per pod."""

    def __init__(self, pods: list[PodHandle]) -> None:
        self.ok: dict[str, list[tuple[float, int]]] = {p.name: [] for p in pods}
        self.refused: dict[str, int] = {p.name: 0 for p in pods}
        super().__init__(pods)

    def work(self, pod: PodHandle) -> None:
        body = json.dumps({"model": "chat", "max_tokens": 1,
                           "messages": [{"role": "user", "content": " ".join(["hello"] * WORDS)}]}).encode()
        next_at = time.monotonic()
        while not self.stopping.is_set():
            req = urllib.request.Request(f"http://{pod.ip}:{APP_PORT}/v1/chat/completions", data=body,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    usage = json.loads(r.read()).get("usage") or {}
                    self.ok[pod.name].append((time.time(), int(usage.get("total_tokens") or 0)))
            except urllib.error.HTTPError as e:
                if e.code == 429:
                    self.refused[pod.name] += 1
            except OSError:
                pass
            next_at = max(next_at + 1 / RATE, time.monotonic() - 1)  # no burst to catch up after a slow answer
            self.stopping.wait(max(0.0, next_at - time.monotonic()))

    def tokens(self, pod: str, since: float, until: float = float("inf")) -> int:
        return sum(n for t, n in self.ok[pod] if since < t <= until)


def test_ten_sidecars_share_one_tpm_quota_within_the_providers_window(
        cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path) -> None:
    install_crd(cluster)
    keys = Keys(tmp_path / "keys")
    op = OperatorProcess(cluster, namespace, keys, tmp_path)
    op.extra_args = ["--rebalance-seconds", "1"]
    key = f"{namespace}/org"
    with emulator(tmp_path, "--tpm", str(LIMIT)) as emu:
        op.start()
        try:
            apply(cluster, namespace, quota(namespace))
            apply(cluster, namespace, modelroute("shared", emu, selector={"matchLabels": {"app": "web"}}))
            pods = [start_sidecar_pod(kubelet, namespace, f"web-{i}", {"app": "web"}, keys) for i in range(PODS)]
            for pod in pods:
                wait_for(f"{pod.name} serves the route", _serving(pod), timeout=START)
            for pod in pods:
                wait_for(f"{pod.name} holds a lease", _leased(pod, key), timeout=30)
            hot = [p.name for p in pods[:HOT]]

            def hot_leases() -> float:
                leases = quota_status(cluster, namespace).get("leases") or []
                return sum(float(x.get("tokensPerMinute") or 0) for x in leases if x["pod"] in hot)

            with Load(pods[:HOT]) as load:
                wait_for("the hot pods' leases hold most of the limit", lambda: hot_leases() >= 0.85 * LIMIT, timeout=60)
                start = time.time()
                time.sleep(60)  # the measurement window the issue asks for ("over 60 s"), not a wait for a state
                end = time.time()
                figures: dict[str, Any] = {"steady": within_limit(emu)}
                answered = {p: load.tokens(p, start, end) for p in hot}
                used = sum(answered.values())
                figures["steady"].update(utilisation=round(used / LIMIT, 3), hot_tokens=answered)
                assert all(n == TOKENS for p in hot for _, n in load.ok[p]), "the provider counted other tokens"
                assert used >= 0.85 * LIMIT, f"utilisation {used}/{LIMIT} over 60 s while demand was 3x the limit"
                for p, n in answered.items():
                    assert n >= LIMIT / (2 * PODS), f"{p} starved: {n} tokens in 60 s"
                shown = cluster.kubectl("get", "providerquota", "org", "-n", namespace).stdout
                assert f"/{LIMIT}" in shown, shown

                op.kill()  # the leases expire, shrink to min(share, limit / pods), then fall to limit / pods
                killed = time.time()
                wait_for("every pod on the fallback share", lambda: all(quota_report(p, key).get("state") == "fallback"
                                                                         for p in pods),
                         timeout=LEASE_SECONDS + GRACE_SECONDS + 30)
                fell = time.time()
                wait_for("the hot pods are answered on the fallback share",
                         lambda: all(load.tokens(p, fell) > 0 for p in hot), timeout=90)
                figures["operator_killed"] = within_limit(emu)
                figures["operator_killed"].update(fallback_after_s=round(fell - killed, 1))

                op.start()  # back, then five more (idle) pods: a round that sees all fifteen leases every pod
                added = [start_sidecar_pod(kubelet, namespace, f"web-{i}", {"app": "web"}, keys)
                         for i in range(PODS, PODS + ADDED)]
                for pod in added:
                    wait_for(f"{pod.name} serves the route", _serving(pod), timeout=START)
                joined = time.time()
                everyone = pods + added

                def rebalanced() -> bool:  # the sidecars hold, and the status shows, a round that saw all fifteen
                    status = quota_status(cluster, namespace)
                    shown = status.get("leases") or []
                    return (status.get("pods") == len(everyone) and len(shown) == len(everyone)
                            and all(int(x.get("generation") or 0) >= joined * 1000 for x in shown)
                            and all(int(quota_report(p, key).get("generation") or 0) >= joined * 1000 for p in everyone))

                wait_for("every pod holds a lease of a round that saw all fifteen", rebalanced, timeout=10)
                figures["rebalanced_after_join_s"] = round(time.time() - joined, 2)
                leases = quota_status(cluster, namespace).get("leases") or []
                assert len(leases) == len(everyone)
                total = sum(float(x.get("tokensPerMinute") or 0) for x in leases)
                assert total <= LIMIT, f"leases sum to {total} tokens a minute, above {LIMIT}: {leases}"
                enforced = sum(float(quota_report(p, key).get("tokensPerMinute") or 0) for p in everyone)
                assert enforced <= LIMIT, f"the sidecars enforce {enforced} tokens a minute together, above {LIMIT}"
                figures["leases_after_join"] = total
                again = time.time()
                wait_for("the hot pods are answered after the join",
                         lambda: all(load.tokens(p, again) >= 5 * TOKENS for p in hot), timeout=60)
            figures["after_join"] = within_limit(emu)
            assert sum(load.refused.values()) > 0  # the hot pods were refused (429 by their sidecar), not the provider
            print("quota e2e figures:", json.dumps(figures))
        finally:
            op.stop()
            print(op.logs()[-5000:])
