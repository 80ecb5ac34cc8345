"""Fixtures of the real one-node cluster tests.

* ``node`` (session): a :class:`NodeCluster` in its own temporary state directory and network
  namespace; the modelroute and app images built (buildah) and imported into its containerd;
  the provider emulator on the node address (``node.emulator_url`` from pods,
  ``node.emulator_host_url`` from the tests through a loopback forwarder). Builds happen at
  the first run on a machine (minutes, progress shown live). Nothing is skipped: if the node
  cannot start, the tests fail with its logs.
* ``release`` (session): the chart installed with helm (chart defaults plus the local image).
* ``app`` (session): namespace ``shop`` labelled for injection, the provider key Secret, the
  ModelRoute ``chat`` and the 3-replica app Deployment, all pods Ready.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelroute.testing.cluster.binaries import ensure_binaries, ensure_node_binaries
from modelroute.testing.cluster.imagebuild import build_and_import, build_images
from modelroute.testing.cluster.node import NodeCluster
from modelroute.testing.cluster.nodeapp import app_image_of, install_release, start_emulator
from modelroute.testing.cluster.nodeconfig import NODE_IP
from modelroute.testing.cluster.processes import spawn, stop_pid

from .node_harness import (
    APP_NS,
    EMULATOR_PORT,
    Node,
    app_manifest,
    app_pods,
    free_port,
    ready,
    route,
    uncaptured,
    wait_for,
)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the node components and the images before the first test, outside any test's
    timeout (minutes on a fresh machine; progress shown live). A failure here is reported
    again by the ``node`` fixture, which fails the tests."""
    here = Path(__file__).parent
    if not any(item.get_closest_marker("e2e") and here in Path(str(item.fspath)).parents for item in session.items):
        return
    with uncaptured(session.config):
        try:
            ensure_node_binaries()
            build_images()
        except Exception as exc:
            print(f"\n[modelroute cluster] building the node or its images failed: {exc}", flush=True)


@pytest.fixture(scope="session")
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    state_dir = tmp_path_factory.mktemp("node")
    with uncaptured(request.config):
        cluster = NodeCluster(state_dir, ensure_binaries(), ensure_node_binaries(), name="modelroute-e2e-node")
        cluster.up()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with uncaptured(request.config):
            image = build_and_import(cluster)
        app_image = app_image_of(cluster)
        procs.append(start_emulator(cluster, state_dir / "emulator.log"))
        host_port = free_port()
        procs.append(spawn(
            [sys.executable, "-m", "modelroute.testing.cluster.netns", f"--listen={host_port}",
             f"--netns={cluster.netns}", f"--to={NODE_IP}:{EMULATOR_PORT}"],
            log_path=state_dir / "emulator-forwarder.log",
        ))
        node = Node(cluster, image, app_image, f"http://{NODE_IP}:{EMULATOR_PORT}", f"http://127.0.0.1:{host_port}")
        wait_for("the emulator on the node address", lambda: node.emulator_get("/_emulator/faults") is not None,
                 timeout=30)
        yield node
    finally:
        for proc in procs:
            stop_pid(proc.pid, timeout=5)
        cluster.down()


@pytest.fixture(scope="session")
def release(node: Node) -> Node:
    """``helm install`` of the chart: defaults plus the locally built image (never pulled)."""
    install_release(node)  # the chart grants Secret reads in APP_NS
    return node


@pytest.fixture(scope="session")
def app(release: Node) -> Node:
    c = release.cluster
    c.kubectl("label", "namespace", APP_NS, "modelroute.dev/inject=enabled")
    c.kubectl("create", "secret", "generic", "llm-keys", "-n", APP_NS, "--from-literal=openai=sk-node-e2e-1")
    c.kubectl("apply", "-f", "-", input=json.dumps(route(release, "gpt-4o-mini")))
    c.kubectl("apply", "-f", "-", input=json.dumps(app_manifest(release, 3)))
    try:
        wait_for("3 app pods Ready", lambda: len([p for p in app_pods(release) if ready(p)]) == 3, timeout=240)
    finally:
        print(c.kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout)
    return release
