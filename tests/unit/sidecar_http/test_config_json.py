"""Config files of JSON are read without PyYAML, to exactly what YAML reads them as, problems included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from modelroute.sidecar.config import loader
from modelroute.sidecar.config.loader import ConfigError
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.testing.fresh import run_python

ROUTE: dict[str, Any] = {
    "apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "chat-route"},
    "spec": {"route": "chat", "targets": [{"name": "mini", "provider": "openai", "model": "gpt-4o-mini",
                                           "apiKey": {"env": "OPENAI_API_KEY"}}],
             "params": {"temperature": 0.25, "maxTokens": 64}, "timeoutSeconds": 10},
}


def as_yaml(text: str) -> list[Any]:
    return list(yaml.safe_load_all(text))


def json_read(text: str) -> list[Any] | None:
    return loader._json_as_yaml(text)


def yaml_outcome(text: str) -> str:
    """What PyYAML makes of ``text``: its documents' repr, or the kind of failure."""
    try:
        return repr(as_yaml(text))
    except yaml.YAMLError:
        return "syntax error"
    except RecursionError:
        return "too deep"


def loader_outcome(text: str) -> str:
    """What the loader makes of ``text``, in ``yaml_outcome``'s terms."""
    docs, problem = loader._documents(text, "f", json_first=False)
    if docs or problem is None:
        return repr(docs)
    return "syntax error" if "YAML syntax error" in problem else "too deep" if "nested too deeply" in problem else problem


@pytest.fixture
def keys(tmp_path: Path) -> KeyResolver:
    return KeyResolver(environ={"OPENAI_API_KEY": "sk-x"}, secrets_dir=tmp_path / "secrets")


def test_a_json_file_loads_like_its_yaml_twin(tmp_path: Path, keys: KeyResolver) -> None:
    j, y = tmp_path / "routes.json", tmp_path / "routes.yaml"
    j.write_text(json.dumps([ROUTE, {**ROUTE, "metadata": {"name": "two"}, "spec": {**ROUTE["spec"], "route": "b"}}], indent=2))
    y.write_text(yaml.safe_dump_all([ROUTE, {**ROUTE, "metadata": {"name": "two"}, "spec": {**ROUTE["spec"], "route": "b"}}]))
    assert json_read(j.read_text()) is not None   # the JSON path was taken
    assert loader.load([j], keys) == loader.load([y], keys)


def test_problems_in_a_json_file_keep_their_locations(tmp_path: Path, keys: KeyResolver) -> None:
    bad = {**ROUTE, "spec": {**ROUTE["spec"], "targets": [{**ROUTE["spec"]["targets"][0], "provider": "opneai"}]}}
    f = tmp_path / "routes.json"
    f.write_text(json.dumps([ROUTE, bad]))
    with pytest.raises(ConfigError) as ei:
        loader.load([f], keys)
    assert ei.value.problems[0].startswith(f"{f} doc 2 (chat-route): spec.targets[0].provider: Input should be 'openai'")
    assert f"{f} doc 2 (chat-route): spec.route: route name 'chat' is already defined by {f} doc 1 (chat-route)" in ei.value.problems
    assert ei.value.problems == loader.parse_documents(as_yaml(f.read_text()), str(f)).problems + ei.value.problems[1:]


def test_a_json_syntax_error_in_a_json_file_is_located(tmp_path: Path, keys: KeyResolver) -> None:
    f = tmp_path / "routes.json"
    f.write_text('{\n  "apiVersion": "modelroute.dev/v1alpha1",\n  "kind": "ModelRoute"\n  "metadata": {}\n}\n')
    with pytest.raises(ConfigError) as ei:
        loader.load([f], keys)
    assert ei.value.problems == [f"{f} line 4 column 3: YAML syntax error: expected ',' or '}}', but got '<scalar>'"]


@pytest.mark.parametrize("text", [
    '{"a": 1e5}', '{"a": 1.0e5}', '{"a": 5E-1}', '{"a": NaN}', '{"a": -Infinity}', '{"a": "\\ud83d\\ude00"}', '{"a": "\\ud800"}',
    '{\t"a": 1}', '{"a"\n: 1}', '{"' + "k" * 1100 + '": 1}', '{"a": "x\x85y"}', '{"a": "x\x7fy"}', '{"a": "a\u2028  b"}',
    '{"a": 1}\n---\n{"b": 2}', '{"a": 1} # note', "\ufeff{}", '{"a": 1.}', "[1, 2,]", "{" * 5000 + "}" * 5000,
])
def test_where_yaml_reads_json_differently_yaml_decides(text: str) -> None:
    """Each of these is read as YAML (the JSON path declines), so the result is YAML's, whatever it is."""
    assert json_read(text) is None
    assert loader_outcome(text) == yaml_outcome(text)


@pytest.mark.parametrize("text", ['{"a": 1.5E+3, "b": -0.0, "c": 10000000000000000000000}', '{"a":"x\\/y\\u00e9\\b"}',
                                  '[{"a": true, "b": null}, []]', '{"a": 1, "a": 2}', '{"<<": {"b": 1}, "k": "&x *y # z"}',
                                  '{"a": "\\udc00"}', '  {"a":\r\n1}  \n'])
def test_json_read_without_yaml_equals_yaml(text: str) -> None:
    got = json_read(text)
    assert got is not None
    assert repr(got) == repr(as_yaml(text))


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                     st.text(max_size=12))
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                       max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.lists(_values, max_size=3), st.dictionaries(st.text(max_size=8), _values, max_size=4)),
       indent=st.sampled_from([None, 0, 1, 2]), ascii_only=st.booleans(), compact=st.booleans())
def test_any_json_is_read_as_yaml_reads_it(value: Any, indent: int | None, ascii_only: bool, compact: bool) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=ascii_only, separators=(",", ":") if compact else None)
    if json_read(text) is not None:   # the JSON path answers (else YAML does, as before)
        assert repr(json_read(text)) == yaml_outcome(text)
    assert loader_outcome(text) == yaml_outcome(text)


def test_a_json_config_file_does_not_import_yaml(tmp_path: Path) -> None:
    f = tmp_path / "routes.json"
    f.write_text(json.dumps(ROUTE))
    code = ("import sys\nfrom modelroute.sidecar.config import loader\nfrom modelroute.sidecar.config.secrets import KeyResolver\n"
            f"c = loader.load([{str(f)!r}], KeyResolver(environ={{'OPENAI_API_KEY': 'k'}}))\n"
            "print([r.spec.route for r in c.routes], 'yaml' in sys.modules)")
    assert run_python(code).split() == ["['chat']", "False"]


@pytest.mark.parametrize(("module", "options"), [
    ("modelroute.sidecar.cli", ["--config"]),
    ("modelroute.sidecar.eval.cli", ["--config"]),
    ("modelroute.cli.evalcmd", ["--config", "--baseline", "--candidate"]),
    ("modelroute.cli.kubectl_eval", ["--candidate"]),
])
def test_every_option_that_loads_route_files_says_json_works_too(module: str, options: list[str]) -> None:
    # These options are read by ``loader.load``, which takes JSON files as well (above); their help said "YAML file".
    import argparse
    import importlib

    parser = argparse.ArgumentParser()
    importlib.import_module(module).configure(parser)
    helps = {s: a.help or "" for a in parser._actions for s in a.option_strings}
    assert all("YAML or JSON" in helps[o] for o in options), {o: helps[o] for o in options}
