"""Resident memory of the sidecar with all three providers, and its stability over a soak.

One run starts the emulator and the sidecar (one route per provider: openai, anthropic,
gemini) in their own processes. RSS (``VmRSS`` of /proc/PID/status) is read after start,
after a warm-up that sends every route plain and streaming requests (so every SDK is
imported and every client/pool exists), then every 10k requests of a soak of 100k requests
mixed round-robin over the routes (one in ten streaming), sent from this process over
``--concurrency`` keep-alive connections. Bounded by ``--requests`` and ``--max-seconds``;
loopback only.

    .venv/bin/python bench/memory.py [--requests 100000] [--every 10000] [--concurrency 16]

Goals (issue 2): RSS <= 120 MB; growth from the 10k sample to the last < 5%.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from typing import Any

import aiohttp

import harness

GOAL_MB = 120.0
GOAL_GROWTH_PCT = 5.0


def stream_body(route: str) -> bytes:
    body = json.loads(harness.chat_body(route))
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    return json.dumps(body).encode()


async def soak(args: argparse.Namespace, sidecar: str, pid: int) -> dict[str, Any]:
    routes = list(harness.ROUTES)
    plain = {r: harness.sidecar_request(sidecar, r) for r in routes}
    streams = {r: stream_body(r) for r in routes}
    samples: list[dict[str, Any]] = []
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency)) as s:

        async def send(i: int) -> None:
            nonlocal errors
            route = routes[i % len(routes)]
            url, headers, body = plain[route]
            if i % 10 == 9:
                body = streams[route]
            async with s.post(url, data=body, headers=headers) as r:
                data = await r.read()
                if r.status != 200 or (body is streams[route] and not data.rstrip().endswith(b"[DONE]")):
                    errors += 1

        for i in range(60 * len(routes)):  # warm-up: every route, plain and streaming
            await send(i)
        warm_kb = harness.rss_kb(pid)
        counter = itertools.count()
        t0 = time.monotonic()
        deadline = t0 + args.max_seconds
        done = 0

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                i = next(counter)
                if i >= args.requests:
                    return
                await send(i)
                done += 1
                if done % args.every == 0:
                    samples.append({"requests": done, "rss_kb": harness.rss_kb(pid), "seconds": time.monotonic() - t0})
                    print(f"  {done:>7} requests  RSS {samples[-1]['rss_kb'] / 1024:6.1f} MB  "
                          f"({done / (time.monotonic() - t0):.0f} req/s)", flush=True)

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return {"warm_rss_kb": warm_kb, "samples": samples, "requests": done, "errors": errors,
            "seconds": time.monotonic() - t0, "finished": done >= args.requests}


def run(args: argparse.Namespace) -> dict[str, Any]:
    info = harness.machine()
    with harness.stack() as st:
        upstream = st.emulator()
        sidecar, _admin, sc = st.sidecar(upstream, optimize=args.optimize)
        start_kb = harness.rss_kb(sc.pid)
        res = asyncio.run(soak(args, sidecar, sc.pid))
    s = res["samples"]
    growth = (s[-1]["rss_kb"] - s[0]["rss_kb"]) / s[0]["rss_kb"] * 100 if len(s) >= 2 else None
    peak = max([res["warm_rss_kb"], *(x["rss_kb"] for x in s)])
    return {"bench": "memory", "machine": info, "optimize": args.optimize, "start_rss_kb": start_kb, **res, "growth_pct": growth,
            "peak_rss_kb": peak, "goal": {"rss_mb": GOAL_MB, "growth_pct": GOAL_GROWTH_PCT}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--every", type=int, default=10_000, help="RSS sample interval, in requests")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--max-seconds", type=float, default=1200, help="stop the soak early after this long")
    p.add_argument("--optimize", type=int, choices=(0, 2), default=2,
                   help="PYTHONOPTIMIZE of the sidecar: 2 as the injected container runs it (default), 0 plain python")
    args = p.parse_args()
    out = run(args)
    mb = 1024.0
    rows = [["after start (config loaded)", out["start_rss_kb"] / mb], ["after warm-up (all providers)", out["warm_rss_kb"] / mb]]
    rows += [[f"after {x['requests']} requests", x["rss_kb"] / mb] for x in out["samples"]]
    print(f"sidecar resident memory (PYTHONOPTIMIZE={args.optimize}), 3 providers, {out['requests']} requests in {out['seconds']:.0f} s "
          f"({out['errors']} errors; load avg at start {out['machine']['loadavg_1m_at_start']})")
    print(harness.table(["point", "RSS MB"], rows))
    g = out["growth_pct"]
    print(f"peak {out['peak_rss_kb'] / mb:.1f} MB (goal <= {GOAL_MB:g} MB: {'met' if out['peak_rss_kb'] / mb <= GOAL_MB else 'MISSED'}); "
          f"growth first->last sample {'n/a' if g is None else f'{g:+.2f}%'} "
          f"(goal < {GOAL_GROWTH_PCT:g}%: {'met' if g is not None and g < GOAL_GROWTH_PCT else 'MISSED'})")
    if not out["finished"]:
        print(f"NOTE: stopped by --max-seconds before {args.requests} requests")
    print(f"-> {harness.write_result('memory', out)}")


if __name__ == "__main__":
    main()
