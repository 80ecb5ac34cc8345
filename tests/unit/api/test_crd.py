"""The CRD is generated from the pydantic models; the committed copy must not drift."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from modelroute.api.crd import CRDS, crd, crd_yaml, quota_crd
from modelroute.testing.schemas import undocumented

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "crds" / "modelroute.dev_modelroutes.yaml"

NO_SCHEMA = {".metadata"}  # the apiserver forbids a metadata schema


def test_committed_crd_matches_models() -> None:
    assert COMMITTED.read_text() == crd_yaml(), "crds/ drifted from the models: run `make crd`"


@pytest.mark.parametrize("name", sorted(CRDS))
def test_every_committed_crd_matches_models(name: str) -> None:
    assert (ROOT / "crds" / name).read_text() == crd_yaml(name), "crds/ drifted from the models: run `make crd`"


def test_quota_crd_has_descriptions_printer_columns_and_status() -> None:
    root = quota_crd()["spec"]["versions"][0]
    assert undocumented(root["schema"]["openAPIV3Schema"], exempt=NO_SCHEMA) == []
    cols = {c["name"]: c["jsonPath"] for c in root["additionalPrinterColumns"]}
    assert cols["Tokens"] == ".status.tokens" and cols["Requests"] == ".status.requests"
    assert root["subresources"] == {"status": {}}
    spec = root["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["provider"]["enum"] == ["openai", "anthropic", "gemini", "openai-compatible"]
    assert "secretKeyRef" in spec["properties"]["apiKey"]["properties"]


def _schema() -> dict[str, Any]:
    root: dict[str, Any] = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return root


def test_every_field_has_a_description() -> None:
    assert undocumented(_schema(), exempt=NO_SCHEMA) == []


def test_schema_is_structural() -> None:
    text = yaml.safe_dump(_schema())
    for forbidden in ("$ref", "anyOf", "const", "title", "$defs"):
        assert forbidden not in text, forbidden

    def check(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                assert node.get("type") == "object"
                assert "additionalProperties" not in node
            for v in node.values():
                check(v)
        elif isinstance(node, list):
            for v in node:
                check(v)

    check(_schema())


def test_enums_and_cel_rules_present() -> None:
    spec = _schema()["properties"]["spec"]
    target = spec["properties"]["targets"]["items"]
    assert target["properties"]["provider"]["enum"] == ["openai", "anthropic", "gemini", "openai-compatible"]
    rules = [v["rule"] for v in spec["x-kubernetes-validations"]]
    assert any("exists_one" in r for r in rules)
    assert any("size(self.targets) >= 1" in r for r in rules)
    assert crd()["spec"]["versions"][0]["subresources"] == {"status": {}}
    cols = {c["name"] for c in crd()["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert {"Route", "Primary", "Phase", "Synced", "Age"} <= cols
