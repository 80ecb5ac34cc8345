"""``streaming.py --load go``'s pure parts: the Go binary's cache key, the reader's and the floor relay's
command lines, the floor paths, CPU per chunk in user and system time, and the largest stream count a
path sustained (bench/goload.py, bench/streaming.py)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

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


def test_the_floor_relay_serves_loopback_and_relays_to_the_emulators_host_and_port() -> None:
    argv = goload.relay_argv(Path("/x/streamload"), 9100, "http://127.0.0.1:9000", 2)
    assert argv == ["/x/streamload", "relay", "-listen", "127.0.0.1:9100", "-upstream", "127.0.0.1:9000", "-loops", "2"]
    for bad in ("https://127.0.0.1:9000", "http://127.0.0.1:9000/v1"):
        with pytest.raises(ValueError, match="http://IPv4:port"):
            goload.relay_argv(Path("/x/streamload"), 9100, bad, 1)


def test_floor_paths_name_one_loop_floor_and_k_loops_floor_k() -> None:
    assert streaming.floor_paths("") == {}
    assert streaming.floor_paths("1") == {"floor": 1}
    assert streaming.floor_paths("1,2,1") == {"floor": 1, "floor2": 2}
    with pytest.raises(SystemExit, match="at least 1"):
        streaming.floor_paths("0")


def test_each_floor_gets_the_passthroughs_request_at_its_own_url() -> None:
    reqs = streaming.requests_for("chat", "http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3")
    out = streaming.with_floors(reqs, "http://127.0.0.1:2", {"floor": "http://127.0.0.1:4"})
    url, headers, body, token = out["floor"]
    assert url == "http://127.0.0.1:4/v1/chat/completions"
    assert (headers, body, token) == reqs["passthrough"][1:]
    assert {k: v for k, v in out.items() if k != "floor"} == reqs


def test_cpu_per_chunk_keeps_user_and_system_time_apart() -> None:
    per = streaming.split_per_chunk({"emulator": 0.2, "proxy": 0.06}, {"emulator": 0.5, "proxy": 0.42}, 100_000)
    assert per == {"emulator": {"user": pytest.approx(2.0), "sys": pytest.approx(5.0)},
                   "proxy": {"user": pytest.approx(0.6), "sys": pytest.approx(4.2)}}
    # 7 + 4.8 us per chunk at 500 streams x one chunk each 5 ms (100,000 chunks/s): 1.18 cores
    assert streaming.on_schedule_cpu(per, 500, 5.0) == pytest.approx(1.18)


def test_read_and_write_calls_per_chunk() -> None:
    per = streaming.calls_per_chunk({"proxy": {"read": 100_500, "write": 100_000}}, 100_000)
    assert per == {"proxy": {"read": 1.005, "write": 1.0}}
    assert streaming.calls_per_chunk({}, 100_000) == {}
