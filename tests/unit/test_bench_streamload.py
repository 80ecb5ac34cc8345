"""``streaming.py --load go``'s pure parts: the Go binary's cache key, the reader's command line, and
the largest stream count a path sustained (bench/goload.py, bench/streaming.py)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "bench"))  # the bench scripts import their siblings by name
goload = importlib.import_module("goload")
streaming = importlib.import_module("streaming")


def row(errors: int = 0, late: int = 0) -> dict[str, int]:
    return {"errors": errors, "chunks_over_goal": late}


def test_sustained_is_the_largest_count_below_the_first_failure() -> None:
    rows = {"10 direct": row(), "100 direct": row(), "30 direct": row(),
            "10 sidecar": row(), "30 sidecar": row(late=1), "100 sidecar": row(),  # 100 passing after 30 failed
            "10 passthrough": row(errors=1)}
    assert streaming.sustained(rows) == {"direct": 100, "sidecar": 10, "passthrough": 0}


def test_the_cache_key_follows_the_sources_and_the_toolchain() -> None:
    src = {"main.go": b"package main", "go.mod": b"module m"}
    k = goload.key(src, "go version go1.26.8 linux/amd64")
    assert k == goload.key(dict(reversed(src.items())), "go version go1.26.8 linux/amd64")
    assert k != goload.key({**src, "main.go": b"package main "}, "go version go1.26.8 linux/amd64")
    assert k != goload.key({**src, "extra.go": b""}, "go version go1.26.8 linux/amd64")
    assert k != goload.key(src, "go version go1.26.9 linux/amd64")
    assert k != goload.key({"main.go": b"package mainmodule m"}, "go version go1.26.8 linux/amd64")


def test_every_source_of_the_binary_is_in_its_key() -> None:
    files = {p.name for p in goload.SRC.iterdir()}
    assert "go.mod" in files and "main.go" in files
    assert all(f.endswith(".go") or f == "go.mod" for f in files), files  # what build() hashes


def test_the_reader_gets_each_header_the_body_and_the_pids() -> None:
    argv = goload.read_argv(Path("/x/streamload"), "http://127.0.0.1:1/v1/chat/completions",
                            {"Content-Type": "application/json", "Authorization": "Bearer k"}, b'{"a": 1}',
                            b'"delta":{"content":"', 500, 200, 5.0, 50.0, {"emulator": 7, "proxy": 9})
    assert argv[:2] == ["/x/streamload", "read"]
    pairs = dict(zip(argv[2::2], argv[3::2], strict=False))
    assert pairs["-body"] == '{"a": 1}' and pairs["-streams"] == "500" and pairs["-interval-ms"] == "5"
    assert pairs["-token"] == '"delta":{"content":"' and pairs["-pids"] == "emulator=7,proxy=9"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-header"] == ["Content-Type: application/json",
                                                                          "Authorization: Bearer k"]
