"""Streaming through the sidecar: added time to first token, inter-chunk gaps, many concurrent streams.

One run starts the emulator with streams of ``--chunks`` content chunks ``--interval-ms`` apart
(``--stream-words`` and a ``chunk_latency_ms`` latency fault; the emulator keeps a fixed schedule,
so its own lag does not pile up), the sidecar and the bare pass-through (``passthrough.py``,
which relays a stream's bytes as they arrive) in their own processes; this process is the app.

* **1 connection per path**, for each route (``chat``: openai -> openai; ``claude``: openai ->
  anthropic): streams asked in turn straight to the emulator (the provider's own format), through
  the pass-through (the same request) and through the sidecar (OpenAI format, ``model`` = route),
  rotating the order. Per stream: time to first token (request sent -> first content chunk read),
  the gaps between content chunks. Added TTFT = p50/p99 via a path - p50/p99 direct; "over pt" =
  the sidecar's p50/p99 - the pass-through's (the issue's baseline: what the TTFT goal is judged
  on); added gap = p50 of the gaps via a path - p50 of the gaps direct.
* **``--concurrent`` streams at once** per path (openai route): how late each content chunk
  arrives against its stream's schedule (start + i x interval, the earliest start its arrivals
  allow; ``per_stream``). The app here is one
  Python process reading every stream; the direct row is the floor of this setup. Each row also
  gives the CPU time per stream of the emulator and of this reader: what the measurement itself
  costs, on the same cores.
* ``--load go``: the emulator and the concurrent reader are ``bench/streamload`` (Go, built on
  demand by ``goload.py``): the same bytes on the same schedule, and the same lateness, for a
  fraction of the CPU, so 500 streams (100,000 chunks/s) leave the host's cores to the relay. Rows
  then give the CPU seconds per second of the emulator, the reader and the proxy over the measured
  streams, the proxy's CPU per content chunk and the load average. The 1-connection part keeps its
  aiohttp reader (against the Go emulator). The default stays ``--load python``, comparable with
  the figures before it. Rows also split each process's CPU per content chunk into user and
  system (kernel) time: the system part of a relay (loopback TCP recv/send, epoll) is what no
  userspace work removes; with the proxy's read(2)/write(2) calls per chunk (``/proc/<pid>/io``:
  Go's; asyncio's recv/send are not counted there), each process's time runnable but waiting for
  a CPU (``schedstat``: what the host's other work takes), and the CPU the emulator, the reader and
  the proxy together need at these costs per chunk with every chunk on schedule.
* ``--floor 1[,2]`` (with ``--load go``): one more path per count, ``streamload relay`` (Go, one
  epoll loop per OS thread, keep-alive both sides, the answer's bytes relayed as they arrive, no
  parsing beyond HTTP framing): the floor of any relay on this host. ``floor`` is one loop (one
  OS thread: comparable with one Python process), ``floor2`` two loops on ``SO_REUSEPORT``.

The sidecar runs from the image's venv (``--venv image``, as deployed: ``harness.venv_of``) unless
``--venv dev`` (needed by ``--profile``); ``--before`` runs its tree on the dev venv.

    .venv/bin/python bench/streaming.py [--chunks 200] [--interval-ms 5] [--streams 40]
        [--routes chat,claude] [--concurrent 500] [--load python|go] [--venv image|dev]
        [--profile FILE] [--before DIR] [--floor 1,2]
    .venv/bin/python bench/streaming.py --load go --routes '' --concurrent 10,30,100,200,300,500 --floor

Goals (issue 15): added TTFT <= 1.0 ms p50 and <= 2.5 ms p99 over the streaming pass-through; added
inter-chunk gap <= 0.1 ms p50;
500 concurrent streams with no chunk more than 50 ms late.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp

import goload
import harness

GOAL_TTFT_P50_MS = 1.0
GOAL_TTFT_P99_MS = 2.5
GOAL_GAP_P50_MS = 0.1
GOAL_LATE_MS = 50.0

# What marks a content chunk in the bytes of each stream format (no JSON parsing in the app:
# at 500 streams the reader must stay cheap). The sidecar and the emulator write compact JSON.
OPENAI_TOKEN = b'"delta":{"content":"'
ANTHROPIC_TOKEN = b'"text_delta"'

Req = tuple[str, dict[str, str], bytes, bytes]  # url, headers, body, token marker
PROMPT = "stream for the benchmark"


def requests_for(route: str, upstream: str, proxy: str, sidecar: str) -> dict[str, Req]:
    """The same streamed question per path: direct, through the pass-through, through the sidecar."""
    provider, model = harness.ROUTES[route]
    msgs = [{"role": "user", "content": PROMPT}]
    if provider == "openai":
        url, headers = f"{upstream}/v1/chat/completions", {"Content-Type": "application/json",
                                                            "Authorization": f"Bearer {harness.KEYS['OPENAI_API_KEY']}"}
        body, token = {"model": model, "messages": msgs, "stream": True}, OPENAI_TOKEN
    elif provider == "anthropic":
        url, headers = f"{upstream}/v1/messages", {"Content-Type": "application/json",
                                                    "x-api-key": harness.KEYS["ANTHROPIC_API_KEY"],
                                                    "anthropic-version": "2023-06-01"}
        body, token = {"model": model, "max_tokens": 4096, "messages": msgs, "stream": True}, ANTHROPIC_TOKEN
    else:
        raise SystemExit(f"route {route!r}: streaming.py measures the openai and anthropic routes")
    raw = json.dumps(body).encode()
    via = json.dumps({"model": route, "messages": msgs, "stream": True}).encode()
    return {"direct": (url, headers, raw, token), "passthrough": (url.replace(upstream, proxy), headers, raw, token),
            "sidecar": (f"{sidecar}/v1/chat/completions", {"Content-Type": "application/json",
                                                           "Authorization": "Bearer app"}, via, OPENAI_TOKEN)}


def floor_paths(loops: str) -> dict[str, int]:
    """``--floor``'s comma list of loop counts as path names: 1 loop is ``floor``, k loops ``floor<k>``."""
    counts = [int(x) for x in loops.split(",") if x.strip()]
    if any(k < 1 for k in counts):
        raise SystemExit(f"--floor {loops!r}: loop counts of at least 1")
    return {("floor" if k == 1 else f"floor{k}"): k for k in dict.fromkeys(counts)}


