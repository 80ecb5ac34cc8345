"""`modelroute eval`: scoring (pure) and whole runs through the real routing engine and SDKs
against the provider emulators."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelroute.api.v1alpha1 import ModelRoute
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.eval import cli, dataset, prices, report
from modelroute.sidecar.eval.dataset import Case, DatasetError
from modelroute.sidecar.eval.runner import run_route
from modelroute.sidecar.eval.scoring import judge, labels_of, normalize_label, quantile
from modelroute.sidecar.pipeline import cost
from modelroute.testing.emulators import EmulatorServer, EmulatorThread

ENV = {"KEY_OPENAI": "sk-openai-test", "KEY_ANTHROPIC": "sk-ant-test", "KEY_GEMINI": "gemini-test-key"}
CASES = [
    {"id": "c1", "input": "my invoice is wrong", "expected": "billing"},
    {"id": "c2", "input": "where is my parcel", "expected": "shipping"},
    {"id": "c3", "input": "I want a refund", "expected": "billing"},
    {"id": "c4", "input": "extract order=42", "expected": {"order": 42},
     "schema": {"type": "object", "properties": {"order": {"type": "integer"}}, "required": ["order"]}},
]


def test_labels_and_json_are_judged_leniently_but_exactly() -> None:
    labels = labels_of([Case("a", {}, "billing"), Case("b", {}, "shipping")])
    label = Case("x", {}, "billing")
    assert judge(label, " Billing.\n", labels) == (True, True)
    assert judge(label, "`shipping`", labels) == (False, True)
    assert judge(label, "I think billing", labels) == (False, False)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    js = Case("j", {}, {"n": 1}, schema)
    assert judge(js, '```json\n{ "n": 1 }\n```', labels) == (True, True)
    assert judge(js, '{"n": "1"}', labels) == (False, False)
    assert judge(js, "n is 1", labels) == (False, False)
    assert judge(Case("free", {}), "anything", labels) == (False, True)
    assert normalize_label('"Shipping."') == "shipping"
    assert quantile([5, 1, 4, 2, 3], 0.5) == 3 and quantile([1.0] * 99 + [100.0], 0.99) == 1.0
    assert quantile([], 0.5) is None


def test_dataset_problems_are_reported_together() -> None:
    lines = ['{"input": "a", "expected": "x"}', "not json", '{"input": 3}', '{"id": "1", "input": "b"}', "# comment", ""]
    with pytest.raises(DatasetError) as e:
        dataset.parse_lines(lines, "cases.jsonl")
    assert [p.split(":")[1] for p in e.value.problems] == ["2", "3", "4"]
    assert "id '1' appears twice" in e.value.problems[2]
    ok = dataset.parse_lines(['{"input": [{"role": "user", "content": "hi"}], "expected": "x"}',
                              '{"input": {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}}}'], "d")
    assert ok[0].request_for("r") == {"messages": [{"role": "user", "content": "hi"}], "model": "r"}
    assert ok[1].request["response_format"] == {"type": "json_object"}


def test_prices() -> None:
    table = prices.parse({"prices": {"gpt-4o-mini": {"input": 0.15, "output": 0.6}, "haiku": {"input": 1, "output": 5}}})
    assert prices.price_for(table, "haiku", "claude-haiku-4-5") == table["haiku"]
    assert prices.price_for(table, "mini", "gpt-4o-mini") == table["gpt-4o-mini"]
    assert cost.cost_of(table["haiku"], {"prompt_tokens": 1_000_000, "completion_tokens": 200_000}) == pytest.approx(2.0)
    with pytest.raises(prices.PriceError, match="needs input and output"):
        prices.parse({"x": {"input": 1}})


def test_price_of_prefers_the_table_then_the_route_pricing_then_the_builtin_prices() -> None:
    from modelroute.api.v1alpha1 import Target

    def target(**extra: Any) -> Target:
        return Target.model_validate({"name": "t", "provider": "openai", "model": "gpt-4o-mini", "apiKey": {"env": "K"}, **extra})

    table = prices.parse({"t": {"input": 9, "output": 9}})
    priced = target(pricing={"inputPerMillion": 2, "outputPerMillion": 8, "cachedInputPerMillion": 1})
    assert prices.price_of(priced, table) == cost.Price(9, 9)
    assert prices.price_of(priced, None) == cost.Price(2, 8, 1, None)
    assert prices.price_of(target(), None) == cost.DEFAULT_PRICES["gpt-4o-mini"]
    assert prices.price_of(target(model="my-own-finetune"), {"other": table["t"]}) is None


def _route(emu: EmulatorServer) -> dict[str, Any]:
    return {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "tickets"}, "spec": {
        "route": "classify", "timeoutSeconds": 10, "retry": {"attempts": 1},
        "prompt": {"version": "v1", "system": "Answer with one label."},
        "targets": [
            {"name": "mini", "provider": "openai", "model": "gpt-4o-mini", "baseUrl": emu.openai_url, "apiKey": {"env": "KEY_OPENAI"}},
            {"name": "haiku", "provider": "anthropic", "model": "claude-haiku-4-5", "baseUrl": emu.url, "apiKey": {"env": "KEY_ANTHROPIC"}},
            {"name": "flash", "provider": "gemini", "model": "gemini-2.5-flash", "baseUrl": emu.url, "apiKey": {"env": "KEY_GEMINI"}},
        ]}}


def _script(emu: EmulatorServer) -> None:
    for model, answers in {
        "gpt-4o-mini": {"invoice": "billing", "parcel": "shipping", "refund": "Billing.", "order=42": '{"order": 42}'},
        "claude-haiku-4-5": {"invoice": "billing", "parcel": "billing", "refund": "refunds", "order=42": '```json\n{"order": 42}\n```'},
    }.items():
        for needle, text in answers.items():
            emu.reply(text, contains=needle, model=model)
    emu.fault(kind="status", status=503, provider="gemini")


async def test_every_target_runs_through_the_routing_engine() -> None:
    async with EmulatorServer() as emu:
        _script(emu)
        doc = _route(emu)
        doc["spec"]["targets"][1]["pricing"] = {"inputPerMillion": 2, "outputPerMillion": 10}
        route = ModelRoute.model_validate(doc)
        cases = dataset.parse_lines([json.dumps(c) for c in CASES], "cases")
        seen: list[str] = []
        runs = await run_route(route, cases, KeyResolver(environ=ENV).source_for, concurrency=2,
                               prices=prices.parse({"gpt-4o-mini": {"input": 0.15, "output": 0.6}}),
                               progress=lambda t, o: seen.append(t))
        by = {r.summary.target: r.summary for r in runs}
        assert seen == ["mini"] * 4 + ["haiku"] * 4 + ["flash"] * 4
        assert (by["mini"].exact_match, by["mini"].valid_rate, by["mini"].errors) == (1.0, 1.0, 0)
        assert by["haiku"].exact_match == 0.5 and by["haiku"].valid_rate == 0.75, "refunds is no label"
        assert by["flash"].errors == 4 and by["flash"].errors_by_class == {"server_error": 4} and by["flash"].p50_ms is None
        assert by["mini"].prompt_tokens > 0 and by["mini"].completion_tokens > 0
        mini, haiku = by["mini"], by["haiku"]
        assert mini.cost_usd == pytest.approx((mini.prompt_tokens * 0.15 + mini.completion_tokens * 0.6) / 1e6)  # --prices
        assert haiku.cost_usd == pytest.approx((haiku.prompt_tokens * 2 + haiku.completion_tokens * 10) / 1e6)  # route pricing
        assert (haiku.cost_usd or 0) > 0 and by["flash"].cost_usd == 0.0, "flash: built-in price, no tokens (all failed)"
        assert by["mini"].p50_ms is not None and by["mini"].p50_ms <= (by["mini"].p99_ms or 0)
        # Each target was called alone (no fallback) with the route's prompt.
        assert emu.count(model="gpt-4o-mini") == 4 and emu.count(model="claude-haiku-4-5") == 4
        assert emu.count(provider="gemini") == 4


def test_cli_table_json_and_html_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    with EmulatorThread() as emu:
        _script(emu)
        (tmp_path / "routes.yaml").write_text(yaml.safe_dump(_route(emu)))
        (tmp_path / "cases.jsonl").write_text("\n".join(json.dumps(c) for c in CASES) + "\n")
        (tmp_path / "prices.yaml").write_text("gpt-4o-mini: {input: 0.15, output: 0.6}\n")
        parser = argparse.ArgumentParser()
        cli.configure(parser)
        base = ["--config", str(tmp_path / "routes.yaml"), "--route", "classify", "--dataset", str(tmp_path / "cases.jsonl")]

        assert cli.run(parser.parse_args([*base, "--target", "mini", "--target", "haiku", "--report", str(tmp_path / "r.html")])) == 0
        out, err = capsys.readouterr()
        lines = out.splitlines()
        assert lines[0].split()[:3] == ["TARGET", "MODEL", "CASES"]
        assert lines[1].split()[:6] == ["mini", "openai/gpt-4o-mini", "4", "0", "100.0%", "100.0%"]
        assert lines[2].split()[:6] == ["haiku", "anthropic/claude-haiku-4-5", "4", "0", "50.0%", "75.0%"]
        assert "cost needs a price" not in out, "no --prices: the built-in prices cover both models"
        assert "4/4 classify -> mini" in err and "4/4 classify -> haiku" in err, "progress on stderr"
        page = (tmp_path / "r.html").read_text()
        assert page.count("<svg") >= 3 and "exact match" in page and "p95" in page
        assert not re.search(r"""(src|href)=["']?https?:""", page), "no external assets"

        assert cli.run(parser.parse_args([*base, "--json", "--quiet", "--prices", str(tmp_path / "prices.yaml")])) == 0
        out, err = capsys.readouterr()
        doc = json.loads(out)
        assert err == "" and [t["target"] for t in doc["targets"]] == ["mini", "haiku", "flash"]
        assert doc["targets"][0]["costUsd"] > 0 and doc["targets"][2]["errorsByClass"] == {"server_error": 4}
        assert doc["targets"][1]["costUsd"] > 0 and "costNote" not in doc, "haiku: built-in price"
        assert {m["id"] for m in doc["targets"][1]["mismatches"]} == {"c2", "c3"}

        assert cli.run(parser.parse_args([*base[:2], "--route", "nope", "--dataset", base[5]])) == 2
        assert "known: classify" in capsys.readouterr().err
        assert cli.run(parser.parse_args([*base, "--target", "gpt5"])) == 2


