"""Issue 10: canary rollouts on real pods (one promoted, one aborted on injected errors), and
the operator pod deleted mid-rollout: its Deployment recreates it and the rollout resumes
at the same step. Traffic is the app's own openai SDK calls, from every pod."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from .node_harness import (
    APP_NS,
    RELEASE_NS,
    Node,
    Traffic,
    app_pods,
    model_of,
    operator_pod,
    pod_get,
    ready,
    rollout,
    route,
    wait_for,
)

pytestmark = pytest.mark.e2e

PLUGIN = Path(sys.executable).parent / "kubectl-modelroute"
ANALYSIS = {"interval": "1s", "minSamples": 10, "maxErrorRate": 0.05}


def _strategy(pause: str = "3s") -> dict[str, Any]:
    steps = [{"weight": 50}, {"pause": {"duration": pause}}]
    return {"canary": {"steps": steps, "analysis": ANALYSIS, "progressDeadlineSeconds": 120}}


def _apply(node: Node, model: str, strategy: dict[str, Any]) -> None:
    node.cluster.kubectl("apply", "-f", "-", input=json.dumps(route(node, model, strategy)))


def _all_pods_answer(node: Node, model: str) -> bool:
    return all(model_of(pod_get(node, p["status"]["podIP"], "/ask?model=chat")) == model for p in app_pods(node))


@contextmanager
def _watching(node: Node, log: Path) -> Iterator[Path]:
    """``kubectl modelroute get chat --watch`` running alongside, its output in ``log``."""
    with open(log, "w") as out:
        proc = subprocess.Popen([str(PLUGIN), "--kubeconfig", str(node.cluster.kubeconfig), "-n", APP_NS,
                                 "get", "chat", "--watch"], stdout=out, stderr=subprocess.STDOUT)
        try:
            yield log
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _phases(log: Path) -> list[str]:
    """The ``Status:`` phases the watch rendered, in order, repeats folded."""
    seen: list[str] = []
    for line in log.read_text().splitlines():
        if line.startswith("Status:"):
            phase = line.split()[1]
            if not seen or seen[-1] != phase:
                seen.append(phase)
    return seen


def _stable(node: Node, model: str, strategy: dict[str, Any]) -> str:
    """The route at ``model``, settled (a change rolls out like any other: with traffic)."""
    with Traffic(node):
        _apply(node, model, strategy)
        ro = wait_for("a stable revision", lambda: (r := rollout(node)).get("phase") == "Healthy"
                      and not r.get("canaryRevision") and r.get("stableRevision") and r, timeout=90)
    wait_for(f"every pod answering from {model}", lambda: _all_pods_answer(node, model), timeout=60)
    return str(ro["stableRevision"])


def test_a_healthy_canary_is_promoted_on_real_pods(app: Node, tmp_path: Path) -> None:
    old = _stable(app, "gpt-4o-mini", _strategy())
    with _watching(app, tmp_path / "watch.log") as watch, Traffic(app) as traffic:
        _apply(app, "gpt-4o", _strategy())
        wait_for("the rollout to start", lambda: rollout(app).get("canaryRevision") not in (None, old), timeout=60)
        done = wait_for("the promotion", lambda: (r := rollout(app)).get("phase") == "Healthy"
                        and r.get("stableRevision") != old and not r.get("canaryRevision") and r, timeout=120)
        wait_for("the watch to show it", lambda: _phases(watch)[-1:] == ["Healthy"], timeout=30)
    assert (done.get("analysis") or {}).get("verdict") == "Pass", done
    assert not traffic.errors, traffic.errors[:5]
    assert traffic.answers.get("gpt-4o", 0) > 0 and traffic.answers.get("gpt-4o-mini", 0) > 0, traffic.answers
    wait_for("every pod on the promoted model", lambda: _all_pods_answer(app, "gpt-4o"), timeout=60)
    phases = _phases(watch)  # kubectl modelroute get --watch followed the rollout to its end
    assert "Paused" in phases and phases[-1] == "Healthy", (phases, watch.read_text()[-2000:])


def test_a_failing_canary_is_aborted_on_real_pods(app: Node, tmp_path: Path) -> None:
    _stable(app, "gpt-4o", _strategy())
    app.emulator_post("/_emulator/faults", {"kind": "status", "status": 503, "model": "gpt-4.1", "probability": 0.5})
    try:
        with _watching(app, tmp_path / "watch.log") as watch, Traffic(app):
            _apply(app, "gpt-4.1", _strategy())
            wait_for("the abort", lambda: rollout(app).get("phase") == "Degraded", timeout=120)
            wait_for("the watch to show it", lambda: _phases(watch)[-1:] == ["Degraded"], timeout=30)
        wait_for("every pod back on stable", lambda: _all_pods_answer(app, "gpt-4o"), timeout=30)
    finally:
        app.cluster.kubectl("delete", "-f", "-", input=json.dumps(route(app, "gpt-4o")), check=False)
        import urllib.request

        req = urllib.request.Request(app.emulator_host_url + "/_emulator/faults", method="DELETE")
        urllib.request.urlopen(req, timeout=5).read()
    _stable(app, "gpt-4o", _strategy())


def test_the_operator_pod_deleted_mid_rollout_resumes_at_the_same_step(app: Node) -> None:
    long_pause = _strategy(pause="40s")
    old = _stable(app, "gpt-4o", long_pause)
    with Traffic(app) as traffic:  # the analysis needs samples before it promotes
        _apply(app, "gpt-4o-mini", long_pause)
        paused = wait_for("the rollout paused at step 1", lambda: (r := rollout(app)).get("currentStepIndex") == 1
                          and r.get("phase") == "Paused" and r, timeout=60)
        first = operator_pod(app)["metadata"]["name"]
        app.cluster.kubectl("delete", "pod", "-n", RELEASE_NS, first, "--wait=false")
        new = wait_for("a new operator pod Ready", lambda: (p := operator_pod(app))["metadata"]["name"] != first
                       and ready(p) and p, timeout=120)
        assert new["metadata"]["name"] != first
        # The new operator picks the rollout up where it was: same canary, same step, not restarted.
        resumed = rollout(app)
        assert resumed.get("canaryRevision") == paused["canaryRevision"], resumed
        assert resumed.get("currentStepIndex") == 1, resumed
        done = wait_for("the promotion after the restart", lambda: (r := rollout(app)).get("phase") == "Healthy"
                        and r.get("stableRevision") not in (None, old) and r, timeout=120)
    assert done["stableRevision"] == paused["canaryRevision"]
    assert not traffic.errors, traffic.errors[:5]