def with_floors(reqs: dict[str, Req], proxy: str, floors: dict[str, str]) -> dict[str, Req]:
    """``reqs`` plus the pass-through's request to each floor relay (path -> its URL)."""
    url, headers, body, token = reqs["passthrough"]
    return {**reqs, **{p: (url.replace(proxy, f), headers, body, token) for p, f in floors.items()}}


def with_before(reqs: dict[str, Req], sidecar: str, before: str | None) -> dict[str, Req]:
    """``reqs`` plus the same sidecar request to the ``--before`` sidecar, when there is one."""
    if before is None:
        return reqs
    url, headers, body, token = reqs["sidecar"]
    return {**reqs, "before": (url.replace(sidecar, before), headers, body, token)}


async def one_stream(session: aiohttp.ClientSession, req: Req) -> tuple[float, list[float]]:
    """(request sent, arrival time of each content chunk), perf_counter seconds."""
    url, headers, body, token = req
    arrivals: list[float] = []
    t0 = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as r:
        if r.status != 200:
            raise RuntimeError(f"{url}: HTTP {r.status}: {(await r.read())[:200]!r}")
        tail, keep = b"", len(token) - 1  # a marker split across two reads is counted once
        async for data in r.content.iter_any():
            now = time.perf_counter()
            buf = tail + data
            n = buf.count(token)
            if n:
                arrivals.extend([now] * n)
            tail = buf[-keep:]
    return t0, arrivals


