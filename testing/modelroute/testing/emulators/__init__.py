"""Local emulators of the OpenAI, Anthropic and Gemini HTTP APIs, with programmable faults.

Used by integration and e2e tests, benchmarks and the demo. The real SDKs accept them:

    async with EmulatorServer() as emu:
        openai.AsyncOpenAI(base_url=emu.openai_url, api_key="k")
        anthropic.AsyncAnthropic(base_url=emu.url, api_key="k")
        genai.Client(api_key="k", http_options=types.HttpOptions(base_url=emu.url))
        emu.fault(kind="status", status=429, retry_after=1, provider="anthropic", times=1)
        emu.requests("anthropic")  # what was received (secrets fingerprinted)

CLI: `python -m modelroute.testing.emulators --host 127.0.0.1 --port 9000`.
"""

from __future__ import annotations

from .client import EmulatorClient
from .faults import Fault, FaultBook
from .model import Prompt, Reply, ToolCall
from .reqlog import RecordedRequest, key_fingerprint
from .script import Rule, Script
from .server import EmulatorServer, build_app
from .state import DEFAULT_MODELS, EmulatorState
from .thread import EmulatorThread

__all__ = [
    "DEFAULT_MODELS",
    "EmulatorClient",
    "EmulatorServer",
    "EmulatorState",
    "EmulatorThread",
    "Fault",
    "FaultBook",
    "Prompt",
    "RecordedRequest",
    "Reply",
    "Rule",
    "Script",
    "ToolCall",
    "build_app",
    "key_fingerprint",
]
