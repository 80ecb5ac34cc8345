"""``kubectl modelroute eval``: the command's pure parts (input checks, the object it writes, reading the result)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from modelroute.api.v1alpha1.modelrouteeval import MAX_EVAL_CASES, ModelRouteEvalSpec
from modelroute.cli import kubectl_eval
from modelroute.cli.kubectl_plugin import build_parser

ROUTE: dict[str, Any] = {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "chat"},
         "spec": {"route": "chat", "targets": [{"name": "a", "provider": "openai", "model": "gpt-4.1-mini",
                                               "apiKey": {"env": "OPENAI_API_KEY"}}]}}


def _args(tmp_path: Path, *extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["eval", "chat", "--candidate", str(tmp_path / "c.yaml"), "--dataset",
                                      str(tmp_path / "d.jsonl"), *extra])


def test_the_object_carries_the_checked_candidate_and_cases(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(json.dumps(ROUTE))
    (tmp_path / "d.jsonl").write_text('# golden\n{"input": "hi", "expected": "billing"}\n\n{"id": "x", "input": "yo"}\n')
    args = _args(tmp_path, "--min-cases", "5")
    spec = kubectl_eval.candidate_spec(args.candidate, "chat")
    cases = kubectl_eval.dataset_cases(args.dataset)
    obj = kubectl_eval.eval_object("chat", spec, cases, args)
    parsed = ModelRouteEvalSpec.model_validate(obj["spec"])   # what the operator reads
    assert (parsed.model_route, parsed.min_cases, parsed.dataset) == ("chat", 5, args.dataset)
    assert parsed.cases == [{"input": "hi", "expected": "billing"}, {"id": "x", "input": "yo"}]
    assert parsed.candidate["targets"][0]["model"] == "gpt-4.1-mini" and obj["metadata"]["generateName"] == "chat-eval-"


def test_bad_input_names_the_file_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(json.dumps({**ROUTE, "spec": {**ROUTE["spec"], "targets": []}}))
    with pytest.raises(kubectl_eval.BadInput, match=r"candidate .*c\.yaml: invalid config"):
        kubectl_eval.candidate_spec(str(tmp_path / "c.yaml"), "chat")
    (tmp_path / "d.jsonl").write_text('{"input": "hi"}\n{"expected": "billing"}\nnot json\n')
    with pytest.raises(kubectl_eval.BadInput) as err:
        kubectl_eval.dataset_cases(str(tmp_path / "d.jsonl"))
    assert "d.jsonl:2: input must be" in str(err.value) and "d.jsonl:3: not JSON" in str(err.value)
    (tmp_path / "big.jsonl").write_text("".join(f'{{"id": {i}, "input": "hi"}}\n' for i in range(MAX_EVAL_CASES + 1)))
    with pytest.raises(kubectl_eval.BadInput, match=f"{MAX_EVAL_CASES + 1} cases; an in-cluster eval takes at most {MAX_EVAL_CASES}"):
        kubectl_eval.dataset_cases(str(tmp_path / "big.jsonl"))
    with pytest.raises(kubectl_eval.BadInput, match="cannot read it"):
        kubectl_eval.dataset_cases(str(tmp_path / "missing.jsonl"))


def test_the_result_is_read_once_the_run_ended() -> None:
    assert kubectl_eval.outcome({"status": {"phase": "Running"}}) is None and kubectl_eval.outcome({}) is None
    with pytest.raises(kubectl_eval.RunFailed, match="no ready sidecar"):
        kubectl_eval.outcome({"status": {"phase": "Failed", "message": "no ready sidecar pod serves modelroute chat"}})
    with pytest.raises(kubectl_eval.RunFailed, match="unreadable result"):
        kubectl_eval.outcome({"status": {"phase": "Succeeded", "result": {"route": 1}}})