def per_stream(t0: float, arrivals: list[float], chunks: int, interval: float) -> dict[str, Any]:
    if len(arrivals) != chunks:
        raise RuntimeError(f"a stream had {len(arrivals)} content chunks, expected {chunks}")
    # The stream's schedule as seen by the app: chunk i due at start + i x interval, with the
    # earliest start the arrivals allow (a late first chunk does not make the rest look early).
    start = min(t - i * interval for i, t in enumerate(arrivals))
    return {"ttft_ms": (arrivals[0] - t0) * 1000,
            "gaps_ms": [(b - a) * 1000 for a, b in itertools.pairwise(arrivals)],
            "late_ms": [(t - start - i * interval) * 1000 for i, t in enumerate(arrivals)]}


async def single(reqs: dict[str, Req], streams: int, warmup: int, chunks: int, interval: float,
                 pids: dict[str, int]) -> dict[str, Any]:
    """Streams at 1 connection per path, paths in rotating order; CPU time of each proxy per stream."""
    paths = list(reqs)
    sessions = {p: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) for p in paths}
    got: dict[str, list[dict[str, Any]]] = {p: [] for p in paths}
    cpu = dict.fromkeys(paths, 0.0)
    try:
        for _ in range(warmup):
            for p in paths:
                await one_stream(sessions[p], reqs[p])
        for i in range(streams):
            order = paths[i % len(paths):] + paths[:i % len(paths)]
            for p in order:
                c0 = harness.cpu_seconds(pids[p]) if p in pids else 0.0
                t0, arrivals = await one_stream(sessions[p], reqs[p])
                if p in pids:
                    cpu[p] += harness.cpu_seconds(pids[p]) - c0
                got[p].append(per_stream(t0, arrivals, chunks, interval))
    finally:
        for s in sessions.values():
            await s.close()
    out: dict[str, Any] = {}
    for p, rows in got.items():
        ttft = [r["ttft_ms"] for r in rows]
        gaps = [g for r in rows for g in r["gaps_ms"]]
        late = [x for r in rows for x in r["late_ms"]]
        out[p] = {"ttft": harness.summary(ttft), "gap": harness.summary(gaps), "late": harness.summary(late),
                  "cpu_ms_per_stream": cpu[p] * 1000 / streams if p in pids else None}
    for p in paths:
        if p != "direct":
            out[p]["added_ttft_p50_ms"] = out[p]["ttft"]["p50"] - out["direct"]["ttft"]["p50"]
            out[p]["added_ttft_p99_ms"] = out[p]["ttft"]["p99"] - out["direct"]["ttft"]["p99"]
            out[p]["added_gap_p50_ms"] = out[p]["gap"]["p50"] - out["direct"]["gap"]["p50"]
        if p not in ("direct", "passthrough"):  # over the baseline of issue 15: the bare pass-through
            out[p]["over_passthrough_ttft_p50_ms"] = out[p]["ttft"]["p50"] - out["passthrough"]["ttft"]["p50"]
            out[p]["over_passthrough_ttft_p99_ms"] = out[p]["ttft"]["p99"] - out["passthrough"]["ttft"]["p99"]
    return out


