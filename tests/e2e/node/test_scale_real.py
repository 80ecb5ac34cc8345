"""Issue 10 on real pods: with the operator scaled to 0 the app is scaled up, and the new pods
still get the native sidecar (the webhook is a Deployment of its own) and serve their routes
from the signed bundle ConfigMap (nothing can push to them: there is no operator).

Runs after the rollout tests and before the uninstall test (file order); it puts the operator
and the app back as it found them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelroute.testing.cluster.netns import http_get
from modelroute.testing.cluster.nodeapp import OPERATOR_SELECTOR, WEBHOOK_SELECTOR

from .node_harness import (
    APP_NS,
    FULLNAME,
    RELEASE_NS,
    SIDECAR,
    Node,
    app_pods,
    kjson,
    model_of,
    operator_pod,
    pod_get,
    ready,
    route,
    wait_for,
)

pytestmark = pytest.mark.e2e

MODEL = "gpt-5.4"  # no earlier test routes to it: an answer with it is this test's config
ADMIN_PORT = 8788  # the chart's sidecar.adminPort


def _serves(node: Node, pod: dict[str, Any]) -> str | None:
    return model_of(pod_get(node, pod["status"]["podIP"], "/ask?model=chat"))


def _config_source(node: Node, pod: dict[str, Any]) -> Any:
    status, body = http_get(node.cluster.netns, pod["status"]["podIP"], ADMIN_PORT, "/readyz", timeout=10)
    assert status == 200, (status, body[:300])
    return json.loads(body).get("source")


def test_with_the_operator_at_zero_new_pods_get_the_sidecar_and_serve_the_bundle(app: Node) -> None:
    c = app.cluster
    c.kubectl("apply", "-f", "-", input=json.dumps(route(app, MODEL)))
    wait_for(f"every app pod serving {MODEL}", lambda: all(_serves(app, p) == MODEL for p in app_pods(app)), timeout=120)
    wait_for(f"{MODEL} in the bundle ConfigMap", lambda: MODEL in json.dumps(
        kjson(app, "get", "configmap", "modelroute-routes", "-n", APP_NS).get("data") or {}), timeout=60)
    before = {p["metadata"]["name"] for p in app_pods(app)}
    assert len(before) == 3, before
    c.kubectl("scale", "deployment", f"{FULLNAME}-operator", "-n", RELEASE_NS, "--replicas=0")
    try:
        # A watch until the operator pod is gone (terminating pods count until deleted); kubectl
        # says "no matching resources" if it is gone already, hence the check after it.
        c.kubectl("wait", "--for=delete", "pod", "-n", RELEASE_NS, "-l", OPERATOR_SELECTOR, "--timeout=120s",
                  timeout=150, check=False)
        wait_for("no operator pod", lambda: kjson(app, "get", "pods", "-n", RELEASE_NS, "-l", OPERATOR_SELECTOR)["items"] == [],
                 timeout=30)
        assert [ready(p) for p in kjson(app, "get", "pods", "-n", RELEASE_NS, "-l", WEBHOOK_SELECTOR)["items"]] == [True]

        c.kubectl("scale", "deployment", "chat-app", "-n", APP_NS, "--replicas=5")

        def new_ready() -> list[dict[str, Any]] | None:
            fresh = [p for p in app_pods(app) if p["metadata"]["name"] not in before]
            return fresh if len(fresh) == 2 and all(ready(p) for p in fresh) else None

        try:
            fresh = wait_for("2 new app pods Ready with the operator at 0", new_ready, timeout=180)
        finally:
            events = c.kubectl("get", "events", "-n", APP_NS, "--sort-by=.lastTimestamp", check=False).stdout
            print(events[-4000:])
        for pod in fresh:
            init = pod["spec"]["initContainers"]
            assert init[0]["name"] == SIDECAR and init[0]["restartPolicy"] == "Always", init
            statuses = {s["name"]: s for s in pod["status"]["initContainerStatuses"]}
            assert statuses[SIDECAR]["ready"] and statuses[SIDECAR]["started"]
            # The app's real SDK call, through the sidecar, reaches the emulator with this route...
            assert _serves(app, pod) == MODEL
            # ...whose config the sidecar loaded from the mounted bundle ConfigMap (no push: no operator).
            assert _config_source(app, pod) == "bundle"
        assert kjson(app, "get", "pods", "-n", RELEASE_NS, "-l", OPERATOR_SELECTOR)["items"] == []
    finally:
        c.kubectl("scale", "deployment", "chat-app", "-n", APP_NS, "--replicas=3")
        c.kubectl("scale", "deployment", f"{FULLNAME}-operator", "-n", RELEASE_NS, "--replicas=1")
        wait_for("the operator pod back and Ready", lambda: ready(operator_pod(app)), timeout=180)
        wait_for("the app back at 3 pods", lambda: len(app_pods(app)) == 3, timeout=120)
