"""The one compile step: which stages and steps each route's chain holds, and that it is frozen."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1.spec import Target
from modelroute.sidecar.pipeline.compiler import Planner
from modelroute.sidecar.pipeline.stages import Cached, Checked, ContractStep, LimitedStep
from modelroute.sidecar.routing import router
from modelroute.sidecar.routing.call import Stage, Step
from modelroute.sidecar.routing.observer import NullObserver
from modelroute.sidecar.routing.router import AdapterStep, Attempts
from modelroute.sidecar.routing.runtime import RouteRuntime, Runtime

from .fakes import FakeAdapter, Recorder


def factory(target: Target, key: Any) -> FakeAdapter:
    return FakeAdapter(target)


def config(**spec: Any) -> SidecarConfig:
    return SidecarConfig.model_validate({"routes": [{
        "apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "mr"},
        "spec": {"route": "r", "targets": [{"name": "a", "provider": "openai", "model": "m", "apiKey": {"env": "K"},
                                            **spec.pop("target", {})}], **spec}}]})


def stages(stage: Stage) -> list[type]:
    """The request stages of a chain, outermost first, down to the attempt loop."""
    out: list[type] = []
    while not isinstance(stage, Attempts):
        out.append(type(stage))
        stage = stage.inner  # type: ignore[attr-defined]
    return [*out, Attempts]


def steps(stage: Stage) -> list[type]:
    """The attempt steps of the first target of a chain, outermost first, down to the adapter."""
    while not isinstance(stage, Attempts):
        stage = stage.inner  # type: ignore[attr-defined]
    step: Step = stage.hops[0][1]
    out: list[type] = []
    while not isinstance(step, AdapterStep):
        out.append(type(step))
        step = step.inner  # type: ignore[attr-defined]
    return [*out, AdapterStep]


def route(cfg: SidecarConfig, planner: Planner | None = None, **compile: Any) -> RouteRuntime:
    pipeline = (planner or Planner()).compiler(**compile)
    return Runtime.build(cfg, lambda t: None, Recorder(), adapters=factory, pipeline=pipeline).routes["r"]


def test_a_plain_route_is_the_bare_attempt_loop() -> None:
    r = route(config())
    assert stages(r.chain) == [Attempts] and steps(r.chain) == [AdapterStep], "nothing added to the hot path"
    assert stages(r.checked) == [Checked, Attempts] and steps(r.checked) == [ContractStep, AdapterStep]
    bare = Runtime.build(config(), lambda t: None, NullObserver(), adapters=factory).routes["r"]
    assert stages(bare.chain) == [Attempts] and steps(bare.chain) == [AdapterStep]


def test_every_stage_in_order_on_a_route_that_needs_them() -> None:
    cfg = config(output={"labels": ["billing", "shipping"]}, cache={"enabled": True},
                 target={"limits": {"requestsPerMinute": 60}})
    r = route(cfg)
    assert r.chain is r.checked and r.contract is not None
    assert stages(r.chain) == [Checked, Cached, Attempts]
    assert steps(r.chain) == [LimitedStep, ContractStep, AdapterStep]


def test_the_gate_and_eval_compile_without_the_cache() -> None:
    cfg = config(cache={"enabled": True}, target={"limits": {"requestsPerMinute": 60}})
    planner = Planner()
    live = route(cfg, planner)
    assert stages(live.chain) == [Cached, Attempts]
    private = route(cfg, planner, cache=False)
    assert stages(private.chain) == [Attempts] and steps(private.chain) == [LimitedStep, AdapterStep]
    assert first_step(private).limiter is first_step(live).limiter, "the private compile shares the live limiter"


def first_step(r: RouteRuntime) -> Any:
    stage: Any = r.chain
    while not isinstance(stage, Attempts):
        stage = stage.inner
    return stage.hops[0][1]


async def test_compiled_routes_are_frozen_and_run_through_the_entry_points() -> None:
    r = route(config(output={"labels": ["billing", "shipping"]}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.observer = NullObserver()  # type: ignore[misc]
    view: Any = r.targets[0].adapter
    adapter = view.base  # the view's client-owning fake
    adapter.script = [{"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "Billing."},
                                    "finish_reason": "stop"}]}]
    done = await router.complete(r, {"model": "r", "messages": [{"role": "user", "content": "refund"}]})
    assert done.response["choices"][0]["message"]["content"] == "billing", "checked and normalised by the chain"
