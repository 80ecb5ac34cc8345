"""Config files: every problem reported at once, each saying file, document, name and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from modelroute.api.config import SidecarConfig
from modelroute.api.lifecycledate import ENV_LIFECYCLE_DATE
from modelroute.sidecar.config import loader
from modelroute.sidecar.config.loader import ConfigError
from modelroute.sidecar.config.secrets import KeyResolver

GOOD = """\
apiVersion: modelroute.dev/v1alpha1
kind: ModelRoute
metadata: {name: ticket-classifier}
spec:
  route: classify
  targets:
    - {name: haiku, provider: anthropic, model: claude-haiku-4-5, apiVersion: "2023-06-01", apiKey: {env: ANTHROPIC_API_KEY}}
    - {name: mini, provider: openai, model: gpt-4o-mini, apiKey: {file: KEYFILE}}
  params: {temperature: 0.1, maxTokens: 128}
  prompt: {version: v3, system: "You label support tickets."}
"""


def doc(name: str, route: str, target: str = "{name: t, provider: openai, model: gpt-4o-mini, apiKey: {env: ANTHROPIC_API_KEY}}") -> str:
    return textwrap.dedent(f"""\
        apiVersion: modelroute.dev/v1alpha1
        kind: ModelRoute
        metadata: {{name: {name}}}
        spec:
          route: {route}
          targets:
            - {target}
        """)


@pytest.fixture
def keys(tmp_path: Path) -> KeyResolver:
    return KeyResolver(environ={"ANTHROPIC_API_KEY": "sk-ant-xyz"}, secrets_dir=tmp_path / "secrets")


def problems_of(paths: list[Path], keys: KeyResolver) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        loader.load(paths, keys)
    return ei.value.problems


def test_good_file_loads(tmp_path: Path, keys: KeyResolver) -> None:
    (tmp_path / "key").write_text("sk-file\n")
    f = tmp_path / "routes.yaml"
    f.write_text(GOOD.replace("KEYFILE", str(tmp_path / "key")) + "---\n" + doc("second", "summarize") + "---\n")
    config = loader.load([f], keys)
    assert [r.spec.route for r in config.routes] == ["classify", "summarize"]
    assert config.routes[0].spec.prompt is not None and config.routes[0].spec.prompt.version == "v3"


def test_unknown_provider_message_names_file_doc_name_and_field(tmp_path: Path, keys: KeyResolver) -> None:
    f = tmp_path / "file.yaml"
    f.write_text(doc("first", "a") + "---\n" + doc("ticket-classifier", "b", "{name: t, provider: openaix, model: m, apiKey: {env: X}}"))
    assert problems_of([f], keys) == [
        f"{f} doc 2 (ticket-classifier): spec.targets[0].provider: "
        "Input should be 'openai', 'anthropic', 'gemini' or 'openai-compatible'"]


def test_all_problems_at_once_across_files(tmp_path: Path, keys: KeyResolver) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    empty = doc("two", "empty")
    empty = empty[: empty.index("  targets:")] + "  targets: []\n"
    a.write_text(doc("one", "classify") + "---\n" + empty)
    b.write_text("\n".join([
        doc("one", "classify"), "---",
        doc("three", "k", "{name: t, provider: openai, model: gpt-4o-mini, apiKey: {env: MISSING_KEY}}"), "---",
        doc("four", "f", "{name: t, provider: gemini, model: gemini-2.5-flash, apiKey: {file: /nonexistent/key}}"), "---",
        doc("five", "s", "{name: t, provider: gemini, model: gemini-2.5-flash, apiKey: {secretKeyRef: {name: llm-keys, key: gemini}}}"),
    ]))
    found = problems_of([a, b], keys)
    assert f"{a} doc 2 (two): spec.targets: a route needs at least one target" in found
    assert f"{b} doc 1 (one): spec.route: route name 'classify' is already defined by {a} doc 1 (one)" in found
    assert f"{b} doc 1 (one): metadata.name: ModelRoute name 'one' is already used by {a} doc 1 (one)" in found
    assert f"{b} doc 2 (three): spec.targets[0].apiKey.env: environment variable MISSING_KEY is not set" in found
    assert f"{b} doc 3 (four): spec.targets[0].apiKey.file: key file '/nonexistent/key' does not exist" in found
    assert any(p.startswith(f"{b} doc 4 (five): spec.targets[0].apiKey.secretKeyRef: Secret 'llm-keys' key 'gemini'")
               for p in found)
    assert len(found) == 6


def test_yaml_syntax_error_has_line(tmp_path: Path, keys: KeyResolver) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("apiVersion: x\nspec: [unclosed\n")
    (p,) = problems_of([f], keys)
    assert p.startswith(f"{f} line ") and "YAML syntax error" in p


def test_non_mapping_document_and_missing_file(tmp_path: Path, keys: KeyResolver) -> None:
    f = tmp_path / "list.yaml"
    f.write_text("- just\n- strings\n")
    found = problems_of([f, tmp_path / "nope.yaml"], keys)
    assert f"{f} doc 1: expected a ModelRoute mapping, got str" in found
    assert f"{tmp_path / 'nope.yaml'}: config file does not exist" in found


def test_empty_file_is_a_problem(tmp_path: Path, keys: KeyResolver) -> None:
    f = tmp_path / "empty.yaml"
    f.write_text("---\n")
    assert problems_of([f], keys) == [f"{f}: no ModelRoute documents found"]


def test_problems_of_parsed_config(tmp_path: Path, keys: KeyResolver) -> None:
    text = doc("one", "classify") + "---\n" + doc("two", "x", "{name: t, provider: openai, model: gpt-4o-mini, apiKey: {env: GONE}}")
    parsed = loader.parse_text(text, "f")
    assert parsed.problems == []
    config = SidecarConfig(routes=[r for _, r in parsed.routes])
    assert loader.problems(config, keys) == [
        "routes[1] (two): spec.targets[0].apiKey.env: environment variable GONE is not set"]
    with pytest.raises(ConfigError) as ei:
        loader.checked(parsed, keys)
    assert ei.value.problems == ["f doc 2 (two): spec.targets[0].apiKey.env: environment variable GONE is not set"]


def test_duplicates_found_even_among_invalid_documents(keys: KeyResolver) -> None:
    text = doc("one", "classify") + "---\n" + doc("one", "classify", "{name: t, provider: nope, model: m}")
    with pytest.raises(ConfigError) as ei:
        loader.load_text(text, "f.yaml", keys)
    assert ei.value.problems == [
        "f.yaml doc 2 (one): spec.targets[0].provider: Input should be 'openai', 'anthropic', 'gemini' or 'openai-compatible'",
        "f.yaml doc 2 (one): spec.route: route name 'classify' is already defined by f.yaml doc 1 (one)",
        "f.yaml doc 2 (one): metadata.name: ModelRoute name 'one' is already used by f.yaml doc 1 (one)",
    ]


def test_problem_messages_never_contain_key_values(tmp_path: Path) -> None:
    keys = KeyResolver(environ={"EMPTY": "  "}, secrets_dir=tmp_path)
    f = tmp_path / "r.yaml"
    f.write_text(doc("a", "a", "{name: t, provider: openai, model: gpt-4o-mini, apiKey: {env: EMPTY}}"))
    assert problems_of([f], keys) == [f"{f} doc 1 (a): spec.targets[0].apiKey.env: environment variable EMPTY is empty"]


def test_body_formats(keys: KeyResolver) -> None:
    import json
    d = {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "a"},
         "spec": {"route": "a", "targets": [{"name": "t", "provider": "openai-compatible", "model": "m"}]}}
    for body in (json.dumps([d]), json.dumps({"routes": [d]}), json.dumps(d)):
        parsed = loader.parse_json_or_yaml(body.encode(), "body")
        assert parsed.problems == [] and [r.spec.route for _, r in parsed.routes] == ["a"]


REPO = Path(__file__).resolve().parents[3]


def test_route_params_a_target_refuses_are_one_line_each_with_the_ways_out(tmp_path: Path, keys: KeyResolver) -> None:
    f = tmp_path / "routes.yaml"
    f.write_text(GOOD.replace('apiVersion: "2023-06-01", ', "").replace("{file: KEYFILE}", "{env: ANTHROPIC_API_KEY}")
                 .replace("model: gpt-4o-mini,", "model: gpt-5.4-mini,"))
    first, second = problems_of([f], keys)
    assert first == (
        f"{f} doc 1 (ticket-classifier): spec.params.temperature: target 'haiku' (anthropic claude-haiku-4-5, apiVersion "
        "2026-10-21) cannot take temperature: anthropic-version 2026-10-21 removed sampling parameters; remove temperature, "
        "set spec.targets[0].apiVersion: '2023-06-01' (it keeps temperature for claude-haiku-4-5), or set "
        "spec.unsupportedParams: drop (the param is then not sent to this target)")
    assert second.startswith(f"{f} doc 1 (ticket-classifier): spec.params.temperature: target 'mini' (openai gpt-5.4-mini) "
                             "cannot take temperature: gpt-5.4-mini is a reasoning model")
    f.write_text(f.read_text().replace("  params:", "  unsupportedParams: drop\n  params:"))
    assert loader.load([f], keys).routes[0].spec.unsupported_params == "drop"


def _readme_example() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("```yaml\n# routes.yaml") + len("```yaml\n")
    return text[start:text.index("```", start)]


@pytest.mark.parametrize("source", ["README.md", "examples/standalone/routes.yaml", *sorted(
    str(p.relative_to(REPO)) for p in (REPO / "charts/modelroute/examples").glob("*.yaml"))])
def test_documented_examples_are_valid(source: str) -> None:
    text = _readme_example() if source == "README.md" else (REPO / source).read_text()
    parsed = loader.parse_text(text, source)
    assert parsed.routes and not parsed.problems
    assert loader.route_problems(parsed.routes, None, parsed.claims) == []


def test_a_when_no_request_can_meet_in_the_models_window_is_a_config_problem() -> None:
    doc = ("apiVersion: modelroute.dev/v1alpha1\nkind: ModelRoute\nmetadata: {name: r}\nspec:\n  route: r\n  targets:\n"
           "  - {name: t, provider: anthropic, model: claude-haiku-4-5, apiKey: {env: K}, when: {minInputTokens: 200000}}\n")
    parsed = loader.parse_text(doc, "routes.yaml")
    assert not parsed.problems
    assert loader.route_problems(parsed.routes, None, parsed.claims) == [
        "routes.yaml doc 1 (r): spec.targets[0].when: target 't': when.minInputTokens 200000 is not below the 200000-token "
        "context window of claude-haiku-4-5: no request could ever be sent to it"]


def test_a_retired_model_in_a_written_config_is_one_line_with_its_date(keys: KeyResolver,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    from datetime import date

    target = "{name: sonnet, provider: anthropic, model: claude-sonnet-4-5, apiKey: {env: ANTHROPIC_API_KEY}}"
    parsed = loader.parse_text(doc("summarizer", "summarize", target), "routes.yaml")
    with pytest.raises(ConfigError) as ei:
        loader.checked(parsed, keys, today=date(2026, 12, 6))
    (problem,) = ei.value.problems
    assert problem.startswith("routes.yaml doc 1 (summarizer): spec.targets[0].model: target 'sonnet': model "
                              "'claude-sonnet-4-5' was retired by anthropic on 2026-11-30: every call to it fails")
    # Before the shutdown: loaded, with a warning naming the model and the date.
    with caplog.at_level("WARNING", logger="modelroute.sidecar.config.loader"):
        config = loader.checked(loader.parse_text(doc("summarizer", "summarize", target), "routes.yaml"), keys,
                                today=date(2026, 11, 1))
    assert config.routes[0].spec.targets[0].model == "claude-sonnet-4-5"
    assert "spec.targets[0].model: target 'sonnet': model 'claude-sonnet-4-5' is deprecated by anthropic and shuts down " \
           "on 2026-11-30, after which every call to it fails" in caplog.text


@pytest.mark.parametrize("pin", ["2027-01-14", "2027-02-01"])
def test_a_written_config_is_refused_when_the_pinned_day_is_past_the_shutdown(pin: str, keys: KeyResolver,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_LIFECYCLE_DATE, pin)  # no today= passed: the loader reads the pin (gpt-4o-mini: 2027-01-14)
    with pytest.raises(ConfigError) as ei:
        loader.load_text(doc("r", "chat"), "routes.yaml", keys)
    (problem,) = ei.value.problems
    assert problem.startswith("routes.yaml doc 1 (r): spec.targets[0].model: target 't': model 'gpt-4o-mini' was retired "
                              "by openai on 2027-01-14: every call to it fails")


def test_the_same_config_loads_when_the_pinned_day_is_before_the_shutdown(keys: KeyResolver,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_LIFECYCLE_DATE, "2027-01-13")
    assert loader.load_text(doc("r", "chat"), "routes.yaml", keys).routes[0].spec.targets[0].model == "gpt-4o-mini"


def test_a_bad_pin_is_a_config_problem_naming_the_variable(keys: KeyResolver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_LIFECYCLE_DATE, "2027/02/01")
    with pytest.raises(ConfigError) as ei:
        loader.load_text(doc("r", "chat"), "routes.yaml", keys)
    assert ei.value.problems == [f"{ENV_LIFECYCLE_DATE}='2027/02/01' is not a date: give YYYY-MM-DD (the day the model "
                                 "retirement checks take as today), or unset it to use today's UTC date"]


def test_a_config_the_operator_accepted_is_not_refused_for_a_retirement_since(keys: KeyResolver) -> None:
    # Pushes and bundles go through problems(): a date passing must not stop pods from starting.
    target = "{name: sonnet, provider: anthropic, model: claude-sonnet-4-5, apiKey: {env: ANTHROPIC_API_KEY}}"
    parsed = loader.parse_text(doc("summarizer", "summarize", target), "routes.yaml")
    config = SidecarConfig(routes=[r for _, r in parsed.routes])
    assert loader.problems(config, keys) == []
