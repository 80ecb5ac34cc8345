"""Added latency of the sidecar at 1 connection: (app -> sidecar -> emulator) - (app -> emulator).

One run starts the emulator, the sidecar (one route per provider) and the bare pass-through
proxy (``passthrough.py``) in their own processes; this process is the app, with one
keep-alive connection per path. For each row the same question is asked alternately through
the proxy (OpenAI format, ``model`` = route) and straight to the emulator (in the provider's
own format), A/B/A/B, so machine noise lands on both series alike. Reported: p50/p99 of each
series, their differences (the added latency) and the proxy's CPU time per request (from
/proc: steadier than wall time on a busy host). The pass-through row is the floor: what any
extra aiohttp hop costs on this machine.

    .venv/bin/python bench/latency.py [--samples 3000] [--warmup 300] [--routes chat,claude,gem]
        [--variants uvloop,gc-freeze]   # extra sidecars (bench/runsidecar.py), openai route only
        [--profile FILE]                # CPU profile of the sidecar over the measured phases
        [--before DIR]                  # also a sidecar from another source tree (before/after, one run)

Goal (issue 2): openai->openai added p50 <= 1.0 ms, p99 <= 2.0 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp

import harness

GOAL_P50_MS = 1.0
GOAL_P99_MS = 2.0

Req = tuple[str, dict[str, str], bytes]


async def one(session: aiohttp.ClientSession, req: Req) -> float:
    url, headers, body = req
    t0 = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as r:
        data = await r.read()
        if r.status != 200:
            raise RuntimeError(f"{url}: HTTP {r.status}: {data[:200]!r}")
    return (time.perf_counter() - t0) * 1000


async def measure(label: str, via: Req, direct: Req, pid: int, samples: int, warmup: int,
                  profile: bool = False) -> dict[str, Any]:
    # One connection per path, kept alive, like an app's SDK client.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as s_via, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as s_direct:
        for _ in range(warmup):
            await one(s_via, via)
            await one(s_direct, direct)
        a: list[float] = []
        b: list[float] = []
        if profile:
            os.kill(pid, signal.SIGUSR1)
        cpu0 = harness.cpu_seconds(pid)
        for i in range(samples):
            if i % 2:  # alternate which goes first, too
                b.append(await one(s_direct, direct))
                a.append(await one(s_via, via))
            else:
                a.append(await one(s_via, via))
                b.append(await one(s_direct, direct))
        cpu_ms = (harness.cpu_seconds(pid) - cpu0) * 1000 / samples
        if profile:
            os.kill(pid, signal.SIGUSR2)
    sa, sb = harness.summary(a), harness.summary(b)
    paired = [x - y for x, y in zip(a, b, strict=True)]
    return {"label": label, "via": sa, "direct": sb,
            "added_p50_ms": sa["p50"] - sb["p50"], "added_p99_ms": sa["p99"] - sb["p99"],
            "paired_diff_p50_ms": harness.pct(paired, 50), "proxy_cpu_ms_per_req": cpu_ms}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    info = harness.machine()
    rows = []
    with harness.stack() as st:
        upstream = st.emulator()
        variant = ["--profile", str(args.profile)] if args.profile else None
        sidecar, _admin, proc = st.sidecar(upstream, variant=variant)
        proxy = st.passthrough(upstream)
        proxy_pid = st.procs[-1].pid
        for route in args.routes.split(","):
            provider = harness.ROUTES[route][0]
            rows.append(await measure(f"sidecar {route} ({provider})", harness.sidecar_request(sidecar, route),
                                      harness.direct_request(upstream, route), proc.pid, args.samples, args.warmup,
                                      bool(args.profile)))
        if args.before:
            b_url, _a, bp = st.sidecar(upstream, name="before", tree=args.before)
            rows.append(await measure("sidecar --before chat (openai)", harness.sidecar_request(b_url, "chat"),
                                      harness.direct_request(upstream, "chat"), bp.pid, args.samples, args.warmup))
            bp.stop()
        rss = harness.rss_kb(proc.pid)
        url, headers, body = harness.direct_request(upstream, "chat")
        rows.append(await measure("bare pass-through proxy (openai)", (url.replace(upstream, proxy), headers, body),
                                  (url, headers, body), proxy_pid, args.samples, args.warmup))
        for v in filter(None, args.variants.split(",")):
            sc, _a, vp = st.sidecar(upstream, variant=[f"--{v}"], name=f"sidecar-{v}")
            rows.append(await measure(f"sidecar chat (openai) --{v}", harness.sidecar_request(sc, "chat"),
                                      harness.direct_request(upstream, "chat"), vp.pid, args.samples, args.warmup))
            vp.stop()
    return {"bench": "latency", "machine": info, "samples": args.samples, "warmup": args.warmup, "rows": rows,
            "sidecar_rss_kb": rss, "goal": {"added_p50_ms": GOAL_P50_MS, "added_p99_ms": GOAL_P99_MS}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=3000, help="requests per series after warm-up")
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--routes", default="chat,claude,gem", help="routes to measure (chat=openai, claude, gem)")
    p.add_argument("--variants", default="", help="comma list of bench/runsidecar.py flags to compare, e.g. uvloop,gc-freeze")
    p.add_argument("--before", type=Path, metavar="DIR",
                   help="also measure a sidecar imported from DIR/modelroute/sidecar (before/after in one run)")
    p.add_argument("--profile", type=Path, metavar="FILE",
                   help="CPU-profile the sidecar over the measured phases into FILE (its latency is then not representative)")
    args = p.parse_args()
    out = asyncio.run(run(args))
    rows = []
    for r in out["rows"]:
        ok = r["added_p50_ms"] <= GOAL_P50_MS and r["added_p99_ms"] <= GOAL_P99_MS
        rows.append([r["label"], r["direct"]["p50"], r["via"]["p50"], r["added_p50_ms"], r["direct"]["p99"],
                     r["via"]["p99"], r["added_p99_ms"], r["proxy_cpu_ms_per_req"], "yes" if ok else "NO"])
    print(f"added latency at 1 connection, {args.samples} A/B pairs per row, ms "
          f"(load avg at start {out['machine']['loadavg_1m_at_start']} on {out['machine']['cpus']} CPUs)")
    print(harness.table(["path", "direct p50", "via p50", "added p50", "direct p99", "via p99", "added p99",
                         "proxy CPU/req", "goal"], rows))
    print(f"goal: added p50 <= {GOAL_P50_MS} ms, p99 <= {GOAL_P99_MS} ms (openai->openai is the one that counts)")
    print(f"-> {harness.write_result('latency', out)}")


if __name__ == "__main__":
    main()
