"""`kubectl modelroute`: the rendering (pure) and the requests it makes (against a stub apiserver)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from modelroute.api.v1alpha1.strategy import ACTION_ANNOTATION
from modelroute.cli.kubectl_plugin import action_patch, action_value, analysis_table, main, render
from modelroute.operator.rollout import Desired, Verb

from .rollout_sim import STEPS, T0, Fleet, strategy


def route_object(status_rollout: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute",
        "metadata": {"name": "ticket-classifier", "namespace": "team", "resourceVersion": "7"},
        "spec": {"route": "classify", "targets": [{"name": "mini", "provider": "openai", "model": "gpt-4o-mini", "apiKey": {"env": "K"}}],
                 "strategy": strategy().wire()},
        "status": {"phase": "Ready", "pods": {"selected": 3, "synced": 3, "failed": 0},
                   **({"rollout": status_rollout} if status_rollout else {})},
    }


def paused_at_indefinite_pause() -> Fleet:
    f = Fleet(Desired("aaaaaaaaaaaa", strategy()))
    f.call()
    f.desired = Desired("bbbbbbbbbbbb", f.desired.strategy)
    f.until(lambda d: d.status.current_step_index == 5, limit=3000)
    return f


def test_render_marks_the_current_step_and_shows_weights_and_analysis() -> None:
    f = paused_at_indefinite_pause()
    assert f.state is not None
    text = render(route_object(f.state.wire()), f.now + timedelta(minutes=3))
    lines = text.splitlines()
    assert "Status:     Paused" in lines
    assert "Weights:    stable 75%  canary 25%  mirror 0%  (served by every selected sidecar)" in lines
    assert "Canary:     bbbbbbbbbbbb (attempt 1)" in lines
    steps = [ln for ln in lines if ln[3:5].strip().isdigit()]
    assert len(steps) == len(STEPS)
    assert [ln[:3] for ln in steps] == [" ✓ "] * 5 + [" ▶ ", "   "]
    assert "pause: until promoted" in steps[5] and "paused 3m ago" in steps[5]
    assert any(ln.startswith("Analysis:   Pass,") and "failures 0 (aborts at 2)" in ln for ln in lines)
    header = next(i for i, ln in enumerate(lines) if ln.split()[:1] == ["METRIC"])
    assert lines[header].split() == ["METRIC", "VALUE", "THRESHOLD", "SAMPLES", "VERDICT"]
    assert {ln.split()[0] for ln in lines[header + 1:]} == {"samples", "errorRate", "latencyP95Ratio", "agreement"}
    assert "kubectl modelroute promote" in text


def test_render_degraded_and_without_rollout() -> None:
    f = Fleet(Desired("aaaaaaaaaaaa", strategy()), errors=0.3)
    f.call()
    f.desired = Desired("bbbbbbbbbbbb", f.desired.strategy)
    f.until(lambda d: d.status.phase.value == "Degraded")
    assert f.state is not None
    text = render(route_object(f.state.wire()), f.now)
    assert "Status:     Degraded" in text and " ✗ " in text and "<- aborted here" in text
    assert "Weights:    stable 100%  canary 0%  mirror 0%" in text
    plain = render(route_object(None), T0)
    assert "no rollout recorded yet" in plain and "Route:      classify" in plain


def test_analysis_table_aligns_columns() -> None:
    f = paused_at_indefinite_pause()
    assert f.state is not None and f.state.analysis is not None
    rows = analysis_table(f.state.analysis.metrics)
    starts = {r.index(r.split()[1], len(r.split()[0]) + 2) for r in rows}
    assert len(starts) == 1, rows


def test_action_values() -> None:
    assert action_value("promote", nonce="n1") == "promote:n1"
    assert action_value("promote", full=True, nonce="n1") == "promote-full:n1"
    assert action_value("abort") != action_value("abort"), "each invocation is a new action"
    assert Verb(action_value("resume").split(":")[0]) is Verb.RESUME
    assert action_patch("pause:x") == {"metadata": {"annotations": {ACTION_ANNOTATION: "pause:x"}}}
    with pytest.raises(ValueError, match="unknown action"):
        action_value("delete")


class _Api(BaseHTTPRequestHandler):
    objects: dict[str, dict[str, Any]] = {}
    patches: list[tuple[str, str, dict[str, Any]]] = []
    watches: list[str] = []

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _object(self) -> dict[str, Any] | None:
        return self.objects.get(self.path.split("?")[0])

    def do_GET(self) -> None:
        if "watch=true" in self.path:   # a list+watch of one name: one change, then the deletion
            type(self).watches.append(self.path)  # before answering: the client may finish first
            first = next(iter(self.objects.values()))
            changed = json.loads(json.dumps(first))
            changed["status"]["rollout"]["message"] = "changed while watching"
            lines = [json.dumps({"type": "MODIFIED", "object": changed}), json.dumps({"type": "DELETED", "object": changed})]
            data = ("\n".join(lines) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        obj = self._object()
        if obj is None:
            self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound", "message": "not found"})
        else:
            self._send(200, obj)

    def do_PATCH(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.patches.append((self.path, self.headers["Content-Type"], body))
        obj = self._object()
        if obj is None:
            self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound", "message": "not found"})
            return
        obj["metadata"].setdefault("annotations", {}).update(body["metadata"]["annotations"])
        self._send(200, obj)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def apiserver(tmp_path: Path) -> Iterator[tuple[Path, type[_Api]]]:
    handler = type("Api", (_Api,), {"objects": {}, "patches": [], "watches": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "ctx",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u", "namespace": "team"}},
                     {"name": "other", "context": {"cluster": "c", "user": "u", "namespace": "elsewhere"}}],
    }))
    try:
        yield kubeconfig, handler
    finally:
        server.shutdown()
        server.server_close()


PATH = "/apis/modelroute.dev/v1alpha1/namespaces/team/modelroutes/ticket-classifier"


def test_promote_writes_the_annotation_with_a_merge_patch(apiserver: tuple[Path, type[_Api]], capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig, api = apiserver
    api.objects[PATH] = route_object(None)
    assert main(["--kubeconfig", str(kubeconfig), "promote", "ticket-classifier", "--full"]) == 0
    [(path, ctype, body)] = api.patches
    assert path == PATH and ctype == "application/merge-patch+json"
    assert body["metadata"]["annotations"][ACTION_ANNOTATION].startswith("promote-full:")
    assert "promote (full) requested" in capsys.readouterr().out


def test_kubeconfig_env_context_and_namespace_flags(apiserver: tuple[Path, type[_Api]], monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig, api = apiserver
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    other = "/apis/modelroute.dev/v1alpha1/namespaces/elsewhere/modelroutes/ticket-classifier"
    api.objects[other] = route_object(None)
    assert main(["--context", "other", "pause", "ticket-classifier"]) == 0
    assert main(["-n", "elsewhere", "resume", "ticket-classifier"]) == 0
    assert [p for p, _, _ in api.patches] == [other, other]
    assert [b["metadata"]["annotations"][ACTION_ANNOTATION].split(":")[0] for _, _, b in api.patches] == ["pause", "resume"]
    assert main(["abort", "ticket-classifier"]) == 1, "namespace team (the current context's) has no such route"
    assert "404 not found" in capsys.readouterr().err


def test_get_renders_the_live_object(apiserver: tuple[Path, type[_Api]], capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig, api = apiserver
    f = paused_at_indefinite_pause()
    assert f.state is not None
    api.objects[PATH] = route_object(f.state.wire())
    assert main(["--kubeconfig", str(kubeconfig), "get", "ticket-classifier"]) == 0
    out = capsys.readouterr().out
    assert "Status:     Paused" in out and " ▶ " in out and "METRIC" in out


def test_get_watch_re_renders_on_events_until_deleted(apiserver: tuple[Path, type[_Api]], capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig, api = apiserver
    f = paused_at_indefinite_pause()
    assert f.state is not None
    api.objects[PATH] = route_object(f.state.wire())
    assert main(["--kubeconfig", str(kubeconfig), "get", "ticket-classifier", "--watch"]) == 0
    out = capsys.readouterr().out
    assert out.count("Name:       ticket-classifier") == 2 and "Message:    changed while watching" in out
    assert out.rstrip().endswith("modelroute team/ticket-classifier was deleted")
    [watch] = api.watches
    assert "fieldSelector=metadata.name%3Dticket-classifier" in watch and "resourceVersion=7" in watch


QUOTA_PATH = "/apis/modelroute.dev/v1alpha1/namespaces/team/providerquotas/org"


def quota_object(with_status: bool = True) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "modelroute.dev/v1alpha1", "kind": "ProviderQuota", "metadata": {"name": "org", "namespace": "team"},
        "spec": {"provider": "openai", "apiKey": {"secretKeyRef": {"name": "openai", "key": "key"}}, "limits": {"tokensPerMinute": 10000}},
    }
    if with_status:
        obj["status"] = {
            "tokens": "8700/10000", "pods": 2,
            "conditions": [{"type": "QuotaPressure", "status": "True", "reason": "HighUsage", "message": "tokens 87% of the limit"}],
            "leases": [{"pod": "web-1", "tokensPerMinute": 8000, "demandTokens": 12000, "generation": 7,
                        "expiresAt": (T0 + timedelta(seconds=20)).isoformat()},
                       {"pod": "web-2", "tokensPerMinute": 1000, "generation": 7}],
        }
    return obj


def test_quota_shows_used_over_limit_and_each_pods_lease(apiserver: tuple[Path, type[_Api]], capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig, api = apiserver
    api.objects[QUOTA_PATH] = quota_object()
    assert main(["--kubeconfig", str(kubeconfig), "quota", "org"]) == 0
    out = capsys.readouterr().out
    assert "Tokens:     8700/10000 per minute" in out and "key secret openai/key" in out
    assert "QuotaPressure: True (HighUsage)" in out
    lines = [line.split() for line in out.splitlines() if line.startswith("  web-")]
    assert [row[:3] for row in lines] == [["web-1", "-", "8000"], ["web-2", "-", "1000"]]


def test_quota_render_without_status_says_why() -> None:
    from modelroute.cli.kubectl_plugin import render_quota
    assert "not written yet" in render_quota(quota_object(with_status=False), T0)
    web1 = next(line for line in render_quota(quota_object(), T0).splitlines() if "web-1" in line)
    assert web1.rstrip().endswith("in 20s")


def test_quota_of_a_missing_name_is_a_404(apiserver: tuple[Path, type[_Api]], capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig, _ = apiserver
    assert main(["--kubeconfig", str(kubeconfig), "quota", "nope"]) == 1
    assert "providerquota nope: 404 not found" in capsys.readouterr().err


def test_render_shows_both_revisions_of_a_relative_gate() -> None:
    from modelroute.api.v1alpha1.strategy import GateThresholds
    from modelroute.operator.rollout import GateResults, gate_status

    f = paused_at_indefinite_pause()
    assert f.state is not None
    ro = f.state.wire()
    gate = gate_status(GateThresholds(max_accuracy_drop=0.02), GateResults(100, 1, 0.9, 0.99, 0.2),
                       baseline=GateResults(100, 0, 0.95, 1.0, 0.1), revision="bbbbbbbbbbbb", baseline_revision="aaaaaaaaaaaa")
    ro["gate"] = gate.model_dump(mode="json", by_alias=True, exclude_none=True)
    lines = render(route_object(ro), f.now).splitlines()
    assert any(ln.startswith("Gate:       Fail") and "vs stable 95.0%" in ln for ln in lines), lines
    header = next(i for i, ln in enumerate(lines) if ln.split()[:1] == ["REVISION"])
    assert lines[header + 1].split() == ["bbbbbbbbbbbb", "candidate", "100", "1", "0.9", "0.99", "0.2s"]
    assert lines[header + 2].split() == ["aaaaaaaaaaaa", "stable", "100", "0", "0.95", "1", "0.1s"]
    assert any(ln.split()[:1] == ["accuracyDrop"] and "<= 0.02" in ln for ln in lines), lines
