"""Issue 10, last on the session's cluster: ``helm upgrade`` with a values change rolls the
operator, then ``helm uninstall`` leaves no webhook and no stuck finalizer, and pods can
still be created in the namespace that asked for injection."""

from __future__ import annotations

import json

import pytest

from .node_harness import (
    APP_NS,
    CHART,
    FULLNAME,
    RELEASE,
    RELEASE_NS,
    SIDECAR,
    Node,
    app_pods,
    kjson,
    operator_pod,
    ready,
    wait_for,
)

pytestmark = pytest.mark.e2e


def test_helm_upgrade_with_a_values_change_rolls_the_operator(app: Node) -> None:
    first = operator_pod(app)["metadata"]["name"]
    app.cluster.helm("upgrade", RELEASE, str(CHART), "-n", RELEASE_NS, "--reuse-values",
                     "--set", "operator.logLevel=debug", "--wait", "--timeout=240s", timeout=300)
    pod = wait_for("the upgraded operator pod Ready", lambda: (p := operator_pod(app))["metadata"]["name"] != first
                   and ready(p) and p, timeout=120)
    args = " ".join(pod["spec"]["containers"][0].get("args") or [])
    assert "debug" in args, args


def test_helm_uninstall_leaves_no_webhook_no_stuck_finalizer_and_pods_still_start(app: Node) -> None:
    c = app.cluster
    c.helm("uninstall", RELEASE, "-n", RELEASE_NS, "--wait", "--timeout=120s", timeout=180)
    hooks = kjson(app, "get", "mutatingwebhookconfigurations")["items"]
    assert not [h for h in hooks if h["metadata"]["name"].startswith(FULLNAME)], hooks
    # The route can be deleted without the operator (no finalizer left waiting for it).
    c.kubectl("delete", "modelroute", "chat", "-n", APP_NS, "--timeout=30s")
    # The namespace still says inject=enabled, but no webhook answers for it any more: pods start.
    c.kubectl("scale", "deployment", "chat-app", "-n", APP_NS, "--replicas=4")
    fresh = wait_for("a 4th app pod", lambda: [p for p in app_pods(app) if not (p["spec"].get("initContainers"))],
                     timeout=120)
    assert not [x for x in fresh[0]["spec"].get("initContainers") or [] if x["name"] == SIDECAR]
    c.kubectl("delete", "namespace", APP_NS, "--timeout=120s")  # namespace deletion works (controller-manager)
    assert json.loads(c.kubectl("get", "namespaces", "-o", "json").stdout)["items"]
