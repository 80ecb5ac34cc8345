"""Issue 3, e2e 1: the generated CRD installs on the real apiserver and guards its invariants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelroute.testing.cluster.controlplane import ControlPlane

from .operator_harness import wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def _route(name: str, targets: list[dict[str, object]], **spec: object) -> str:
    return json.dumps({
        "apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": name},
        "spec": {"route": "classify", "targets": targets, **spec},
    })


GOOD_TARGET: dict[str, object] = {"name": "mini", "provider": "openai", "model": "gpt-4o-mini", "apiKey": {"env": "OPENAI_API_KEY"}}


@pytest.fixture(scope="module")
def crd_installed(cluster: ControlPlane) -> ControlPlane:
    assert sorted(cluster.install_crds(ROOT / "crds")) == [
        "modelrouteevals.modelroute.dev", "modelroutes.modelroute.dev", "providerquotas.modelroute.dev"]
    return cluster


def test_crd_is_established_with_printer_columns_and_explain(crd_installed: ControlPlane) -> None:
    crd = json.loads(crd_installed.kubectl("get", "crd", "modelroutes.modelroute.dev", "-o", "json").stdout)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions.get("NonStructuralSchema") is None
    # the OpenAPI document that `kubectl explain` reads is published shortly after Established
    explain = wait_for(
        "kubectl explain modelroute.spec.targets",
        lambda: crd_installed.kubectl("explain", "modelroute.spec.targets", check=False).stdout or None,
    )
    assert "Primary target first" in explain
    assert "provider" in explain and "Wire protocol and SDK" in explain
    names = crd_installed.kubectl("api-resources", "--api-group=modelroute.dev", "-o", "wide").stdout
    assert "mr" in names.split()


@pytest.mark.parametrize(
    ("targets", "spec", "field", "message"),
    [
        ([GOOD_TARGET, GOOD_TARGET], {}, "spec.targets", "target names must be unique"),
        ([], {}, "spec.targets", "should have at least 1 items"),
        ([{**GOOD_TARGET, "provider": "mistral"}], {}, "spec.targets[0].provider", "Unsupported value: \"mistral\""),
        ([{k: v for k, v in GOOD_TARGET.items() if k != "apiKey"}], {}, "spec.targets[0].apiKey", "apiKey is required"),
        ([{**GOOD_TARGET, "apiKey": {"env": "A", "file": "/k"}}], {}, "spec.targets[0].apiKey", "exactly one of env, file or secretKeyRef"),
        ([GOOD_TARGET], {"params": {"temperature": 3}}, "spec.params.temperature", "less than or equal to 2"),
        ([{**GOOD_TARGET, "provider": "openai", "apiVersion": "2023-06-01"}], {}, "spec.targets[0].apiVersion",
         "apiVersion applies to anthropic targets only"),
        ([{**GOOD_TARGET, "provider": "anthropic", "api": "responses"}], {}, "spec.targets[0].api", "api applies to openai and openai-compatible targets only"),
        ([GOOD_TARGET], {"unsupportedParams": "ignore"}, "spec.unsupportedParams", "Unsupported value: \"ignore\""),
    ],
)
def test_invalid_modelroute_is_rejected_with_the_field_path(
    crd_installed: ControlPlane, namespace: str, targets: list[dict[str, object]], spec: dict[str, object], field: str, message: str
) -> None:
    result = crd_installed.kubectl("apply", "-n", namespace, "-f", "-", input=_route("bad", targets, **spec), check=False)
    assert result.returncode != 0
    assert field in result.stderr, result.stderr
    assert message in result.stderr, result.stderr


def test_valid_modelroute_is_accepted_and_listed_by_short_name(crd_installed: ControlPlane, namespace: str) -> None:
    crd_installed.kubectl("apply", "-n", namespace, "-f", "-", input=_route("good", [GOOD_TARGET]))
    listing = crd_installed.kubectl("get", "mr", "-n", namespace).stdout
    assert "good" in listing and "classify" in listing
    header = listing.splitlines()[0].split()
    assert header[:5] == ["NAME", "ROUTE", "PRIMARY", "PHASE", "ROLLOUT"]
