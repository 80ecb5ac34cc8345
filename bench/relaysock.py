"""The streaming relay's work per chunk from socket to socket, in one process, deterministic: ``relaycost.py`` with aiohttp's side.

``relaycost.py`` hands the sidecar's transport canned reads and counts the writes: aiohttp's
socket work is left out (the client's ``data_received`` -> HTTP parser -> ``StreamReader`` ->
waiter -> task step, and the server's ``StreamResponse.write`` -> chunked framing ->
``transport.write``). Here the whole sidecar app (``inbound.build_app`` + native routes, the
real adapter and its aiohttp pool) serves on loopback, in one process with a raw-protocol
upstream and a raw-protocol app, all on one event loop:

* the upstream answers each POST with the emulator's own frames (``relaycost.fetch_frames``),
  ``--per-read`` frames to a ``write``; after a write that the relay turns into bytes for the
  app it writes the next only once the app received them (lockstep), so each upstream read
  carries exactly that write's frames (a write the relay holds or drops: the role chunk held
  until content, the hidden usage chunk, is followed at once by the next one, the two read
  together);
* the app sends one request per stream on one keep-alive connection and counts the bytes.

Figures: valgrind's instruction count (``--tool=cachegrind --cache-sim=no``) of a run with
``--warm`` + ``--streams`` streams minus one with ``--warm`` only, per content chunk; for the
sidecar (this tree, and ``--before DIR``), the bare aiohttp pass-through (``passthrough.py``)
and ``direct`` (the app reads the upstream itself: the harness's own share, to subtract).
``stalls`` counts a lockstep wait that needed its safety timer (a write predicted to reach the
app that did not): it must be 0, else the reads were not as described.

    .venv/bin/python bench/relaysock.py [--chunks 200] [--streams 20] [--per-read 1,10]
        [--routes chat,claude] [--paths direct,passthrough,sidecar] [--before DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
KEYS = {"OPENAI_API_KEY": "sk-bench", "ANTHROPIC_API_KEY": "sk-bench", "GEMINI_API_KEY": "sk-bench"}
END = b"0\r\n\r\n"
STALL_S = 0.5


def reaches_app(frame: bytes, path: str) -> bool:
    """Whether the relay on ``path`` writes something to the app for this upstream frame."""
    if path != "sidecar":
        return True  # direct and the pass-through relay every frame
    if b"content_block_delta" in frame:  # Anthropic: text (the finish goes out with message_stop, the end)
        return True
    # OpenAI: non-empty content or a finish reason (the role chunk is held, the usage chunk hidden)
    return re.search(rb'"content":"[^"]|"finish_reason":"', frame) is not None


class _Upstream(asyncio.Protocol):
    """One upstream connection: answers each POST with the canned frames, in lockstep with the app."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return
        m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", self.buf[:head_end])
        size = int(m.group(1)) if m else 0
        if len(self.buf) < head_end + 4 + size:
            return
        self.buf = self.buf[head_end + 4 + size:]
        self.run.answer(self)

    def send(self, data: bytes, head: bool, last: bool) -> None:
        assert self.transport is not None
        prefix = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" if head else b""
        self.transport.write(b"%s%x\r\n%s\r\n%s" % (prefix, len(data), data, END if last else b""))


class _App(asyncio.Protocol):
    """The app: one keep-alive connection, one stream at a time; tells the run of every read."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.tail = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.run.received += len(data)
        tail = (self.tail + data)[-len(END):]
        self.tail = tail
        self.run.arrived(tail == END)

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.fail(RuntimeError(f"the app's connection closed: {exc}"))


class _Run:
    """The lockstep between the upstream and the app."""

    def __init__(self, groups: list[tuple[bytes, bool]]) -> None:
        self.groups = groups
        self.up: _Upstream | None = None
        self.i = 0
        self.waiting = False
        self.done: asyncio.Future[None] | None = None
        self.received = 0
        self.stalls = 0
        self.seen = -1
        self.timer: asyncio.TimerHandle | None = None

    def answer(self, up: _Upstream) -> None:
        self.up, self.i, self.seen = up, 0, -1
        if self.timer is None:  # one watchdog per stream, not a timer per write
            self.timer = asyncio.get_running_loop().call_later(STALL_S, self.watch)
        self.push(head=True)

    def push(self, head: bool = False) -> None:
        """Write groups until one the app will see (then wait for it) or the last."""
        assert self.up is not None
        while self.i < len(self.groups):
            data, seen = self.groups[self.i]
            self.i += 1
            self.up.send(data, head, self.i == len(self.groups))
            head = False
            if seen and self.i < len(self.groups):
                self.waiting = True
                return

    def watch(self) -> None:
        """Every ``STALL_S``: a wait that has not moved since the last look is a stall (go on)."""
        self.timer = None
        if self.waiting and self.i == self.seen:
            self.stalls += 1
            self.waiting = False
            self.push()
        self.seen = self.i
        if self.done is not None and not self.done.done():
            self.timer = asyncio.get_running_loop().call_later(STALL_S, self.watch)

    def arrived(self, end: bool) -> None:
        if self.waiting:
            self.waiting = False
            self.push()
        if end and self.done is not None and not self.done.done():
            self.done.set_result(None)

    def fail(self, exc: BaseException) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc)


async def _serve_path(path: str, route: str, upstream: str) -> tuple[str, Any]:
    """Start ``path``'s relay in this loop; its URL and what to clean up."""
    from aiohttp import web

    if path == "direct":
        return upstream, None
    if path == "passthrough":
        import passthrough

        app = passthrough.build_app(upstream)
    else:
        import harness
        from modelroute.api.config import SidecarConfig
        from modelroute.sidecar.config.secrets import KeyResolver
        from modelroute.sidecar.server import inbound, native
        from modelroute.sidecar.server.state import SidecarState

        state = SidecarState(keys=KeyResolver(environ=KEYS))
        await state.apply(SidecarConfig.model_validate({"routes": harness.route_docs(upstream, [route])}), source="file")
        app = inbound.build_app(state)
        native.add_routes(app)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}", runner


