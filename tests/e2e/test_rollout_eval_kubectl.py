"""Issue 11, e2e: ``kubectl modelroute eval NAME --candidate proposed.yaml --dataset golden.jsonl`` in the cluster.

The real ``kubectl-modelroute`` console script writes a ModelRouteEval; the real operator signs
a ``POST /eval`` for a ready sidecar of the route, which runs the cases through the live stable
revision and the candidate (the emulator answers per model) and answers the comparison; the
operator writes it into the status and the command prints it. The provider key stays in the
sidecar: neither the command's output nor the object ever shows it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer
from modelroute.testing.waiting import wait_for

from . import rollout_harness as rh

pytestmark = pytest.mark.e2e
PLUGIN = Path(sys.executable).parent / "kubectl-modelroute"
KEY = "sk-e2e-test"   # the sidecars' OPENAI_API_KEY (operator_harness)
CASES = 40


def plugin(cluster: ControlPlane, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PLUGIN), "--kubeconfig", str(cluster.kubeconfig), "-n", namespace, *args],
                          capture_output=True, text=True, timeout=180)


def golden(path: Path) -> Path:
    """40 cases expecting ``billing``; the stable model says ``shipping`` on the 4 in 10 marked ``#hard``."""
    path.write_text("\n".join(json.dumps({"id": f"c{i}", "input": f"ticket {i}: charged twice" + (" #hard" if i % 10 < 4 else ""),
                                          "expected": "billing"}) for i in range(CASES)) + "\n")
    return path


def candidate(env: rh.RolloutEnv, path: Path, model: str, **params: Any) -> Path:
    obj = rh.route_with(env, model, rh.strategy([{"weight": 50}]))
    if params:
        obj["spec"]["params"] = params
    path.write_text(json.dumps(obj))   # JSON is YAML
    return path


def test_kubectl_eval_compares_the_live_revision_with_a_candidate_through_a_sidecar(
    cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path,
) -> None:
    with rh.rollout_env(cluster, namespace, kubelet, tmp_path, pods=1) as env:
        rh.script(env, [{"model": rh.STABLE_MODEL, "contains": "#hard", "reply": {"text": "shipping"}},
                        {"model": rh.STABLE_MODEL, "reply": {"text": "billing"}},
                        {"model": rh.CANARY_MODEL, "reply": {"text": "Billing."}}])
        live = rh.start_stable(env, rh.strategy([{"weight": 50}]), label="billing")
        data = golden(tmp_path / "golden.jsonl")

        # A better candidate (right on every case, the live revision wrong on 16 of 40).
        better = plugin(cluster, env.ns, "eval", rh.NAME, "--candidate", str(candidate(env, tmp_path / "better.yaml", rh.CANARY_MODEL)),
                        "--dataset", str(data), "--json", "--report", str(tmp_path / "better.html"))
        assert better.returncode == 0, better.stderr
        doc = json.loads(better.stdout)
        print("better:", doc["comparison"], better.stderr)
        assert doc["comparison"]["verdict"] == "better", doc["comparison"]
        assert (doc["baseline"]["revision"], doc["baseline"]["exactMatch"], doc["candidate"]["exactMatch"]) == (live, 0.6, 1.0)
        assert (doc["comparison"]["baselineOnly"], doc["comparison"]["candidateOnly"], doc["casesRun"]) == (0, 16, CASES)
        assert doc["comparison"]["ciLow"] > 0 and doc["comparison"]["pValue"] < 0.001
        assert doc["baseline"]["source"] == f"cluster:{env.ns}/{rh.NAME}" and doc["candidate"]["source"].endswith("better.yaml")
        assert doc["candidate"]["targets"] == [f"openai/{rh.CANARY_MODEL}"] and doc["disagreementsTotal"] == 16
        assert (tmp_path / "better.html").read_text().count("<svg") >= 1

        # An equal candidate (another revision: the same model at temperature 0) and the table output.
        equal = plugin(cluster, env.ns, "eval", rh.NAME, "--candidate",
                       str(candidate(env, tmp_path / "equal.yaml", rh.STABLE_MODEL, temperature=0)), "--dataset", str(data))
        assert equal.returncode == 0, equal.stderr
        print("equal:", equal.stdout)
        assert f"no significant difference at {CASES} cases" in equal.stdout

        # Clear errors: an unknown route, a bad dataset line (the line and the field named).
        unknown = plugin(cluster, env.ns, "eval", "nope", "--candidate", str(tmp_path / "equal.yaml"), "--dataset", str(data))
        assert unknown.returncode == 1 and "nope: 404 not found" in unknown.stderr, unknown.stderr
        bad = tmp_path / "bad.jsonl"
        bad.write_text(json.dumps({"input": "a", "expected": "billing"}) + "\n" + json.dumps({"expected": "billing"}) + "\n")
        refused = plugin(cluster, env.ns, "eval", rh.NAME, "--candidate", str(tmp_path / "equal.yaml"), "--dataset", str(bad))
        assert refused.returncode == 2 and f"{bad}:2: input must be" in refused.stderr, refused.stderr

        # A candidate may not send the pod's key to a host no route here sends it to.
        elsewhere = json.loads((tmp_path / "equal.yaml").read_text())
        elsewhere["spec"]["targets"][0]["baseUrl"] = "http://127.0.0.1:9/v1"
        (tmp_path / "elsewhere.yaml").write_text(json.dumps(elsewhere))
        moved = plugin(cluster, env.ns, "eval", rh.NAME, "--candidate", str(tmp_path / "elsewhere.yaml"), "--dataset", str(data))
        assert moved.returncode == 1 and "baseUrl http://127.0.0.1:9/v1 with this apiKey is not used" in moved.stderr, moved.stderr

        # The key never left the sidecar; the command cleaned up its requests.
        for out in (better, equal, unknown, refused, moved):
            assert KEY not in out.stdout + out.stderr
        rest, evals = env.cluster.rest(), f"/apis/modelroute.dev/v1alpha1/namespaces/{env.ns}/modelrouteevals"
        left = rest.get(evals)["items"]
        assert left == [], [o["metadata"]["name"] for o in left]
        assert KEY not in env.operator.logs()

        # Requests nobody deleted: the operator deletes them spec.ttlSecondsAfterFinished after they finished.
        for name, ttl in (("kept", {}), ("short", {"ttlSecondsAfterFinished": 1})):
            rest.create(evals, {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRouteEval", "metadata": {"name": name},
                                "spec": {"modelRoute": "nope", "candidate": json.loads((tmp_path / "equal.yaml").read_text())["spec"],
                                         "cases": [{"input": "a", "expected": "billing"}], **ttl}})
        wait_for("the short-lived eval to finish and be deleted", lambda: rest.get_or_none(f"{evals}/short") is None, timeout=60)
        kept = wait_for("the other eval to fail", lambda: (o := rest.get(f"{evals}/kept"))["status"].get("phase") == "Failed" and o)
        assert kept["spec"]["ttlSecondsAfterFinished"] == 86400 and "modelroute " + env.ns + "/nope not found" in kept["status"]["message"]
        # The operator logs the deletion once the apiserver has answered it, which can be after the GET above saw it gone.
        wait_for("the operator to log the deletion", lambda: "eval " + env.ns + "/short deleted" in env.operator.logs(), timeout=30)