def test_html_report_escapes_outputs() -> None:
    from modelroute.sidecar.eval.runner import TargetRun
    from modelroute.sidecar.eval.scoring import Outcome, summarize

    case = Case("<x>", {"messages": []}, "a")
    o = Outcome("<x>", "<script>alert(1)</script>", 0.01)
    run = TargetRun(summarize("t", "openai", "m", [case], [o], None), (o,))
    page = report.html_report("r", "d", [run])
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_eval_json_feeds_the_rollout_gate() -> None:
    from modelroute.api.v1alpha1.strategy import GateThresholds, Verdict
    from modelroute.operator.rollout import GateResults, gate_status

    doc = {"target": "revision r", "provider": "openai", "model": "m", "cases": 100, "errors": 2, "exactMatch": 0.71, "validOutputRate": 0.99, "latencyMs": {"p50": 80, "p95": 240, "p99": 400}}
    results = GateResults.from_eval_json(doc)
    assert results.latency_p95_seconds == 0.24
    failed = gate_status(GateThresholds(min_exact_match=0.9, max_error_rate=0.05, max_latency_p95_seconds=1), results)
    assert failed.verdict is Verdict.FAIL and "exactMatch 0.71 < 0.9" in failed.message and "(100 cases)" in failed.message
    assert [m.verdict for m in failed.metrics] == [Verdict.FAIL, Verdict.PASS, Verdict.PASS]
    assert gate_status(GateThresholds(min_exact_match=0.7), results).verdict is Verdict.PASS
    no_labels = GateResults(cases=10, errors=0, exact_match=None, valid_output_rate=1.0, latency_p95_seconds=0.1)
    assert gate_status(GateThresholds(min_exact_match=0.5), no_labels).verdict is Verdict.FAIL, "cannot measure: no pass"


def test_answers_agree_on_labels_and_json() -> None:
    from modelroute.sidecar.eval.scoring import answers_agree

    assert answers_agree("Billing.", "billing")
    assert answers_agree('{"a": 1, "b": [2]}', '```json\n{"b": [2], "a": 1}\n```')
    assert not answers_agree('{"a": 1}', '{"a": 2}')
    assert not answers_agree("billing", "shipping")
