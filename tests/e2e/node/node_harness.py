"""Helpers of the real one-node cluster tests (the fixtures are in conftest.py); the app
helpers live in :mod:`modelroute.testing.cluster.nodeapp`, shared with ``make demo-cluster``."""

from __future__ import annotations

from pathlib import Path

from modelroute.testing.cluster.loopback import free_port
from modelroute.testing.cluster.nodeapp import (
    APP_NS,
    APP_PORT,
    EMULATOR_PORT,
    FULLNAME,
    RELEASE,
    RELEASE_NS,
    SIDECAR,
    Node,
    Traffic,
    app_manifest,
    app_pods,
    ask,
    kjson,
    model_of,
    operator_pod,
    pod_get,
    ready,
    rollout,
    route,
    wait_for,
)

from ..progress import uncaptured

__all__ = [
    "APP_NS",
    "APP_PORT",
    "CHART",
    "EMULATOR_PORT",
    "FULLNAME",
    "RELEASE",
    "RELEASE_NS",
    "REPO",
    "SIDECAR",
    "Node",
    "Traffic",
    "app_manifest",
    "app_pods",
    "ask",
    "free_port",
    "kjson",
    "model_of",
    "operator_pod",
    "pod_get",
    "ready",
    "rollout",
    "route",
    "uncaptured",
    "wait_for",
]  # the cluster helpers the node tests share, and this module's own

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "modelroute"
