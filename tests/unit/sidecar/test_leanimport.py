"""``providers.leanimport``: SDK packages without their ``__init__``s build the same requests.

The sidecar imports ``openai``, ``anthropic`` and ``google.genai`` lean (their type trees are
never loaded; google-genai's ``types`` runs only what is used, ``providers.leandefs``);
each case runs in a fresh interpreter, once lean (as the sidecar) and once after a normal
``import openai, anthropic, google.genai`` (as a program using the SDKs would), and the URL,
headers and body each adapter's SDK builds must be identical.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelroute.sidecar.providers.leanimport import lean_package

BUILD = textwrap.dedent("""
    import asyncio, json, sys
    if sys.argv[1] == "full":
        import anthropic, openai, google.genai  # noqa: F401  (the SDKs as a program imports them)
    from modelroute.api.v1alpha1.spec import Target
    from modelroute.sidecar.providers.registry import build_adapter

    async def main() -> None:
        out = {}
        request = {"model": "r", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 9, "temperature": 0.5,
                   "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}
        png = "iVBORw0KGgo="
        gemini = [  # request shapes whose google-genai types the lean ``types`` defines on first use
            {"model": "r", "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": [{"type": "text", "text": "café"},
                                             {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}]},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\\"a\\": 1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "{\\"t\\": 3}"}],
             "tools": request["tools"], "tool_choice": "required", "stop": ["x"], "seed": 3, "top_p": 0.9},
            {"model": "r", "messages": [{"role": "user", "content": "label"}], "response_format": {
                "type": "json_schema", "json_schema": {"name": "l", "schema": {
                    "type": "object", "properties": {"l": {"type": "string", "enum": ["a", "b"]}}}}}},
            {"model": "r", "messages": [{"role": "user", "content": "json"}], "response_format": {"type": "json_object"}},
            {"model": "r", "messages": [{"role": "user", "content": "think"}], "reasoning_effort": "low"},
            {"model": "r", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]},
        ]
        for provider, model in (("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"), ("gemini", "gemini-2.5-flash")):
            target = Target.model_validate({"name": provider, "provider": provider, "model": model,
                                            "baseUrl": "http://127.0.0.1:9", "apiKey": {"env": "K"}})
            adapter = build_adapter(target, lambda: "sk-test")
            for stream in (False, True):
                prepared, body = await adapter.build(request, stream)
                out[f"{provider} {stream}"] = [prepared.url, dict(prepared.headers), json.loads(body)]
            if provider == "gemini":
                for i, extra in enumerate(gemini):
                    try:
                        prepared, body = await adapter.build(extra, False)
                        out[f"gemini {i}"] = [prepared.url, dict(prepared.headers), json.loads(body)]
                    except Exception as e:  # refused the same way, lean or not
                        out[f"gemini {i}"] = adapter.build_failure(e).message
                prepared, body = await adapter.build_embed({"input": ["a", "b"], "dimensions": 8})
                out["gemini embed"] = [prepared.url, dict(prepared.headers), json.loads(body)]
                try:  # contents google-genai's Content refuses (the translator never makes them)
                    adapter._builder.build({"model": model, "contents": [{"role": "user", "parts": [{"bogus": 1}]}]}, False)
                except Exception as e:
                    out["gemini refused"] = adapter.build_failure(e).message
            await adapter.aclose()
        sdk = [m for m in sys.modules if m.partition(".")[0] in ("openai", "anthropic")]
        genai = [m for m in sys.modules if m.startswith("google.genai.")]
        types = sys.modules["google.genai.types"]
        print(json.dumps({"built": out, "sdk_modules": len(sdk), "genai_modules": sorted(genai),
                          "anthropic_types": len([m for m in sdk if m.startswith("anthropic.types.")]),
                          "genai_types_defined": len([v for v in vars(types).values() if isinstance(v, type)]),
                          "httpcore": "httpcore2" in sys.modules}))

    asyncio.run(main())
""")


def run_fresh(script: str, mode: str) -> dict[str, Any]:
    """What ``script`` prints (JSON), run with ``mode`` as its argument in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _run(mode: str) -> dict[str, Any]:
    return run_fresh(BUILD, mode)


def test_lean_sdks_build_the_same_requests_with_a_fraction_of_the_modules() -> None:
    lean, full = _run("lean"), _run("full")
    assert lean["built"] == full["built"]
    assert len(lean["built"]) == 13
    assert "gemini refused" in lean["built"]  # a request the SDK's types refuse, refused the same way
    # google-genai: no client module, nor the API modules it imports; a part of ``types`` defined
    for module in ("client", "batches", "caches", "files", "live", "tunings", "chats"):
        assert f"google.genai.{module}" in full["genai_modules"]
        assert f"google.genai.{module}" not in lean["genai_modules"]
    assert lean["genai_types_defined"] * 5 < full["genai_types_defined"], (lean["genai_types_defined"],
                                                                          full["genai_types_defined"])
    assert lean["sdk_modules"] * 2 < full["sdk_modules"], (lean["sdk_modules"], full["sdk_modules"])
    # anthropic's send-only functions (tracing, error classes) are forwarders: their type graphs are not loaded
    assert lean["anthropic_types"] * 10 < full["anthropic_types"], (lean["anthropic_types"], full["anthropic_types"])
    assert lean["httpcore"] is False  # the builder clients' Unsent transport: no httpx2 sending stack


