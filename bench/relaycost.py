"""The streaming relay's own work per chunk, in one process: instructions (cachegrind) or CPU time.

``streaming.py`` measures the relay between sockets, on a host where the emulator and the
reading app share the 2 cores: CPU per stream there moves with the load, and how many events
each read carries moves with it. This script takes the sockets, the emulator and the app out:
the emulator's own stream bytes (fetched once) are handed to the sidecar's transport as reads of
``--per-read`` events each, and the sidecar's routing, translation and wire encoding run in
this process (the real adapter, ``router.open_stream``, the OpenAI wire; a ``Response`` stand-in
that only counts the bytes of each ``write``). So the figures are deterministic: same input,
same work; ``--per-read 1`` is a quiet host (an event per read), 10 a loaded one.

    .venv/bin/python bench/relaycost.py [--chunks 200] [--streams 200] [--per-read 1,10]
        [--routes chat,claude] [--before DIR] [--cpu] [--no-obfuscation]

Without ``--cpu`` each figure is valgrind's instruction count (``--tool=cachegrind --cache-sim=no``)
of a run with ``--streams`` streams minus one with none, per relayed content chunk: set-up and
imports cancel out. ``--before DIR``: the same for a sidecar imported from DIR (``git archive``).
OpenAI chunks carry the real API's ``obfuscation`` padding (the emulator's default, as OpenAI's);
``--no-obfuscation`` asks for none (``stream_options.include_obfuscation: false``).
Not counted: aiohttp's socket reads and writes (``streaming.py`` has them), which a relay pays per
read and per ``write`` (the stand-in counts the writes).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


# ---- the inner run: one route, one tree ----------------------------------------------------------


class _Content:
    """``resp.content`` of a canned answer: its frames, ``per_read`` to a read."""

    def __init__(self, frames: list[bytes], per_read: int) -> None:
        self._reads = [b"".join(frames[i:i + per_read]) for i in range(0, len(frames), per_read)]
        self._i = 0

    async def readany(self) -> bytes:
        if self._i >= len(self._reads):
            return b""
        self._i += 1
        return self._reads[self._i - 1]

    def read_nowait(self) -> bytes:
        return b""

    def at_eof(self) -> bool:
        return self._i >= len(self._reads)


class _Answer:
    status = 200
    headers: dict[str, str] = {}

    def __init__(self, frames: list[bytes], per_read: int) -> None:
        self.content = _Content(frames, per_read)

    def release(self) -> None:
        return None

    def close(self) -> None:
        return None


class _Writes:
    """The app's side: what ``inbound._stream`` would write, counted, not sent."""

    def __init__(self) -> None:
        self.writes = 0
        self.bytes = 0
        self.kept: list[bytes] | None = []  # the first stream's bytes (compared between trees)

    async def write(self, data: bytes) -> None:
        self.writes += 1
        self.bytes += len(data)
        if self.kept is not None:
            self.kept.append(data)

    def digest(self) -> str:
        """The first stream's bytes, its generated id and time left out (they differ per run)."""
        text = re.sub(rb'"(id|created)":("[^"]*"|\d+)', b"", b"".join(self.kept or []))
        return hashlib.sha256(text).hexdigest()[:12]


async def _relay(sc: Any, enc: Any, out: _Writes) -> None:
    """``inbound._stream``'s loop: per batch of chunks (``feed_all``, else ``feed`` each), or per chunk with ``buffered`` (older trees)."""
    batches = getattr(sc, "batches", None)
    if batches is not None:
        feed = enc.feed
        feed_all = getattr(enc, "feed_all", None) or (lambda batch: feed(batch[0]) if len(batch) == 1 else b"".join(map(feed, batch)))
        async for batch in batches():
            data = feed_all(batch)
            if data:
                await out.write(data)
    else:
        pending = b""
        async for chunk in sc:
            data = enc.feed(chunk)
            if sc.buffered():
                pending += data
                continue
            if pending:
                data, pending = pending + data, b""
            if data:
                await out.write(data)
    await out.write(enc.finish())


async def inner(route: str, frames: list[bytes], streams: int, per_read: int) -> dict[str, Any]:
    import harness
    from modelroute.api.config import SidecarConfig
    from modelroute.sidecar.providers.registry import build_adapter
    from modelroute.sidecar.providers.transport import Transport
    from modelroute.sidecar.routing import router
    from modelroute.sidecar.routing.observer import NullObserver
    from modelroute.sidecar.routing.runtime import Runtime
    from modelroute.sidecar.server.wire import OPENAI

    class Canned(Transport):
        async def _open(self, req: Any, body: bytes, limits: Any, total: float | None = None) -> Any:
            return _Answer(frames, per_read)

    def adapters(target: Any, key: Any, **kw: Any) -> Any:
        a = build_adapter(target, key, **kw)
        a._transport = Canned(target.provider.value)
        return a

    docs = [json.loads(d) for d in harness.config_yaml("http://127.0.0.1:9", [route]).split("\n---\n")]
    cfg = SidecarConfig.model_validate({"routes": docs})
    rt = Runtime.build(cfg, lambda target: lambda: "sk-bench", NullObserver(), adapters=adapters)
    body = {"model": route, "messages": [{"role": "user", "content": "stream for the benchmark"}], "stream": True}
    out = _Writes()
    route_rt = rt.routes[route]
    first: list[bytes] = []
    c0 = time.process_time()
    for _ in range(streams):
        sc = await router.open_stream(route_rt, body)
        try:
            await _relay(sc, OPENAI.stream(sc.first), out)
        finally:
            await sc.aclose()
        if out.kept is not None and out.writes:
            first, out.kept = out.kept, None
    cpu = time.process_time() - c0
    await rt.aclose()
    out.kept = first if streams else []
    return {"cpu_s": cpu, "writes": out.writes, "bytes": out.bytes, "sha256": out.digest()}


