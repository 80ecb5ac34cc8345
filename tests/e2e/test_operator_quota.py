"""Issue 6: at 80% of a target's quota on any sidecar, the operator posts one QuotaPressure Event on the ModelRoute.

Real kube-apiserver, real ``modelroute operator`` (polling ``/stats`` every second here) and a
real ``modelroute sidecar`` process, the provider emulator, and the real openai SDK.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer

from .operator_harness import (
    Keys,
    OperatorProcess,
    apply,
    chat,
    emulator,
    install_crd,
    modelroute,
    served_routes,
    start_sidecar_pod,
    wait_for,
)

pytestmark = pytest.mark.e2e


def quota_events(cluster: ControlPlane, ns: str, name: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "events", "-n", ns, "-o", "json",
                          "--field-selector", f"involvedObject.name={name},reason=QuotaPressure").stdout
    return list(json.loads(out).get("items") or [])


def test_quota_pressure_becomes_one_event_on_the_modelroute(
        cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path) -> None:
    install_crd(cluster)
    keys = Keys(tmp_path / "keys")
    op = OperatorProcess(cluster, namespace, keys, tmp_path)
    op.extra_args = ["--quota-poll-seconds", "1"]
    with emulator(tmp_path) as emu:
        op.start()
        try:
            pod = start_sidecar_pod(kubelet, namespace, "web-1", {"app": "web"}, keys)
            route = modelroute("limited", emu, selector={"matchLabels": {"app": "web"}})
            route["spec"]["targets"][0]["limits"] = {"requestsPerMinute": 5}
            apply(cluster, namespace, route)
            wait_for("web-1 serves the route", lambda: served_routes(pod) == ["chat"], timeout=60)
            time.sleep(2)  # polls (every 1 s) while the quota is idle: no event. Polls are not counted anywhere.
            assert quota_events(cluster, namespace, "limited") == []

            for i in range(5):
                assert chat(pod, text=f"hello {i}").startswith("[openai:gpt-4o-mini]")
            (event,) = wait_for("a QuotaPressure event", lambda: quota_events(cluster, namespace, "limited") or None,
                                timeout=30)
            assert event["type"] == "Warning" and event["involvedObject"]["kind"] == "ModelRoute"
            msg = event["message"]
            # 4 of 5 is the crossing; a poll may see 80% or (after the 5th) 100%.
            assert "target primary on pod web-1" in msg and re.search(r"requests at (80|100)%", msg), msg

            time.sleep(3)  # more polls while the pressure lasts: still the one event
            events = quota_events(cluster, namespace, "limited")
            assert len(events) == 1 and (events[0].get("count") or 1) == 1, events
        finally:
            op.stop()
            print(op.logs()[-5000:])
