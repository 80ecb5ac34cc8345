"""The model registry: an unknown model id is a config error (sidecar start, ``PUT /config``), never a request-time 404."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelroute.sidecar.config import loader
from modelroute.sidecar.config.loader import ConfigError
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.sidecars import ENV, route, target

from .conftest import Start

ROUTE = """
apiVersion: modelroute.dev/v1alpha1
kind: ModelRoute
metadata: {name: tickets}
spec:
  route: tickets
  targets:
    - {name: tuned, provider: openai, model: "ft:gpt-4o-mini:acme:tickets:abc", apiKey: {env: KEY_OPENAI}}
    - {name: typo, provider: anthropic, model: claude-haiku-4-5-20251001, apiKey: {env: KEY_ANTHROPIC}}
"""
REGISTRY = """
apiVersion: modelroute.dev/v1alpha1
kind: ModelRegistry
metadata: {name: acme-models}
spec:
  models:
    - {provider: openai, models: ["ft:gpt-4o-mini:acme:tickets:abc"]}
"""


def test_sidecar_start_rejects_unknown_models_and_accepts_a_registry_extension(tmp_path: Path) -> None:
    keys = KeyResolver(environ=ENV)
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTE)
    with pytest.raises(ConfigError) as e:
        loader.load([routes], keys)
    assert e.value.problems == [
        f"{routes} doc 1 (tickets): spec.targets[0].model: target 'tuned': model 'ft:gpt-4o-mini:acme:tickets:abc' is not "
        "in the model registry for provider openai (add it under modelRegistry.models to allow it)"]
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY)
    config = loader.load([routes, registry], keys)    # dated versions of listed ids are allowed too
    assert config.model_registry is not None and config.routes[0].spec.targets[0].model.startswith("ft:")
    registry.write_text(REGISTRY.replace("models:\n    - {provider", "includeDefaults: false\n  models:\n    - {provider"))
    with pytest.raises(ConfigError, match="'claude-haiku-4-5-20251001' is not in the model registry for provider anthropic"):
        loader.load([routes, registry], keys)
    registry.write_text(REGISTRY.replace("models: [", "modelz: ["))
    with pytest.raises(ConfigError, match=r"doc 1 \(acme-models\) \(ModelRegistry\): models"):
        loader.load([registry, routes], keys)


async def test_put_config_rejects_unknown_models(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("a", [target(emu, "openai")])])
    bad = route("b", [target(emu, "gemini", model="gemini-9-ultra")])
    status, body = await sc.put_config([bad])
    assert status == 422
    assert body["error"]["problems"] == [
        "body doc 1 (b): spec.targets[0].model: target 'gemini': model 'gemini-9-ultra' is not in the model registry "
        "for provider gemini; known gemini models include: gemini-2.0-flash, gemini-2.0-flash-lite, gemini-2.5-flash, "
        "gemini-2.5-flash-lite, gemini-2.5-pro, gemini-3-flash-preview, gemini-3.1-flash-lite, gemini-3.5-flash "
        "(add it under modelRegistry.models to allow it)"]
    assert (await sc.post("/v1/chat/completions", {"model": "a", "messages": [{"role": "user", "content": "x"}]}))[0] == 200
    status, body = await sc.put_config({"routes": [bad], "modelRegistry": {"models": [{"provider": "gemini", "models": ["gemini-9-ultra"]}]}})
    assert status == 200 and body["changed"] is True
    async with sc.http.get(sc.sidecar.admin_url + "/config") as r:
        view = await r.json()
    assert view["modelRegistry"]["models"] == [{"provider": "gemini", "models": ["gemini-9-ultra"]}]
    # A config applied directly (signed push, bundle) is checked against its own registry or the built-in one.
    from modelroute.api.config import SidecarConfig
    assert any("gemini-9-ultra" in p for p in loader.problems(SidecarConfig(routes=sc.state.current().config.routes), None))  # type: ignore[union-attr]
