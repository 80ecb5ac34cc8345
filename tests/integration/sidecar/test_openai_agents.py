"""An openai-agents app (its default model: the Responses API) runs a tool-using agent on every provider."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import pytest
from agents import Agent, RunConfig, Runner, function_tool, set_tracing_disabled
from agents.models.openai_provider import OpenAIProvider

from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.sidecars import MODELS, route, target

from .conftest import Running

Start = Callable[..., Awaitable[Running]]
PROVIDERS = ["openai", "anthropic", "gemini", "openai-responses"]  # the last: an openai target with api: responses


@pytest.fixture(autouse=True)
def _no_tracing() -> Iterator[None]:
    set_tracing_disabled(True)  # the SDK would otherwise export traces to OpenAI's servers
    yield
    set_tracing_disabled(False)


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("streamed", [False, True])
async def test_agent_with_a_function_tool(emu: EmulatorServer, start: Start, provider: str, streamed: bool) -> None:
    if provider == "openai-responses":
        provider, t = "openai", target(emu, "openai", api="responses")
    else:
        t = target(emu, provider)
    sc = await start([route("r", [t])])
    agent = Agent(name="weather", instructions="Use the tools.", model="r", tools=[get_weather])
    config = RunConfig(model_provider=OpenAIProvider(openai_client=sc.client), tracing_disabled=True)
    question = "call get_weather city=Paris"
    if streamed:
        run = Runner.run_streamed(agent, question, run_config=config)
        kinds = [e.type async for e in run.stream_events()]
        assert "raw_response_event" in kinds
        output = run.final_output
    else:
        output = (await Runner.run(agent, question, run_config=config)).final_output
    # First turn: the model calls the tool; second turn: it answers from the tool's result.
    assert isinstance(output, str) and output.startswith(f"[{provider}:{MODELS[provider]}] tool result: ")
    assert "sunny in Paris" in output
