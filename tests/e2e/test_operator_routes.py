"""Issue 3, e2e 2-4: routes reach exactly the selected sidecars; changes, label moves, deletes, conflicts.

Real kube-apiserver, real ``modelroute operator`` and ``modelroute sidecar`` processes (started by
the kubelet player on per-pod loopback IPs), the provider emulator, and the real openai SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer, PodHandle

from . import operator_harness as oh

pytestmark = pytest.mark.e2e
WEB = {"matchLabels": {"app": "web"}}


@dataclass
class Env:
    cluster: ControlPlane
    ns: str
    keys: oh.Keys
    operator: oh.OperatorProcess
    emu: oh.Emulator
    kubelet: KubeletPlayer
    pods: dict[str, PodHandle]


@pytest.fixture
def env(cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path) -> Iterator[Env]:
    oh.install_crd(cluster)
    keys = oh.Keys(tmp_path / "keys")
    op = oh.OperatorProcess(cluster, namespace, keys, tmp_path)
    with oh.emulator(tmp_path) as emu:
        op.start()
        pods = {
            "web-1": oh.start_sidecar_pod(kubelet, namespace, "web-1", {"app": "web"}, keys),
            "web-2": oh.start_sidecar_pod(kubelet, namespace, "web-2", {"app": "web"}, keys),
            "db-1": oh.start_sidecar_pod(kubelet, namespace, "db-1", {"app": "db"}, keys),
        }
        try:
            yield Env(cluster, namespace, keys, op, emu, kubelet, pods)
        finally:
            op.stop()
            print(op.logs()[-5000:])


def answers_from(h: PodHandle, prefix: str) -> bool:
    return oh.chat(h).startswith(prefix)


def serves_no_route(h: PodHandle) -> bool:
    return oh.served_routes(h) == []


def synced(env: Env, name: str, selected: int) -> dict[str, Any] | None:
    mr = oh.get_route(env.cluster, env.ns, name)
    st = mr.get("status") or {}
    ok = st.get("pods") == {"selected": selected, "synced": selected, "failed": 0} and \
        (oh.condition(mr, "Synced") or {}).get("status") == "True" and st.get("observedGeneration") == mr["metadata"]["generation"]
    return mr if ok else None


def test_route_reaches_the_two_selected_sidecars_only(env: Env) -> None:
    oh.apply(env.cluster, env.ns, oh.modelroute("support", env.emu, selector=WEB))
    mr = oh.wait_for("status selected 2, synced 2", lambda: synced(env, "support", 2), timeout=60)
    assert mr["status"]["phase"] == "Ready"
    assert mr["status"]["primaryTarget"] == "openai/gpt-4o-mini"
    assert oh.must_condition(mr, "Ready")["status"] == "True"
    for name in ("web-1", "web-2"):
        assert oh.chat(env.pods[name]).startswith("[openai:gpt-4o-mini]")
    assert oh.route_missing(env.pods["db-1"])
    # kubectl get shows the printer columns.
    out = env.cluster.kubectl("get", "mr", "-n", env.ns).stdout
    assert "support" in out and "openai/gpt-4o-mini" in out and "Ready" in out
    # Events say what happened. (A sidecar may already serve the route from the bundle before the
    # first push, in which case the operator verifies instead of pushing: no ConfigPushed then.)
    def ready_event() -> str | None:
        out = env.cluster.kubectl("get", "events", "-n", env.ns, "--field-selector", "involvedObject.name=support").stdout
        return out if "Ready" in out else None

    assert "is served by all 2 selected pods" in oh.wait_for("a Ready event", ready_event)


def test_spec_change_label_moves_and_delete(env: Env) -> None:
    oh.apply(env.cluster, env.ns, oh.modelroute("support", env.emu, selector=WEB))
    oh.wait_for("first version served", lambda: synced(env, "support", 2), timeout=60)

    # A spec change reaches both sidecars.
    oh.apply(env.cluster, env.ns, oh.modelroute("support", env.emu, selector=WEB, model="gpt-4o"))
    for name in ("web-1", "web-2"):
        oh.wait_for(f"{name} serves gpt-4o", partial(answers_from, env.pods[name], "[openai:gpt-4o]"), timeout=30)
    oh.wait_for("status after the change", lambda: synced(env, "support", 2), timeout=30)
    events = env.cluster.kubectl("get", "events", "-n", env.ns, "--field-selector", "involvedObject.name=support").stdout
    assert "ConfigPushed" in events and "to 2 pods (web-1, web-2)" in events

    # A label change adds the route on db-1 and removes it from web-2.
    env.cluster.kubectl("label", "pod", "db-1", "-n", env.ns, "app=web", "--overwrite")
    env.cluster.kubectl("label", "pod", "web-2", "-n", env.ns, "app=batch", "--overwrite")
    oh.wait_for("db-1 gains the route", lambda: oh.served_routes(env.pods["db-1"]) == ["chat"], timeout=30)
    oh.wait_for("web-2 loses the route", lambda: oh.served_routes(env.pods["web-2"]) == [], timeout=30)
    assert oh.chat(env.pods["db-1"]).startswith("[openai:gpt-4o]")
    assert oh.route_missing(env.pods["web-2"])
    oh.wait_for("status follows the labels", lambda: synced(env, "support", 2), timeout=30)

    # Deleting the ModelRoute removes it everywhere.
    env.cluster.kubectl("delete", "mr", "support", "-n", env.ns)
    for name in ("web-1", "db-1"):
        oh.wait_for(f"{name} drops the route", partial(serves_no_route, env.pods[name]), timeout=30)
        assert oh.route_missing(env.pods[name])


def test_conflicting_route_gets_conflict_and_changes_nothing(env: Env) -> None:
    oh.apply(env.cluster, env.ns, oh.modelroute("first", env.emu, selector=WEB))
    oh.wait_for("first served", lambda: synced(env, "first", 2), timeout=60)
    before = {n: oh.served_version(h) for n, h in env.pods.items()}

    oh.apply(env.cluster, env.ns, oh.modelroute("second", env.emu, selector=WEB, model="gpt-4o"))

    def conflict() -> dict[str, Any] | None:
        mr = oh.get_route(env.cluster, env.ns, "second")
        c = oh.condition(mr, "Conflict")
        return mr if c and c["status"] == "True" else None

    mr = oh.wait_for("Conflict on the second route", conflict, timeout=30)
    message = oh.must_condition(mr, "Conflict")["message"]
    assert f"already served by ModelRoute {env.ns}/first" in message and "'chat'" in message
    assert mr["status"]["phase"] == "Conflict"
    assert {n: oh.served_version(h) for n, h in env.pods.items()} == before
    for name in ("web-1", "web-2"):
        assert oh.chat(env.pods[name]).startswith("[openai:gpt-4o-mini]")
    assert oh.get_route(env.cluster, env.ns, "first")["status"]["phase"] == "Ready"
    events = env.cluster.kubectl("get", "events", "-n", env.ns, "--field-selector", "involvedObject.name=second").stdout
    assert "RouteNameConflict" in events


def test_invalid_update_keeps_serving_the_last_good_version(env: Env) -> None:
    oh.apply(env.cluster, env.ns, oh.modelroute("support", env.emu, selector=WEB))
    oh.wait_for("first version served", lambda: synced(env, "support", 2), timeout=60)
    before = oh.served_version(env.pods["web-1"])
    bad = oh.modelroute("support", env.emu, selector=WEB, model="gpt-4o")
    bad["spec"]["targets"][0]["apiKey"] = {"secretKeyRef": {"name": "openai-key", "key": "apiKey"}}
    oh.apply(env.cluster, env.ns, bad)

    def invalid() -> dict[str, object] | None:
        mr = oh.get_route(env.cluster, env.ns, "support")
        return mr if (mr.get("status") or {}).get("phase") == "Invalid" else None

    mr = oh.wait_for("Invalid phase", invalid, timeout=30)
    assert "Secret 'openai-key' does not exist" in oh.must_condition(mr, "Ready")["message"]
    assert oh.served_version(env.pods["web-1"]) == before
    assert oh.chat(env.pods["web-1"]).startswith("[openai:gpt-4o-mini]")
