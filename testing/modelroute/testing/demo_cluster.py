"""``make demo-cluster``: the story of ``make demo`` on real pods after a real ``helm install``.

A one-node cluster (real kubelet, containerd, pods, in a network namespace of its own), the
images built here, the chart installed, an app that only knows the openai SDK deployed with
3 replicas in a namespace asking for injection. Then, narrated: routing, fallback when the
primary fails, a canary promoted, a canary aborted on errors. The cluster stays up at the
end (``hack/local-cluster down`` stops it); the emulator stops with the demo.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from typing import Any

from modelroute.testing import lifecyclepin
from modelroute.testing.cluster.binaries import ensure_binaries, ensure_node_binaries
from modelroute.testing.cluster.imagebuild import build_and_import
from modelroute.testing.cluster.local import default_state_dir
from modelroute.testing.cluster.node import NodeCluster
from modelroute.testing.cluster.nodeapp import (
    APP_NS,
    EMULATOR_PORT,
    RELEASE_NS,
    Node,
    Traffic,
    app_image_of,
    app_manifest,
    app_pods,
    install_release,
    model_of,
    pod_get,
    ready,
    rollout,
    route,
    start_emulator,
    wait_for,
)
from modelroute.testing.cluster.nodeconfig import NODE_IP
from modelroute.testing.cluster.processes import spawn, stop_pid

CANARY = {"canary": {"steps": [{"weight": 20}, {"pause": {"duration": "5s"}}, {"weight": 50}, {"pause": {"duration": "5s"}}],
                     "analysis": {"interval": "1s", "minSamples": 10, "maxErrorRate": 0.05},
                     "progressDeadlineSeconds": 120}}


def say(title: str, detail: str = "") -> None:
    print(f"\n\033[1m== {title}\033[0m" + (f"\n   {detail}" if detail else ""), flush=True)


def show_answers(node: Node) -> None:
    for pod in app_pods(node):
        answer = pod_get(node, pod["status"]["podIP"], "/ask?model=chat&prompt=Which+plan+fits+a+team+of+5%3F")
        text = answer.get("content") if answer.get("ok") else f"error {answer.get('status')}"
        print(f"   {pod['metadata']['name']:<28} -> {str(text)[:70]}")


def follow(node: Node, until: str) -> dict[str, Any]:
    """Print every change of the rollout's (phase, step, weights) from its start until ``phase == until``."""
    last = None
    started = False
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        ro = rollout(node)
        w = ro.get("weights") or {}
        row = (ro.get("phase"), ro.get("currentStepIndex"), w.get("stable"), w.get("canary"))
        if row != last:
            print(f"   rollout: phase={row[0]} step={row[1]} stable={row[2]}% canary={row[3]}%", flush=True)
            last = row
        started = started or bool(ro.get("canaryRevision"))
        # an aborted rollout keeps naming its canary revision; a promoted one has none left
        if started and ro.get("phase") == until and (until == "Degraded" or not ro.get("canaryRevision")):
            return ro
        time.sleep(0.5)
    raise RuntimeError(f"the rollout did not reach {until} in time: {rollout(node)}")


