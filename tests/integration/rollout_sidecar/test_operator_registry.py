"""The operator's model registry reaches the sidecar: a planned push carries it, and the sidecar
skips a target the registry's window says cannot hold the request, before any call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from modelroute.api.v1alpha1.registry import ModelRegistry
from modelroute.operator.pods import SidecarPod
from modelroute.operator.push.plan import plan
from modelroute.operator.validation import validate
from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.sidecars import MODELS, route, target

from .conftest import Pod

REGISTRY = ModelRegistry.model_validate({"windows": [
    {"provider": "openai", "model": MODELS["openai"], "contextWindow": 50, "maxOutputTokens": 16}]})


async def test_a_pushed_config_carries_the_registry_and_the_sidecar_skips_the_over_window_target(
        pods: Callable[..., Awaitable[Pod]]) -> None:
    async with EmulatorServer() as emu:
        raw = route("classify", [target(emu, "openai", "primary"), target(emu, "anthropic", "backup")])
        raw["metadata"]["namespace"] = "default"
        checked = validate(raw, {}, REGISTRY)
        assert checked.route is not None, checked.problems
        sidecar = SidecarPod(namespace="default", name="app-1", uid="u1", ip="127.0.0.1", labels={}, phase="Running")
        (pushed,) = plan([checked.route], [sidecar], registry=REGISTRY)
        assert pushed.rendering.config.model_registry == REGISTRY
        pod = await pods(pushed.rendering.config)
        async with pod.http.get(pod.sidecar.admin_url + "/config") as r:
            assert (await r.json())["modelRegistry"]["windows"][0]["contextWindow"] == 50
        _, headers = await pod.ask("word " * 60, max_tokens=8)
        assert headers["x-modelroute-target"] == "backup"
        assert emu.count("openai") == 0
        stats = await pod.stats()
        assert stats["routes"]["classify"]["targets"]["primary"]["outcomes"] == {"context_window": 1}
        _, headers = await pod.ask("ping", max_tokens=8)
        assert headers["x-modelroute-target"] == "primary"
