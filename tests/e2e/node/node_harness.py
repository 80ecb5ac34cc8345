"""Helpers for end-to-end tests on a real one-node cluster (real kubelet, containerd, pods).

* ``node`` (session): a :class:`NodeCluster` in its own temporary state directory and network
  namespace, the modelroute and app images built (buildah) and imported into its containerd,
  and the provider emulator running on the node address (``node.emulator_url``, reachable
  from pods; ``node.emulator_host_url`` from the tests, through a loopback forwarder).
  Builds happen at the first run on a machine (minutes, progress shown live). Nothing is
  skipped: if the node cannot start, the tests fail with its logs.
* ``release`` (session): the chart installed with helm (chart defaults plus the local image).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelroute.testing.cluster.node import NodeCluster

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "modelroute"
EMULATOR_PORT = 18080
RELEASE = "mr"
RELEASE_NS = "modelroute-system"


@contextmanager
def _uncaptured(config: pytest.Config) -> Iterator[None]:
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is None:
        yield
        return
    with capman.global_and_fixture_disabled():
        yield


@dataclass
class Node:
    cluster: NodeCluster
    image: str  # the modelroute image reference
    app_image: str
    emulator_url: str  # from pods
    emulator_host_url: str  # from the tests

    def emulator_post(self, path: str, body: object) -> None:
        req = urllib.request.Request(self.emulator_host_url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            r.read()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, fn, timeout: float = 60.0, interval: float = 0.5):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as exc:  # not there yet
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