async def concurrent(req: Req, n: int, chunks: int, interval: float, pid: int | None, emulator: int) -> dict[str, Any]:
    """``n`` streams opened at once on ``n`` connections; lateness of every content chunk. CPU time
    per stream of the proxy (``pid``), and of the emulator and this process (the app): the two
    that every path shares, and that alone can fill the host's cores."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=600)) as s:
        await asyncio.gather(*(one_stream(s, req) for _ in range(min(n, 20))))  # warm the pools
        c0 = harness.cpu_seconds(pid) if pid else 0.0
        e0, a0 = harness.cpu_seconds(emulator), time.process_time()
        t_start = time.perf_counter()
        results = await asyncio.gather(*(one_stream(s, req) for _ in range(n)), return_exceptions=True)
        wall = time.perf_counter() - t_start
        cpu = harness.cpu_seconds(pid) - c0 if pid else 0.0
        emu_cpu, app_cpu = harness.cpu_seconds(emulator) - e0, time.process_time() - a0
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    rows = [per_stream(t0, a, chunks, interval) for t0, a in (r for r in results if not isinstance(r, BaseException))]
    late = [x for r in rows for x in r["late_ms"]]
    ttft = [r["ttft_ms"] for r in rows]
    return {"streams": n, "errors": len(errors), "first_error": errors[0] if errors else None,
            "late": harness.summary(late) if late else None, "ttft": harness.summary(ttft) if ttft else None,
            "chunks_over_goal": sum(1 for x in late if x > GOAL_LATE_MS), "wall_s": wall,
            "cpu_ms_per_stream": cpu * 1000 / n if pid else None,
            "emulator_cpu_ms_per_stream": emu_cpu * 1000 / n, "app_cpu_ms_per_stream": app_cpu * 1000 / n}


async def settle(pids: list[int], quiet_s: float = 0.01, step_s: float = 0.2, limit_s: float = 10.0) -> float:
    """Wait until ``pids`` together use under ``quiet_s`` of CPU per ``step_s`` (the previous row's
    proxy may still be draining its streams), at most ``limit_s``; the seconds waited."""
    t0 = time.monotonic()
    last = sum(harness.cpu_seconds(p) for p in pids)
    while time.monotonic() - t0 < limit_s:
        await asyncio.sleep(step_s)
        now = sum(harness.cpu_seconds(p) for p in pids)
        if now - last < quiet_s:
            break
        last = now
    return time.monotonic() - t0


async def concurrent_go(binary: Path, req: Req, n: int, chunks: int, interval_ms: float, pid: int | None,
                        emulator: int, others: list[int]) -> dict[str, Any]:
    """``n`` streams at once from the Go reader, once the emulator and ``others`` (every proxy) are
    idle; its report plus CPU seconds per second and per chunk."""
    settled = await settle([emulator, *others])
    url, headers, body, token = req
    pids = {"emulator": emulator, **({"proxy": pid} if pid else {})}
    r = await goload.read(goload.read_argv(binary, url, headers, body, token, n, chunks, interval_ms, GOAL_LATE_MS, pids))
    wall, cpu = r["wall_s"], r["cpu_s"]
    r["cpu_per_s"] = {name: s / wall for name, s in cpu.items()}
    r["proxy_us_per_chunk"] = cpu["proxy"] * 1e6 / (n * chunks) if pid else None
    r["us_per_chunk"] = split_per_chunk(r["cpu_user_s"], r["cpu_sys_s"], n * chunks)
    r["calls_per_chunk"] = calls_per_chunk(r.get("syscalls") or {}, n * chunks)
    r["runq_wait_per_s"] = {name: s / wall for name, s in (r.get("runq_wait_s") or {}).items()}
    r["settled_s"] = settled
    return r


def split_per_chunk(user_s: dict[str, float], sys_s: dict[str, float], chunks: int) -> dict[str, dict[str, float]]:
    """Per process name: user and system CPU microseconds per content chunk."""
    return {name: {"user": user_s[name] * 1e6 / chunks, "sys": sys_s[name] * 1e6 / chunks} for name in user_s}


def calls_per_chunk(calls: dict[str, dict[str, int]], chunks: int) -> dict[str, dict[str, float]]:
    """Per process name: read(2) and write(2) calls per content chunk (``/proc/<pid>/io``'s syscr and
    syscw: recv/send, what asyncio calls on sockets, are not in them)."""
    return {name: {k: v / chunks for k, v in c.items()} for name, c in calls.items()}


def on_schedule_cpu(us_per_chunk: dict[str, dict[str, float]], streams: int, interval_ms: float) -> float:
    """CPU (cores) that every process of ``us_per_chunk`` together needs at ``streams`` x one chunk per
    ``interval_ms``, at these costs per chunk (500 streams at 5 ms: 100,000 chunks/s)."""
    per_chunk = sum(c["user"] + c["sys"] for c in us_per_chunk.values())
    return per_chunk * 1e-6 * streams * 1000 / interval_ms


def go_table(rows: dict[str, dict[str, Any]]) -> str:
    cells = []
    for path, r in rows.items():
        late, per_s = r["late"] or {}, r["cpu_per_s"]
        cells.append([path, r["errors"], r["chunks"], late.get("p50", "-"), late.get("p99", "-"), late.get("max", "-"),
                      r["chunks_over_goal"], (r["ttft"] or {}).get("p50", "-"), r["wall_s"], per_s["emulator"],
                      per_s["reader"], per_s.get("proxy", "-"),
                      r["proxy_us_per_chunk"] if r["proxy_us_per_chunk"] is not None else "-",
                      f"{r['loadavg_start'][0]:.2f}"])
    return harness.table(["streams path", "errors", "chunks", "late p50", "late p99", "late max", f"> {GOAL_LATE_MS:g} ms",
                          "TTFT p50", "wall s", "emu CPU/s", "reader CPU/s", "proxy CPU/s", "proxy us/chunk", "load"],
                         cells)


def split_table(rows: dict[str, dict[str, Any]], interval_ms: float) -> str:
    def us(r: dict[str, Any], name: str, mode: str) -> float | str:
        c = r["us_per_chunk"].get(name)
        return c[mode] if c else "-"

    def calls(r: dict[str, Any], kind: str) -> float | str:
        c = r.get("calls_per_chunk", {}).get("proxy")
        return c[kind] if c else "-"

    def wait(r: dict[str, Any], name: str) -> float | str:
        w = r.get("runq_wait_per_s", {}).get(name)
        return w if w is not None else "-"

    cells = [[path, us(r, "emulator", "user"), us(r, "emulator", "sys"), us(r, "reader", "user"), us(r, "reader", "sys"),
              us(r, "proxy", "user"), us(r, "proxy", "sys"), calls(r, "read"), calls(r, "write"),
              r["cpu_per_s"].get("proxy", "-"), wait(r, "emulator"), wait(r, "reader"), wait(r, "proxy"),
              on_schedule_cpu(r["us_per_chunk"], r["streams"], interval_ms), f"{r['loadavg_start'][0]:.2f}"]
             for path, r in rows.items()]
    return harness.table(["streams path", "emu user", "emu sys", "reader user", "reader sys", "proxy user", "proxy sys",
                          "proxy read(2)", "proxy write(2)", "proxy CPU/s", "emu wait", "reader wait", "proxy wait",
                          "CPU on schedule", "load"], cells)


def sustained(rows: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Per path, the largest count at which every count up to it had no error and no chunk over the goal."""
    best: dict[str, int] = {}
    failed: set[str] = set()
    for key in sorted(rows, key=lambda k: int(k.split()[0])):
        n, path = key.split(" ", 1)
        r = rows[key]
        if path in failed or r["errors"] or r["chunks_over_goal"]:
            failed.add(path)
            best.setdefault(path, 0)
        else:
            best[path] = int(n)
    return best


