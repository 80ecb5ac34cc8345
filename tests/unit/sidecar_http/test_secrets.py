"""Key sources: env read at load, files re-read on rotation (stat at most once per interval), mounted Secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelroute.api.v1alpha1 import Target
from modelroute.sidecar.config.secrets import SECRETS_DIR_ENV, FileKey, KeyResolver, KeyUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def target(api_key: dict[str, object] | None, provider: str = "openai") -> Target:
    return Target.model_validate({"name": "t", "provider": provider, "model": "m", "apiKey": api_key})


def test_env_is_read_at_load() -> None:
    env = {"K": "sk-one"}
    src = KeyResolver(environ=env).source_for(target({"env": "K"}))
    assert src is not None
    env["K"] = "sk-two"
    assert src() == "sk-one"
    assert "sk-one" not in repr(src)


def test_missing_env() -> None:
    with pytest.raises(KeyUnavailable, match="environment variable K is not set"):
        KeyResolver(environ={}).source_for(target({"env": "K"}))


def test_no_key_for_openai_compatible() -> None:
    assert KeyResolver(environ={}).source_for(target(None, "openai-compatible")) is None


def test_file_rotation_checked_at_most_once_per_interval(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text("sk-old\n")
    clock = Clock()
    src = FileKey(f, check_interval=1.0, clock=clock)
    assert src() == "sk-old"
    f.write_text("sk-new-longer\n")
    clock.now += 0.5
    assert src() == "sk-old"  # within the interval: no stat
    clock.now += 0.6
    assert src() == "sk-new-longer"


def test_rotation_by_symlink_swap_like_kubernetes(tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    (tmp_path / "v1" / "key").write_text("sk-aaaa")
    (tmp_path / "v2" / "key").write_text("sk-bbbb")  # same size, different inode
    os.symlink(tmp_path / "v1", tmp_path / "..data")
    os.symlink(tmp_path / "..data" / "key", tmp_path / "key")
    clock = Clock()
    src = FileKey(tmp_path / "key", check_interval=1.0, clock=clock)
    assert src() == "sk-aaaa"
    os.symlink(tmp_path / "v2", tmp_path / "..data.tmp")
    os.replace(tmp_path / "..data.tmp", tmp_path / "..data")
    clock.now += 2
    assert src() == "sk-bbbb"


def test_emptied_or_removed_file_keeps_last_key(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text("sk-good")
    clock = Clock()
    src = FileKey(f, clock=clock)
    f.write_text("")
    clock.now += 2
    assert src() == "sk-good"
    f.unlink()
    clock.now += 2
    assert src() == "sk-good"


def test_secret_key_ref_is_a_mounted_file(tmp_path: Path) -> None:
    (tmp_path / "llm-keys").mkdir()
    (tmp_path / "llm-keys" / "openai").write_text("sk-mounted")
    resolver = KeyResolver(environ={SECRETS_DIR_ENV: str(tmp_path)})
    src = resolver.source_for(target({"secretKeyRef": {"name": "llm-keys", "key": "openai"}}))
    assert src is not None and src() == "sk-mounted"
    # one source per file, shared by every target that references it
    assert resolver.source_for(target({"file": str(tmp_path / "llm-keys" / "openai")})) is src
    problem = resolver.problem(target({"secretKeyRef": {"name": "llm-keys", "key": "anthropic"}}))
    assert problem is not None and str(tmp_path) in problem and "sk-mounted" not in problem


def test_default_secrets_dir() -> None:
    assert str(KeyResolver(environ={}).secrets_dir) == "/var/run/secrets/modelroute"
