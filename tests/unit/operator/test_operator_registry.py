"""The operator's ``--model-registry``: parsed at start-up, validates routes, rides in every push and bundle."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelroute.api import signing
from modelroute.api.selection import render_for_pod
from modelroute.api.signing import verify_key
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.api.v1alpha1.registry import ModelRegistry
from modelroute.operator import bundle, cli
from modelroute.operator.push.plan import plan
from modelroute.operator.registryfile import RegistryFileError, load_registry, parse_registry
from modelroute.operator.rollout.driver import all_acked
from modelroute.operator.validation import validate
from modelroute.sidecar.server.bundle import read_bundle

from .operator_factories import pod, raw_route

KEY = signing.load_private_key(signing.generate_private_key_pem())
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def windows(context: int) -> ModelRegistry:
    return ModelRegistry.model_validate(
        {"windows": [{"provider": "openai", "model": "gpt-4o-mini", "contextWindow": context, "maxOutputTokens": 256}]})


def routes() -> list[ModelRoute]:
    r = validate(raw_route("a"), {}).route
    assert r is not None
    return [r]


def test_the_file_is_the_model_or_a_model_registry_document() -> None:
    text = "windows:\n  - {provider: openai, model: gpt-4o-mini, contextWindow: 1000, maxOutputTokens: 256}\n"
    assert parse_registry(text, "f") == windows(1000)
    assert parse_registry("kind: ModelRegistry\nspec:\n  " + text.replace("\n  ", "\n    "), "f") == windows(1000)
    assert parse_registry("", "f") == ModelRegistry()


@pytest.mark.parametrize(("text", "expected"), [
    ("windows:\n  - {provider: openai, model: m, contextWindow: -1, maxOutputTokens: 1}\n", "f: windows[0].contextWindow: "),
    ("includeDefaults: false\nwindowz: []\n", "f: windowz: "),
    ("- a\n- b\n", "f: expected a mapping (a ModelRegistry), got list"),
    ("windows: [\n", "f: not valid YAML or JSON at line"),
])
def test_a_bad_file_names_the_field(text: str, expected: str) -> None:
    with pytest.raises(RegistryFileError) as caught:
        parse_registry(text, "f")
    assert caught.value.problems[0].startswith(expected), caught.value.problems


def test_the_operator_refuses_to_start_on_a_bad_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(signing.generate_private_key_pem())
    bad = tmp_path / "registry.yaml"
    bad.write_text("windows:\n  - {provider: nope, model: m, contextWindow: 10, maxOutputTokens: 1}\n")
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    assert cli.run(parser.parse_args(["--signing-key", str(key), "--model-registry", str(bad)])) == 2
    err = capsys.readouterr().err
    assert "--model-registry refused" in err and f"{bad}: windows[0].provider: " in err
    with pytest.raises(RegistryFileError, match="cannot read: FileNotFoundError"):
        load_registry(tmp_path / "missing.yaml")
    good = tmp_path / "good.yaml"
    good.write_text('{"windows": [{"provider": "openai", "model": "gpt-4o-mini", "contextWindow": 1000, "maxOutputTokens": 256}]}')
    assert cli.options_from(parser.parse_args(["--signing-key", str(key), "--model-registry", str(good)])).model_registry == windows(1000)
    assert cli.options_from(parser.parse_args(["--signing-key", str(key)])).model_registry is None


def test_routes_are_validated_against_the_operators_registry() -> None:
    raw = raw_route("a", model="ft:gpt-4o-mini:acme")
    assert not validate(raw, {}).valid
    allowed = ModelRegistry.model_validate({"models": [{"provider": "openai", "models": ["ft:gpt-4o-mini:acme"]}]})
    assert validate(raw, {}, allowed).valid


def test_every_planned_config_carries_the_registry_and_its_windows_change_the_hash() -> None:
    pods = [pod("p1"), pod("p2")]
    plain = plan(routes(), pods)
    small, smaller = plan(routes(), pods, registry=windows(1000)), plan(routes(), pods, registry=windows(500))
    assert all(p.rendering.config.model_registry == windows(1000) for p in small)
    assert all(p.rendering.config.model_registry is None for p in plain)
    assert len({plain[0].desired_hash, small[0].desired_hash, smaller[0].desired_hash}) == 3
    # A pod serving the registry-less config gets a push.
    served = {p.pod.uid: p.desired_hash for p in plain}
    assert all(p.needs_push for p in plan(routes(), pods, served=served, registry=windows(1000)))
    assert all_acked(routes()[0], routes(), pods, {p.pod.uid: p.desired_hash for p in small}, windows(1000))
    assert not all_acked(routes()[0], routes(), pods, served, windows(1000))


def test_the_bundle_carries_the_registry_and_the_sidecar_renders_what_the_operator_pushes(tmp_path: Path) -> None:
    data = bundle.encode(bundle.make_bundle("team", routes(), NOW, registry=windows(1000)), KEY)
    assert bundle.decode(data, verify_key(KEY)).model_registry == windows(1000)
    for name, text in data.items():
        (tmp_path / name).write_text(text)
    got = read_bundle(tmp_path, verify_key(KEY))
    sidecar_view = render_for_pod(got.routes, {}, got.model_registry).config
    assert sidecar_view.model_registry == windows(1000)
    assert sidecar_view.hash == plan(routes(), [pod("p1", {})], registry=windows(1000))[0].desired_hash


def test_dropping_the_built_in_windows_changes_the_hash() -> None:
    """``includeDefaults: false`` alone drops every built-in window: the pods must be pushed it."""
    plain = plan(routes(), [pod("p1")])[0].desired_hash
    allowed = ModelRegistry.model_validate({"models": [{"provider": "openai", "models": ["gpt-4o-mini"]}]})
    assert plan(routes(), [pod("p1")], registry=allowed)[0].desired_hash == plain  # ids only: what is accepted
    only = allowed.model_copy(update={"include_defaults": False})
    assert plan(routes(), [pod("p1")], registry=only)[0].desired_hash != plain
