"""The SDK internals the adapters' builders use, pinned: an SDK upgrade that moves one fails here first.

The adapters let each official SDK build its requests through private API (``providers/openai_anthropic._Builder``
for the two Stainless SDKs, ``providers/gemini._Builder`` for google-genai), and send them with ``providers/transport.py``. Each test below checks the installed
version is the one the contract was written for and that every private name still has the shape the
builder calls. When a pin moves (requirements.lock), re-read the builder named in the message against
the new SDK, run ``tests/unit/translate/test_sdk_wire.py`` (the builders' requests against the SDKs' own
send path) and then update ``PINNED``. The model retirement dates copied from openai and anthropic
(``ProviderSpec.retirements``) follow the pin too: ``tests/unit/api/test_retirements.py`` compares them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import pytest

PINNED = {"openai": "3.57.0", "anthropic": "2.13.0", "google-genai": "3.6.1", "httpx2": "2.16.2"}
BUILDERS = {
    "openai": "sidecar/modelroute/sidecar/providers/openai_anthropic.py (_Builder)",
    "anthropic": "sidecar/modelroute/sidecar/providers/openai_anthropic.py (_Builder)",
    "google-genai": "sidecar/modelroute/sidecar/providers/gemini.py (_Builder.build, _Builder._rotate)",
    "httpx2": "the Stainless builders (request.url, request.headers.multi_items, base_url.copy_with/raw_path) "
              "and gemini._builder_clients",
}


def params_of(fn: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(fn).parameters)


@pytest.mark.parametrize("dist", sorted(PINNED))
def test_the_installed_sdk_is_the_version_the_contract_was_written_for(dist: str) -> None:
    installed = version(dist)
    assert installed == PINNED[dist], (
        f"{dist} is {installed}, the adapters' private-API contract was written for {PINNED[dist]}: re-check "
        f"{BUILDERS[dist]} against {dist} {installed}, run tests/unit/translate/test_sdk_wire.py, then update PINNED here")


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_the_stainless_builder_calls_still_exist_with_their_shapes(sdk: str) -> None:
    module = pytest.importorskip(sdk)
    models = pytest.importorskip(f"{sdk}._models")
    client_cls = module.AsyncOpenAI if sdk == "openai" else module.AsyncAnthropic
    where = BUILDERS[sdk]
    assert inspect.iscoroutinefunction(client_cls._prepare_options), where
    assert params_of(client_cls._prepare_options) == ["self", "options"], where
    assert not inspect.iscoroutinefunction(client_cls._build_request), where
    assert params_of(client_cls._build_request)[:2] == ["self", "options"], where
    assert inspect.iscoroutinefunction(client_cls._prepare_request), where
    assert params_of(client_cls._prepare_request) == ["self", "request"], where
    options_cls = models.FinalRequestOptions
    assert {"method", "url", "content", "headers"} <= set(options_cls.model_fields), where
    options = options_cls.construct(method="post", url="https://h.invalid/v1/x", content=b"")
    assert options.model_copy().url == "https://h.invalid/v1/x", where
    client = client_cls(api_key="k", max_retries=0)
    assert hasattr(client, "api_key") and client.base_url.raw_path.endswith(b"/"), where
    assert callable(client.base_url.copy_with), where
    if sdk == "anthropic":
        assert hasattr(client, "auth_token"), where


async def test_the_stainless_builder_prepares_url_and_auth_headers() -> None:
    """What ``_Builder.prepare`` reads from the built request: an absolute URL and the key in a header."""
    openai = pytest.importorskip("openai")
    from openai._models import FinalRequestOptions

    client = openai.AsyncOpenAI(api_key="sk-contract", max_retries=0, base_url="https://h.invalid/v1")
    options = await client._prepare_options(FinalRequestOptions.construct(method="post", url="https://h.invalid/v1/chat/completions", content=b""))
    request = client._build_request(options)
    await client._prepare_request(request)
    headers = dict(request.headers.multi_items())
    assert str(request.url) == "https://h.invalid/v1/chat/completions"
    assert headers.get("authorization") == "Bearer sk-contract"


def test_only_the_builders_touch_the_sdks_private_api() -> None:
    """Private SDK names (``sdk._x`` modules, ``client._x`` members) appear in the two builder modules only."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "sidecar/modelroute/sidecar/providers"
    private = re.compile(r"\b(openai|anthropic|genai|google\.genai)\._|\b(client|api|genai_models|_common)\._[a-zA-Z]")
    users = sorted(p.name for p in root.glob("*.py") if private.search(p.read_text(encoding="utf-8")))
    assert users == ["gemini.py", "openai_anthropic.py"], users


