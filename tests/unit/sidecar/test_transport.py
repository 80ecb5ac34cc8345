"""The transport's pure parts: which SDK headers are sent, proxies from the environment, no key in a repr."""

from __future__ import annotations

import pytest

from modelroute.sidecar.providers.transport import Prepared, api_headers, env_proxy


def test_api_headers_drop_what_the_http_client_manages() -> None:
    built = [("Host", "x"), ("Content-Length", "2"), ("Connection", "keep-alive"), ("accept-encoding", "br"),
             ("x-stainless-read-timeout", "600"), ("X-Stainless-Timeout", "NOT_GIVEN"),
             ("authorization", "Bearer k"), ("anthropic-version", "2023-06-01"), ("user-agent", "AsyncAnthropic/x")]
    assert api_headers(built) == {"authorization": "Bearer k", "anthropic-version": "2023-06-01",
                                  "user-agent": "AsyncAnthropic/x"}


def test_prepared_never_shows_its_headers() -> None:
    p = Prepared("https://api.example/v1", {"authorization": "Bearer sk-secret-1234"}, ("sk-secret-1234",))
    assert "sk-secret" not in repr(p) and "sk-secret" not in str(p)


def test_proxies_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert env_proxy("https://api.openai.com/v1/chat/completions") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw@proxy.corp:3128")
    found = env_proxy("https://api.openai.com/v1/chat/completions")
    assert found is not None and str(found[0]) == "http://proxy.corp:3128" and found[1] is not None
    assert found[1].login == "user"
    assert env_proxy("http://127.0.0.1:8080/v1") is None  # no HTTP_PROXY set
    monkeypatch.setenv("NO_PROXY", "api.openai.com")
    assert env_proxy("https://api.openai.com/v1/chat/completions") is None