def test_the_builder_clients_transport_refuses_to_send() -> None:
    import httpx2

    from modelroute.sidecar.providers.transport import Unsent

    with httpx2.Client(transport=Unsent()) as client, pytest.raises(RuntimeError, match="requests go through Transport"):
        client.get("http://127.0.0.1:9/x")


def _fake_sdk(root: Path, name: str) -> None:
    pkg = root / name
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        from ._client import Client as Client
        from . import sub
        from .sub.heavy import Heavy
        LOADED = True
        __all__ = ["Client", "sub", "Heavy", "LOADED"]
    """))
    (pkg / "_client.py").write_text("from .sub.light import light\nclass Client:\n    value = light\n")
    (pkg / "sub" / "__init__.py").write_text("from .light import light as light\nfrom .heavy import Heavy\n")
    (pkg / "sub" / "light.py").write_text("light = 1\n")
    (pkg / "sub" / "heavy.py").write_text("class Heavy:\n    pass\n")


@contextlib.contextmanager
def _installed(make: Callable[[Path, str], None], root: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fake SDK package ``name`` made by ``make`` under ``root``, importable; its modules dropped afterwards."""
    make(root, name)
    monkeypatch.syspath_prepend(str(root))
    try:
        yield
    finally:
        for module in [m for m in sys.modules if m.partition(".")[0] == name]:
            del sys.modules[module]


def _fake_sdk_with_send_only(root: Path, name: str) -> None:
    pkg = root / name
    (pkg / "lib").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from ._base import Base as Base\n")
    (pkg / "_base.py").write_text(textwrap.dedent("""
        from .lib import finish
        from ._errors import make_error
        class Base:
            def fail(self, n):
                return make_error(n)
            def done(self):
                return finish()
    """))
    (pkg / "_errors.py").write_text("from . import heavy\nLIMIT = 3\ndef make_error(n):\n    return ('error', n, heavy.KIND)\n")
    (pkg / "heavy.py").write_text("KIND = 'heavy'\n")
    (pkg / "lib" / "__init__.py").write_text("from ._trace import finish as finish\n")
    (pkg / "lib" / "_trace.py").write_text("from .. import heavy\ndef finish():\n    return heavy.KIND\n")


def test_on_call_names_are_forwarders_that_load_their_module_on_the_first_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "modelroute_test_lean_send_only"
    with _installed(_fake_sdk_with_send_only, tmp_path, name, monkeypatch):
        pkg = lean_package(name, on_call=(f"{name}.lib.finish", f"{name}._errors.make_error"))
        base = pkg.Base()
        assert f"{name}.heavy" not in sys.modules  # neither module behind the forwarders ran
        assert f"{name}.lib._trace" not in sys.modules
        assert base.done() == "heavy"  # a package's name: its module imported on the first call
        assert f"{name}.lib._trace" in sys.modules
        errors = sys.modules[f"{name}._errors"]
        assert "make_error" not in errors.__dict__  # a plain module: not run yet
        assert base.fail(7) == ("error", 7, "heavy")  # run in place on the first call, then the SDK's own
        assert type(errors) is type(sys)
        assert errors.LIMIT == 3
        assert base.fail(8) == ("error", 8, "heavy")
        with pytest.raises(ValueError, match="not in package"):
            lean_package(name, on_call=("elsewhere.f",))


def test_names_resolve_one_module_at_a_time_and_anything_else_runs_the_real_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "modelroute_test_lean_sdk"
    with _installed(_fake_sdk, tmp_path, name, monkeypatch):
        pkg = lean_package(name)
        assert pkg.Client.value == 1  # ._client, and from it .sub.light: the package inits did not run
        assert f"{name}.sub.light" in sys.modules
        assert f"{name}.sub.heavy" not in sys.modules
        assert pkg.sub.light == 1
        with pytest.raises(AttributeError):
            pkg.__wrapped__  # noqa: B018  (dunder lookups never run the init)
        assert f"{name}.sub.heavy" not in sys.modules
        assert pkg.LOADED is True  # defined by the __init__ itself: it runs, once, in place
        assert f"{name}.sub.heavy" in sys.modules
        assert type(pkg) is type(sys)
        assert pkg.__all__ == ["Client", "sub", "Heavy", "LOADED"]