def test_anthropics_send_only_functions_are_imported_by_its_base_client_and_defined_where_named() -> None:
    """``ANTHROPIC_SEND_ONLY`` (forwarders in the sidecar, ``leanimport``'s ``on_call``): still what
    ``anthropic._base_client`` imports, and functions of the SDK (checked in a fresh interpreter
    that imports the SDK normally)."""
    import ast
    import importlib.util
    import json
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("anthropic")
    from modelroute.sidecar.providers.openai_anthropic import ANTHROPIC_SEND_ONLY

    spec = importlib.util.find_spec("anthropic._base_client")
    assert spec is not None and spec.origin is not None
    imported = {f"anthropic.{node.module}.{alias.name}" for node in ast.parse(Path(spec.origin).read_text()).body
                if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module for alias in node.names}
    assert set(ANTHROPIC_SEND_ONLY) <= imported, BUILDERS["anthropic"]
    check = ("import importlib, inspect, json, sys; import anthropic; print(json.dumps([inspect.isfunction(getattr("
             "importlib.import_module(q.rpartition('.')[0]), q.rpartition('.')[2])) for q in sys.argv[1:]]))")
    done = subprocess.run([sys.executable, "-c", check, *ANTHROPIC_SEND_ONLY], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == [True] * len(ANTHROPIC_SEND_ONLY)


def test_the_gemini_builder_calls_still_exist_with_their_shapes() -> None:
    genai = pytest.importorskip("google.genai")
    from google.genai import _api_client, _common
    from google.genai import models as genai_models

    where = BUILDERS["google-genai"]
    assert params_of(genai_models._GenerateContentParameters_to_mldev) == [
        "api_client", "from_object", "parent_object", "root_object"], where
    assert params_of(_common.encode_unserializable_types) == ["data"], where
    # gemini._to_mldev: the converter's parts, called as _GenerateContentParameters_to_mldev calls them
    from google.genai import _transformers
    assert params_of(genai_models._Content_to_mldev) == ["from_object", "parent_object", "root_object"], where
    assert params_of(genai_models._GenerateContentConfig_to_mldev) == [
        "api_client", "from_object", "parent_object", "root_object"], where
    assert params_of(_transformers.t_model) == ["client", "model"], where
    assert params_of(_common.set_value_by_path) == ["data", "keys", "value"], where
    assert params_of(_common.convert_to_dict)[:1] == ["obj"], where
    assert params_of(_api_client.BaseApiClient._build_request) == [
        "self", "http_method", "path", "request_dict", "http_options"], where
    client = genai.Client(api_key="k-contract")
    api = client._api_client
    assert isinstance(api, _api_client.BaseApiClient), where
    assert api.api_key == "k-contract" and api._http_options.headers is not None, where
    assert api._http_options.headers.get("x-goog-api-key") == "k-contract", where
    kwargs: dict[str, Any] = {"model": "gemini-2.5-flash", "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    request = genai_models._GenerateContentParameters_to_mldev(api, kwargs, None, kwargs)
    assert (request.get("_url") or {}).get("model") == "models/gemini-2.5-flash", where
    request.pop("config", None)
    http = api._build_request("post", "{model}:generateContent".format_map(request["_url"]),
                              _common.encode_unserializable_types(_common.convert_to_dict(request)), None)
    assert http.url.endswith("/models/gemini-2.5-flash:generateContent"), where
    assert set(vars(http)) >= {"url", "headers", "data", "method"}, where
    client.close()


def test_the_gemini_embed_builder_calls_still_exist_with_their_shapes() -> None:
    genai = pytest.importorskip("google.genai")
    from google.genai import models as genai_models
    from google.genai import types as genai_types

    where = BUILDERS["google-genai"]
    assert params_of(genai_models._EmbedContentParametersPrivate_to_mldev) == [
        "api_client", "from_object", "parent_object", "root_object"], where
    client = genai.Client(api_key="k-contract")
    api = client._api_client
    config = genai_types.EmbedContentConfig(output_dimensionality=8)
    params = genai_types._EmbedContentParametersPrivate(model="gemini-embedding-001", contents=["a"], config=config)
    request = genai_models._EmbedContentParametersPrivate_to_mldev(api, params, None, params)
    assert (request.get("_url") or {}).get("model") == "models/gemini-embedding-001", where
    assert request["requests"][0]["outputDimensionality"] == 8, where
    client.close()
