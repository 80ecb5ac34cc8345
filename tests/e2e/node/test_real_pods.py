"""Issue 10 on real pods: the chart installed with helm, the operator pod under its
ServiceAccount holding its Lease, the webhook reached through its Service, native sidecars
injected into a 3-replica app whose real openai SDK reaches the emulator through localhost.

The cluster is :class:`NodeCluster` (real kubelet, containerd, runc, CNI bridge, in a network
namespace of the test run's own). Tests talk to pods through the apiserver (``kubectl exec``,
``logs``), as a platform engineer would.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from modelroute.testing.cluster.nodeapp import WEBHOOK_SELECTOR

from .node_harness import (
    APP_NS,
    FULLNAME,
    RELEASE_NS,
    SIDECAR,
    Node,
    app_pods,
    ask,
    kjson,
    operator_pod,
    ready,
    route,
    wait_for,
)

pytestmark = pytest.mark.e2e



def test_operator_pod_runs_under_the_chart_serviceaccount_and_holds_its_lease(release: Node) -> None:
    def ready_pod() -> dict[str, Any] | None:
        p = operator_pod(release)
        return p if p and ready(p) else None

    pod = wait_for("the operator pod Ready", ready_pod, timeout=120)
    assert pod["status"]["phase"] == "Running"
    assert pod["spec"]["serviceAccountName"] == FULLNAME
    leases = kjson(release, "get", "leases", "-n", RELEASE_NS)["items"]
    holders = [lease["spec"].get("holderIdentity") or "" for lease in leases]
    assert any(pod["metadata"]["name"] in h for h in holders), holders
    # The webhook is registered against the Service (no url): the apiserver dials it through
    # the Service's endpoints (--enable-aggregator-routing; there is no kube-proxy).
    mwc = kjson(release, "get", "mutatingwebhookconfiguration", FULLNAME)
    for hook in mwc["webhooks"]:
        assert hook["clientConfig"].get("service", {}).get("name") == f"{FULLNAME}-webhook", hook["clientConfig"]
        assert "url" not in hook["clientConfig"]
        assert hook["clientConfig"].get("caBundle")  # managed TLS: the webhook wrote its CA
    # The webhook is its own Deployment under its own ServiceAccount (it outlives the operator).
    (webhook,) = kjson(release, "get", "pods", "-n", RELEASE_NS, "-l", WEBHOOK_SELECTOR)["items"]
    assert webhook["spec"]["serviceAccountName"] == f"{FULLNAME}-webhook" and ready(webhook)
    assert webhook["spec"]["containers"][0]["args"][0] == "webhook"


def test_every_replica_gets_the_native_sidecar_and_the_app_starts_after_it(app: Node) -> None:
    pods = app_pods(app)
    assert len(pods) == 3
    for pod in pods:
        init = pod["spec"]["initContainers"]
        assert init[0]["name"] == SIDECAR and init[0]["restartPolicy"] == "Always"
        assert init[0]["image"] == app.image
        statuses = {s["name"]: s for s in pod["status"]["initContainerStatuses"]}
        assert statuses[SIDECAR]["ready"] and statuses[SIDECAR]["started"]
        assert "startupProbe" not in init[0] and "postStart" in init[0]["lifecycle"]
        # The app's first SDK call, made once at start with no retry, got an HTTP answer: the
        # sidecar was listening before the app container started (kubelet's native-sidecar order).
        log = app.cluster.kubectl("logs", "-n", APP_NS, pod["metadata"]["name"], "-c", "app").stdout
        start = next(json.loads(line) for line in log.splitlines() if '"event": "start"' in line)
        assert start["sidecar_answered"] is True, start
        # ... and it was ready (had its config): the sidecar's postStart hook held the app back
        # until /readyz said 200, so the first call got no "no config yet" 503.
        assert start["first"].get("status") != 503 and "no config" not in start["first"].get("error", ""), start
        assert start["base_url"].startswith("http://127.0.0.1:")


def test_the_apps_real_sdk_calls_reach_the_emulator_through_the_sidecar(app: Node) -> None:
    for pod in app_pods(app):
        def served(name: str = pod["metadata"]["name"]) -> dict[str, Any] | None:
            a = ask(app, name)
            return a if a["ok"] else None

        answer = wait_for("the route served", served, timeout=60)
        assert answer["content"].startswith("[openai:gpt-4o-mini]"), answer


def test_a_changed_modelroute_is_served_by_all_three_pods(app: Node) -> None:
    app.cluster.kubectl("apply", "-f", "-", input=json.dumps(route(app, "gpt-4o")))
    for pod in app_pods(app):
        name = pod["metadata"]["name"]
        wait_for(
            f"{name} serving the new model",
            functools.partial(lambda n: str(ask(app, n).get("content", "")).startswith("[openai:gpt-4o]"), name),
            timeout=60,
        )


def test_the_sidecar_runs_read_only_as_uid_10001(app: Node) -> None:
    name = app_pods(app)[0]["metadata"]["name"]
    probe = (
        "import os; print(os.getuid(), os.getgid());\n"
        "try:\n open('/opt/modelroute/x', 'w')\nexcept OSError as e: print('readonly', e.errno)"
    )
    out = app.cluster.kubectl("exec", "-n", APP_NS, name, "-c", SIDECAR, "--", "python", "-c", probe).stdout.split()
    assert out[:2] == ["10001", "10001"], out
    assert out[2:4] == ["readonly", "30"], out  # EROFS