def emulator_faults(node: Node, body: object | None) -> None:
    method, data = ("POST", json.dumps(body).encode()) if body is not None else ("DELETE", None)
    req = urllib.request.Request(node.emulator_host_url + "/_emulator/faults", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()


def main() -> int:
    lifecyclepin.pin()  # the demo routes name gpt-4o-mini and gpt-4o (shut down 2027-01-14): emulators, a fixed day
    say("1/7 A one-node cluster", "kube-apiserver, etcd, controller-manager, scheduler, kubelet and containerd "
        "(all built here), pods on a bridge in a network namespace of their own")
    cluster = NodeCluster(default_state_dir(), ensure_binaries(), ensure_node_binaries(),
                          name="modelroute-local", tie_to_parent=False)
    cluster.up()
    say("2/7 Images built from the repository's Dockerfile with buildah, imported into the node")
    image = build_and_import(cluster)
    app_image = app_image_of(cluster)
    emulator = start_emulator(cluster, cluster.state_dir / "demo-emulator.log")
    from modelroute.testing.cluster.loopback import free_port

    port = free_port()
    forwarder = spawn([sys.executable, "-m", "modelroute.testing.cluster.netns", f"--listen={port}",
                       f"--netns={cluster.netns}", f"--to={NODE_IP}:{EMULATOR_PORT}"],
                      log_path=cluster.state_dir / "demo-forwarder.log")
    node = Node(cluster, image, app_image, f"http://{NODE_IP}:{EMULATOR_PORT}", f"http://127.0.0.1:{port}")
    try:
        wait_for("the provider emulator", lambda: urllib.request.urlopen(node.emulator_host_url + "/_emulator/health",
                                                                        timeout=2).status == 200, timeout=30)
        c = cluster
        say("3/7 helm install", f"chart defaults plus image {image}")
        install_release(node, upgrade=True)
        print(c.kubectl("get", "pods", "-n", RELEASE_NS).stdout)

        say("4/7 An app that only knows the openai SDK, 3 replicas, namespace labelled for injection")
        c.kubectl("label", "namespace", APP_NS, "modelroute.dev/inject=enabled", "--overwrite")
        secret = c.kubectl("create", "secret", "generic", "llm-keys", "-n", APP_NS, "--from-literal=openai=sk-demo",
                           "--dry-run=client", "-o", "yaml").stdout
        c.kubectl("apply", "-f", "-", input=secret)
        c.kubectl("delete", "modelroute", "chat", "-n", APP_NS, "--ignore-not-found")
        c.kubectl("apply", "-f", "-", input=json.dumps(route(node, "gpt-4o-mini", CANARY, fallback="gpt-4o")))
        c.kubectl("apply", "-f", "-", input=json.dumps(app_manifest(node, 3)))
        wait_for("3 app pods Ready", lambda: len([p for p in app_pods(node) if ready(p)]) == 3, timeout=240)
        print(c.kubectl("get", "pods", "-n", APP_NS, "-o", "wide").stdout)
        wait_for("the route on every pod", lambda: all(
            model_of(pod_get(node, p["status"]["podIP"], "/ask?model=chat")) for p in app_pods(node)), timeout=60)

        say("5/7 Routing", "each pod's app calls its sidecar on localhost; route chat -> gpt-4o-mini")
        show_answers(node)
        say("6/7 Fallback", "the primary answers 503: the sidecar falls back to gpt-4o, the app sees no error")
        emulator_faults(node, {"kind": "status", "status": 503, "model": "gpt-4o-mini"})
        show_answers(node)
        emulator_faults(node, None)

        say("7/7 Canary rollouts", "a new model goes 20% -> 50% -> 100% while the analysis watches errors")
        with Traffic(node):
            c.kubectl("apply", "-f", "-", input=json.dumps(route(node, "gpt-4.1-mini", CANARY, fallback="gpt-4o")))
            follow(node, "Healthy")
        print("   promoted:")
        show_answers(node)
        print("\n   another one, whose model fails 40% of its calls:")
        emulator_faults(node, {"kind": "status", "status": 503, "model": "gpt-4.1", "probability": 0.4})
        with Traffic(node):
            c.kubectl("apply", "-f", "-", input=json.dumps(route(node, "gpt-4.1", CANARY)))
            follow(node, "Degraded")
        print("   aborted: every pod is back on the stable revision")
        show_answers(node)
        emulator_faults(node, None)
    finally:
        for proc in (emulator, forwarder):
            stop_pid(proc.pid, timeout=5)
    say("Done", f"the cluster keeps running: export KUBECONFIG={cluster.kubeconfig}; kubectl get pods -A; "
        "`hack/local-cluster down` stops it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