async def run(args: argparse.Namespace) -> dict[str, Any]:
    info = harness.machine()
    interval = args.interval_ms / 1000
    fault = json.dumps({"kind": "latency", "chunk_latency_ms": args.interval_ms, "stream": True})
    out: dict[str, Any] = {"bench": "streaming", "machine": info, "chunks": args.chunks, "interval_ms": args.interval_ms,
                           "streams": args.streams, "load": args.load, "venv": args.venv, "routes": {}, "concurrent": {}}
    if args.floor and args.load != "go":
        raise SystemExit("--floor: the floor relay is bench/streamload's: add --load go")
    if args.profile and args.venv != "dev":
        raise SystemExit("--profile runs the sidecar under bench/runsidecar.py: add --venv dev")
    venv = harness.venv_of(args.venv)
    binary = goload.build() if args.load == "go" else None
    with harness.stack() as st:
        if binary:
            upstream, emulator = goload.emulator(st, binary, args.chunks, args.interval_ms)
        else:  # the openai/anthropic stream counts content chunks only: the reply is --chunks words
            upstream = st.emulator(["--stream-words", str(args.chunks), "--fault", fault])
            emulator = st.procs[-1].pid
        variant = ["--profile", str(args.profile)] if args.profile else None
        sidecar, _admin, sc = st.sidecar(upstream, variant=variant, venv=None if variant else venv)
        proxy = st.passthrough(upstream)
        pids = {"sidecar": sc.pid, "passthrough": st.procs[-1].pid}
        floors: dict[str, str] = {}
        for path, loops in floor_paths(args.floor).items():
            assert binary is not None  # --floor needs --load go (checked above)
            floors[path], pids[path] = goload.relay(st, binary, upstream, loops)
        before = None
        if args.before:
            before, _a, bp = st.sidecar(upstream, name="before", tree=args.before)
            pids["before"] = bp.pid
        if args.profile:
            os.kill(sc.pid, signal.SIGUSR1)
        for route in filter(None, args.routes.split(",")):
            reqs = with_floors(with_before(requests_for(route, upstream, proxy, sidecar), sidecar, before), proxy, floors)
            out["routes"][route] = await single(reqs, args.streams, args.warmup, args.chunks, interval, pids)
        reqs = with_floors(with_before(requests_for("chat", upstream, proxy, sidecar), sidecar, before), proxy, floors)
        for n in (int(x) for x in args.concurrent.split(",") if x.strip() and int(x)):
            for p in reqs:
                out["concurrent"][f"{n} {p}"] = (
                    await concurrent_go(binary, reqs[p], n, args.chunks, args.interval_ms, pids.get(p), emulator,
                                        list(pids.values())) if binary
                    else await concurrent(reqs[p], n, args.chunks, interval, pids.get(p), emulator))
        if args.profile:
            os.kill(sc.pid, signal.SIGUSR2)
            await asyncio.sleep(1)  # the profile is written
        out["sidecar_rss_kb"] = harness.rss_kb(sc.pid)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks", type=int, default=200, help="content chunks per stream")
    p.add_argument("--interval-ms", type=float, default=5.0, help="between the emulator's chunks")
    p.add_argument("--streams", type=int, default=40, help="streams per path and route at 1 connection")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--routes", default="chat,claude", help="routes at 1 connection (chat=openai, claude=anthropic)")
    p.add_argument("--concurrent", default="500", help="concurrent streams per path, or a comma list of counts (0: skip)")
    p.add_argument("--load", choices=("python", "go"), default="python",
                   help="emulator and concurrent reader: python (aiohttp, as before) or go (bench/streamload)")
    p.add_argument("--floor", nargs="?", const="1", default="",
                   help="with --load go: also measure streamload's floor relay with these epoll loops (comma list; "
                        "default 1: one OS thread)")
    p.add_argument("--venv", choices=harness.VENVS, default="image",
                   help="the sidecar's venv: image (built as the Dockerfile does: as deployed) or dev (this editable install)")
    p.add_argument("--profile", type=Path, metavar="FILE", help="CPU-profile the sidecar over the run into FILE")
    p.add_argument("--before", type=Path, metavar="DIR",
                   help="also measure a sidecar imported from DIR/modelroute/sidecar (e.g. `git archive main sidecar` "
                        "unpacked into DIR/..): before/after in one run")
    args = p.parse_args()
    out = asyncio.run(run(args))
    m = out["machine"]
    print(f"streaming: {args.chunks} chunks at {args.interval_ms:g} ms, {args.streams} streams per path at 1 connection "
          f"(load avg at start {m['loadavg_1m_at_start']}, at end {os.getloadavg()[0]:.2f} on {m['cpus']} CPUs), ms")
    rows = []
    for route, res in out["routes"].items():
        for path, r in res.items():
            added = path != "direct"
            ok = path in ("sidecar", "before") and (
                r["over_passthrough_ttft_p50_ms"] <= GOAL_TTFT_P50_MS and r["over_passthrough_ttft_p99_ms"] <= GOAL_TTFT_P99_MS
                and r["added_gap_p50_ms"] <= GOAL_GAP_P50_MS)
            over = path not in ("direct", "passthrough")
            rows.append([f"{route} {path}", r["ttft"]["p50"], r["ttft"]["p99"],
                         r["added_ttft_p50_ms"] if added else "-", r["added_ttft_p99_ms"] if added else "-",
                         r["over_passthrough_ttft_p50_ms"] if over else "-",
                         r["over_passthrough_ttft_p99_ms"] if over else "-",
                         r["gap"]["p50"], r["added_gap_p50_ms"] if added else "-", r["late"]["max"],
                         r["cpu_ms_per_stream"] if r["cpu_ms_per_stream"] is not None else "-",
                         ("yes" if ok else "NO") if path in ("sidecar", "before") else "-"])
    print(harness.table(["route path", "TTFT p50", "TTFT p99", "added p50", "added p99", "over pt p50", "over pt p99",
                         "gap p50", "added gap",
                         "late max", "CPU ms/stream", "goal"], rows))
    if out["concurrent"] and args.load == "go":
        print("\nconcurrent streams (openai route; Go emulator and reader), lateness against each stream's schedule, ms")
        print(go_table(out["concurrent"]))
        print("CPU/s: CPU seconds per second over the measured streams (the host has "
              f"{m['cpus']}); proxy us/chunk: the proxy's CPU per content chunk; load: 1-min load average at the start")
        print("\nCPU per content chunk, user and system (kernel) time apart, us")
        print(split_table(out["concurrent"], args.interval_ms))
        print("CPU on schedule: what the emulator, the reader and the proxy together need at these costs per chunk "
              f"for every stream's chunk each {args.interval_ms:g} ms (cores; the host has {m['cpus']}); proxy "
              "read(2), write(2): its calls per chunk (/proc/<pid>/io; Python's recv/send on sockets are not counted); "
              "wait: seconds per second runnable but waiting for a CPU (/proc/<pid>/task/*/schedstat)")
        out["sustained"] = sustained(out["concurrent"])
        print("largest count with no chunk > "
              f"{GOAL_LATE_MS:g} ms late (and every smaller count measured too): "
              + ", ".join(f"{p} {n}" for p, n in out["sustained"].items()))
    elif out["concurrent"]:
        rows = []
        for path, r in out["concurrent"].items():
            late = r["late"] or {}
            rows.append([path, r["errors"], late.get("p50", "-"), late.get("p99", "-"), late.get("max", "-"),
                         r["chunks_over_goal"], (r["ttft"] or {}).get("p50", "-"), r["wall_s"],
                         r["cpu_ms_per_stream"] if r["cpu_ms_per_stream"] is not None else "-",
                         r["emulator_cpu_ms_per_stream"], r["app_cpu_ms_per_stream"]])
        print("\nconcurrent streams (openai route), lateness against each stream's schedule, ms")
        print(harness.table(["streams path", "errors", "late p50", "late p99", "late max", f"> {GOAL_LATE_MS:g} ms",
                             "TTFT p50", "wall s", "CPU ms/stream", "emulator CPU", "app CPU"], rows))
        print("CPU ms/stream: the proxy's (sidecar, pass-through); emulator, app: the emulator's and this "
              "reader's, shared by every path (one core is 1000 ms per second of streaming)")
    print(f"goals: TTFT over the pass-through p50 <= {GOAL_TTFT_P50_MS}, p99 <= {GOAL_TTFT_P99_MS}; added gap p50 <= {GOAL_GAP_P50_MS}; "
          f"500 concurrent streams with no chunk > {GOAL_LATE_MS:g} ms late")
    print(f"-> {harness.write_result('streaming', out)}")


if __name__ == "__main__":
    main()