async def inner(path: str, route: str, frames: list[bytes], warm: int, streams: int, per_read: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    groups = []
    for i in range(0, len(frames), per_read):
        part = frames[i:i + per_read]
        groups.append((b"".join(part), any(reaches_app(f, path) for f in part)))
    run = _Run(groups)
    server = await loop.create_server(lambda: _Upstream(run), "127.0.0.1", 0)
    upstream = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    url, runner = await _serve_path(path, route, upstream)
    host, port = url.removeprefix("http://").split(":")
    _, app = await loop.create_connection(lambda: _App(run), host, int(port))
    body = json.dumps({"model": route, "messages": [{"role": "user", "content": "stream for the benchmark"}],
                       "stream": True}).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
               b"Authorization: Bearer sk-bench\r\nContent-Length: %d\r\n\r\n%s") % (url[7:].encode(), len(body), body)
    for _ in range(warm + streams):
        run.done = loop.create_future()
        assert app.transport is not None
        app.transport.write(request)
        await asyncio.wait_for(run.done, 30)
    assert app.transport is not None
    app.transport.close()
    if run.timer is not None:
        run.timer.cancel()
    if runner is not None:
        await runner.cleanup()
    server.close()
    return {"received": run.received, "stalls": run.stalls}


def run_inner(tree: Path | None, path: str, route: str, frames_file: Path, warm: int, streams: int, per_read: int) -> dict[str, Any]:
    import relaycost

    return relaycost.run_counted(Path(__file__), ["--inner", f"{path}:{route}", "--frames", str(frames_file), "--warm", str(warm),
                                                  "--streams", str(streams), "--per-read", str(per_read)], tree, True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks", type=int, default=200, help="content chunks per stream (the emulator's words)")
    p.add_argument("--streams", type=int, default=20)
    p.add_argument("--warm", type=int, default=3, help="streams run before the counted ones, in both runs")
    p.add_argument("--per-read", default="1,10", help="frames per upstream write (and read), a comma list")
    p.add_argument("--routes", default="chat,claude", help="chat: openai -> openai, claude: openai -> anthropic")
    p.add_argument("--paths", default="direct,passthrough,sidecar")
    p.add_argument("--before", type=Path, metavar="DIR", help="also measure the sidecar under DIR (its modelroute/sidecar)")
    p.add_argument("--inner", metavar="PATH:ROUTE", help=argparse.SUPPRESS)
    p.add_argument("--frames", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.inner:
        path, route = a.inner.split(":")
        frames = [bytes.fromhex(f) for f in json.loads(a.frames.read_text())]
        print(json.dumps(asyncio.run(inner(path, route, frames, a.warm, a.streams, int(a.per_read)))))
        return
    sys.path.insert(0, str(BENCH))
    import harness
    import relaycost

    rows, out = [], {"bench": "relaysock", "machine": harness.machine(), "chunks": a.chunks, "streams": a.streams, "runs": []}
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    for route in filter(None, a.routes.split(",")):
        frames = relaycost.fetch_frames(route, a.chunks)
        frames_file = tmp / f"relaysock-{route}-{os.getpid()}.json"
        frames_file.write_text(json.dumps([f.hex() for f in frames]))
        try:
            for per_read in (int(x) for x in a.per_read.split(",")):
                for path in filter(None, a.paths.split(",")):
                    trees: dict[str, Path | None] = {"": None}
                    if path == "sidecar":
                        trees = {"this tree": None, **({"before": a.before} if a.before else {})}
                    for name, tree in trees.items():
                        base = run_inner(tree, path, route, frames_file, a.warm, 0, per_read)
                        full = run_inner(tree, path, route, frames_file, a.warm, a.streams, per_read)
                        per_chunk = (full["instructions"] - base["instructions"]) / (a.streams * a.chunks)
                        label = f"{path} {name}".strip()
                        r = {"route": route, "per_read": per_read, "path": label, "per_chunk": per_chunk,
                             "stalls": full["stalls"], "bytes_per_stream": (full["received"] - base["received"]) / a.streams}
                        out["runs"].append(r)
                        rows.append([f"{route} {per_read}/read {label}", round(per_chunk), r["stalls"], round(r["bytes_per_stream"])])
        finally:
            frames_file.unlink(missing_ok=True)
    print(f"relaysock: {a.streams} streams of {a.chunks} chunks, socket to socket in one process (load avg {os.getloadavg()[0]:.2f})")
    print(harness.table(["route, frames per read, path", "instructions per chunk", "stalls", "bytes per stream"], rows))
    print(f"-> {harness.write_result('relaysock', out)}")


if __name__ == "__main__":
    main()
