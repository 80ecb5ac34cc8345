"""The Go load side of ``streaming.py --load go``: build ``bench/streamload`` once, start its emulator and
its floor relay, run its reader.

At 500 streams x 200 chunks at 5 ms (100,000 chunks/s) the Python emulator and the aiohttp reader
alone needed 1.57 and 1.03 CPU of this 2-core host (bench/README.md, session 5): the measurement
left nothing to the relay it measures. ``bench/streamload`` (stdlib-only Go) writes the same bytes
on the same fixed schedule and reads them for a fraction of that.

The binary is built on demand with the Go toolchain (``$GO``, else ``go`` on PATH, else
``/usr/local/go/bin/go``; no module downloads: ``GOPROXY=off``, ``GOTOOLCHAIN=local``) into
``$MODELROUTE_CACHE/streamload/<key>/streamload`` (default ``~/.cache/modelroute``), the key
hashing the sources and ``go version``: a changed source gets its own binary.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import harness

SRC = harness.BENCH / "streamload"
CACHE = Path(os.environ.get("MODELROUTE_CACHE") or Path.home() / ".cache" / "modelroute") / "streamload"
GO_ENV = {"GOPROXY": "off", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}


def go_tool() -> str:
    found = os.environ.get("GO") or shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(found).exists():
        raise SystemExit("--load go needs the Go toolchain (set GO=/path/to/go)")
    return found


def key(sources: dict[str, bytes], go_version: str) -> str:
    """The cache key: each source's name and bytes, and the toolchain's ``go version``."""
    h = hashlib.sha256(go_version.encode())
    for name in sorted(sources):
        h.update(b"\0" + name.encode() + b"\0" + sources[name])
    return h.hexdigest()[:16]


def build() -> Path:
    """The streamload binary for these sources, built if the cache has none."""
    go = go_tool()
    env = {**os.environ, **GO_ENV}
    version = subprocess.run([go, "version"], capture_output=True, text=True, check=True, env=env).stdout.strip()
    sources = {p.name: p.read_bytes() for p in sorted(SRC.iterdir()) if p.suffix == ".go" or p.name == "go.mod"}
    out = CACHE / key(sources, version) / "streamload"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"streamload.{os.getpid()}.tmp")
    subprocess.run([go, "build", "-trimpath", "-o", str(tmp), "."], cwd=SRC, env=env, check=True)
    tmp.replace(out)  # atomic: a concurrent run finds a whole binary or none
    return out


def emulator(st: harness.Stack, binary: Path, chunks: int, interval_ms: float) -> tuple[str, int]:
    """Start the Go emulator in ``st``; (its base URL, its pid)."""
    port = harness.free_port()
    p = st.start("emulator", [str(binary), "emulate", "-listen", f"127.0.0.1:{port}", "-chunks", str(chunks),
                              "-interval-ms", f"{interval_ms:g}"])
    url = f"http://127.0.0.1:{port}"
    harness.wait_http(f"{url}/healthz")
    return url, p.pid


def relay_argv(binary: Path, port: int, upstream: str, loops: int) -> list[str]:
    """The floor relay's command line: serve 127.0.0.1:``port``, relay to ``upstream`` (``http://IPv4:port``)."""
    host = upstream.removeprefix("http://").rstrip("/")
    if host == upstream or "/" in host:
        raise ValueError(f"the floor relay relays to http://IPv4:port, not {upstream!r}")
    return [str(binary), "relay", "-listen", f"127.0.0.1:{port}", "-upstream", host, "-loops", str(loops)]


def relay(st: harness.Stack, binary: Path, upstream: str, loops: int) -> tuple[str, int]:
    """Start the floor relay (``loops`` epoll loops, one OS thread each) in ``st``; (its base URL, its pid)."""
    port = harness.free_port()
    p = st.start(f"floor{loops}", relay_argv(binary, port, upstream, loops))
    url = f"http://127.0.0.1:{port}"
    harness.wait_http(f"{url}/healthz")  # relayed to the emulator's
    return url, p.pid


def read_argv(binary: Path, url: str, headers: dict[str, str], body: bytes, token: bytes, streams: int,
              chunks: int, interval_ms: float, late_ms: float, pids: dict[str, int]) -> list[str]:
    """The reader's command line: ``streams`` at once to ``url``, CPU of ``pids`` over the measured streams."""
    return [str(binary), "read", "-url", url, "-body", body.decode(), *(a for k, v in headers.items()
                                                                          for a in ("-header", f"{k}: {v}")),
            "-streams", str(streams), "-chunks", str(chunks), "-interval-ms", f"{interval_ms:g}",
            "-late-ms", f"{late_ms:g}", "-token", token.decode(),
            "-pids", ",".join(f"{name}={pid}" for name, pid in pids.items())]


async def read(argv: list[str]) -> dict[str, Any]:
    """Run the reader; its JSON report (``cpu_s``, ``cpu_user_s``, ``cpu_sys_s`` per name, ``reader``
    included; ``wall_s``; lateness in ms)."""
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=900)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"streamload read failed ({proc.returncode}): {stderr.decode(errors='replace').strip()[-2000:]}")
    out: dict[str, Any] = json.loads(stdout)
    return out
