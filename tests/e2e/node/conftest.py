"""Fixtures of the real one-node cluster tests (see node_harness.py for what they hold)."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make the harness importable

from node_harness import CHART, EMULATOR_PORT, RELEASE, RELEASE_NS, Node, _free_port, _uncaptured, wait_for

from modelroute.testing.cluster.binaries import ensure_binaries, ensure_node_binaries
from modelroute.testing.cluster.imagebuild import build_and_import
from modelroute.testing.cluster.node import NODE_IP, NodeCluster
from modelroute.testing.cluster.processes import spawn, stop_pid


@pytest.fixture(scope="session")
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    state_dir = tmp_path_factory.mktemp("node")
    with _uncaptured(request.config):
        cluster = NodeCluster(state_dir, ensure_binaries(), ensure_node_binaries(), name="modelroute-e2e-node")
        cluster.up()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with _uncaptured(request.config):
            image = build_and_import(cluster)
        app_image = dict(
            line.split("=", 1) for line in (cluster.node_dir / "images.env").read_text().split()
        )["APP_IMAGE"]
        procs.append(spawn(
            ["nsenter", f"--net={cluster.netns}", "--", sys.executable, "-m", "modelroute.testing.emulators",
             "--host", NODE_IP, "--port", str(EMULATOR_PORT)],
            log_path=state_dir / "emulator.log", env=dict(os.environ),
        ))
        host_port = _free_port()
        procs.append(spawn(
            [sys.executable, "-m", "modelroute.testing.cluster.netns", f"--listen={host_port}",
             f"--netns={cluster.netns}", f"--to={NODE_IP}:{EMULATOR_PORT}"],
            log_path=state_dir / "emulator-forwarder.log",
        ))
        node = Node(cluster, image, app_image, f"http://{NODE_IP}:{EMULATOR_PORT}", f"http://127.0.0.1:{host_port}")

        def emulator_up() -> bool:
            with urllib.request.urlopen(node.emulator_host_url + "/_emulator/faults", timeout=2) as r:
                return r.status < 500

        wait_for("the emulator on the node address", emulator_up, timeout=30)
        yield node
    finally:
        for proc in procs:
            stop_pid(proc.pid, timeout=5)
        cluster.down()


@pytest.fixture(scope="session")
def release(node: Node) -> Node:
    """``helm install`` of the chart: defaults plus the locally built image (never pulled)."""
    repository, tag = node.image.rsplit(":", 1)
    node.cluster.helm(
        "install", RELEASE, str(CHART), "-n", RELEASE_NS, "--create-namespace",
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
        "--set", "image.pullPolicy=Never", "--wait", "--timeout=240s",
        timeout=300,
    )
    return node