# ---- the outer run: the emulator's bytes, each tree under cachegrind ------------------------------


def fetch_frames(route: str, chunks: int, obfuscation: bool = True) -> list[bytes]:
    """The emulator's own stream for ``route`` (no pacing), as its SSE frames."""
    import urllib.request

    import harness

    with harness.stack() as st:
        upstream = st.emulator(["--stream-words", str(chunks)])
        url, headers, body = harness.direct_request(upstream, route)
        streamed = json.loads(body)
        streamed["stream"] = True
        streamed.pop("max_tokens", None)  # the whole answer: --chunks words
        if harness.ROUTES[route][0] == "anthropic":
            streamed["max_tokens"] = 4096
        if harness.ROUTES[route][0] == "openai":
            streamed["stream_options"] = {"include_usage": True}  # the sidecar asks for it
            if not obfuscation:
                streamed["stream_options"]["include_obfuscation"] = False
        req = urllib.request.Request(url, data=json.dumps(streamed).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
    return [f + b"\n\n" for f in raw.split(b"\n\n") if f.strip()]


def run_inner(tree: Path | None, route: str, frames_file: Path, streams: int, per_read: int, cachegrind: bool) -> dict[str, Any]:
    return run_counted(Path(__file__), ["--inner", route, "--frames", str(frames_file), "--streams", str(streams),
                                        "--per-read", str(per_read)], tree, cachegrind)


def run_counted(script: Path, args: list[str], tree: Path | None, cachegrind: bool) -> dict[str, Any]:
    """``script args`` with the sidecar of ``tree`` (None: this one): its last line's JSON, and with
    ``cachegrind`` its instruction count (``instructions``)."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": os.pathsep.join(filter(None, [str(tree or ""), str(BENCH)]))}
    cmd = [sys.executable, str(script), *args]
    if cachegrind:
        cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", *cmd]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"inner run failed: {p.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(p.stdout.strip().splitlines()[-1])
    if cachegrind:
        m = re.search(r"I\s+refs:\s+([\d,]+)", p.stderr)
        assert m, p.stderr[-500:]
        out["instructions"] = int(m.group(1).replace(",", ""))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks", type=int, default=200, help="content chunks per stream (the emulator's words)")
    p.add_argument("--streams", type=int, default=200)
    p.add_argument("--per-read", default="1,10", help="events per upstream read, a comma list")
    p.add_argument("--routes", default="chat,claude", help="chat: openai -> openai, claude: openai -> anthropic")
    p.add_argument("--before", type=Path, metavar="DIR", help="also measure the sidecar under DIR (its modelroute/sidecar)")
    p.add_argument("--cpu", action="store_true", help="CPU time of this host instead of instruction counts (noisier)")
    p.add_argument("--no-obfuscation", action="store_true", help="OpenAI chunks without the obfuscation padding")
    p.add_argument("--inner", metavar="ROUTE", help=argparse.SUPPRESS)
    p.add_argument("--frames", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.inner:
        frames = [bytes.fromhex(f) for f in json.loads(a.frames.read_text())]
        print(json.dumps(asyncio.run(inner(a.inner, frames, a.streams, int(a.per_read)))))
        return
    sys.path.insert(0, str(BENCH))
    import harness

    trees: dict[str, Path | None] = {"this tree": None, **({"before": a.before} if a.before else {})}
    rows, out = [], {"bench": "relaycost", "machine": harness.machine(), "chunks": a.chunks, "streams": a.streams,
                     "obfuscation": not a.no_obfuscation, "runs": []}
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    for route in filter(None, a.routes.split(",")):
        frames = fetch_frames(route, a.chunks, not a.no_obfuscation)
        frames_file = tmp / f"relaycost-{route}-{os.getpid()}.json"
        frames_file.write_text(json.dumps([f.hex() for f in frames]))
        try:
            for per_read in (int(x) for x in a.per_read.split(",")):
                for name, tree in trees.items():
                    base = run_inner(tree, route, frames_file, 0, per_read, not a.cpu)
                    full = run_inner(tree, route, frames_file, a.streams, per_read, not a.cpu)
                    n = a.streams * a.chunks
                    per_chunk = ((full["instructions"] - base["instructions"]) / n if not a.cpu
                                 else full["cpu_s"] * 1e6 / n)
                    r = {"route": route, "per_read": per_read, "tree": name, "per_chunk": per_chunk,
                         "writes_per_stream": full["writes"] / a.streams, "bytes": full["bytes"]}
                    out["runs"].append(r)
                    rows.append([f"{route} {per_read}/read {name}", round(per_chunk, 2 if a.cpu else 0),
                                 r["writes_per_stream"], full["bytes"] // max(1, a.streams), full["sha256"]])
        finally:
            frames_file.unlink(missing_ok=True)
    unit = "CPU us per chunk" if a.cpu else "instructions per chunk"
    print(f"relaycost: {a.streams} streams of {a.chunks} chunks{'' if a.no_obfuscation else ' with obfuscation'}, "
          f"in one process (load avg {os.getloadavg()[0]:.2f})")
    print(harness.table(["route, events per read, sidecar", unit, "writes per stream", "bytes per stream",
                         "sha256, first stream (ids, times left out)"], rows))
    print(f"-> {harness.write_result('relaycost', out)}")


if __name__ == "__main__":
    main()
