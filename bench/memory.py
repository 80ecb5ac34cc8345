"""Resident memory of the sidecar with all three providers, and its stability over a soak.

One run starts the emulator and the sidecar (one route per provider: openai, anthropic,
gemini) in their own processes. RSS (``VmRSS`` of /proc/PID/status) is read after start,
after a warm-up that sends every route plain and streaming requests (so every SDK is
imported and every client/pool exists), then every 10k requests of a soak of 100k requests
mixed round-robin over the routes (one in ten streaming), sent from this process over
``--concurrency`` keep-alive connections. Bounded by ``--requests`` and ``--max-seconds``;
loopback only.

    .venv/bin/python bench/memory.py [--requests 100000] [--every 10000] [--concurrency 16] [--providers 1]
    .venv/bin/python bench/memory.py --where     # RSS, modules and CPU added by each layer (no soak)

``--providers 1``: the sidecar serves only the openai route (a pod whose routes use one provider).
``--venv image`` (default): the sidecar runs from a venv built as the image's (``bench/imagevenv.py``:
the wheel, the runtime dependencies only); ``--venv dev``: from this editable install. ``--where``
always imports in this development venv.

Goals: RSS <= 100 MB with three providers, <= 60 MB with one (issue 15; issue 2's was 120 MB);
growth from the 10k sample to the last < 5%.
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

GOAL_MB = {3: 100.0, 1: 60.0}
GOAL_GROWTH_PCT = 5.0


def stream_body(route: str) -> bytes:
    body = json.loads(harness.chat_body(route))
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    return json.dumps(body).encode()


WHERE = """
import json, sys, time
def rss():
    return int([x for x in open("/proc/self/status") if x.startswith("VmRSS")][0].split()[1]) / 1024
rows, last, mods, cpu = [], rss(), len(sys.modules), time.process_time()
def step(name):
    global last, mods, cpu
    now = rss()
    rows.append([name, now, now - last, len(sys.modules) - mods, time.process_time() - cpu])
    last, mods, cpu = now, len(sys.modules), time.process_time()
step("interpreter")
import aiohttp
step("aiohttp (+ its TLS contexts)")
import modelroute.api.config
step("pydantic + modelroute.api")
import modelroute.cli.main, modelroute.sidecar.cli, modelroute.sidecar.server.sidecar
step("the rest of the sidecar")
from modelroute.api.v1alpha1.spec import Target
from modelroute.sidecar.providers.registry import build_adapter
for provider, model in json.loads(sys.argv[1]):
    build_adapter(Target.model_validate({"name": provider, "provider": provider, "model": model,
                                         "baseUrl": "http://127.0.0.1:9", "apiKey": {"env": "K"}}), lambda: "k")
    step(f"{provider} adapter (SDK, client, warm-up)")
print(json.dumps(rows))
"""


def where(optimize: int) -> list[list[Any]]:
    """RSS, modules and CPU added by each layer of a sidecar with the three providers, in a fresh interpreter."""
    import os
    import subprocess

    harness.precompile()
    env = {**os.environ, "PYTHONOPTIMIZE": str(optimize) if optimize else ""}
    done = subprocess.run([harness.PY, "-c", WHERE, json.dumps(list(harness.ROUTES.values()))], env=env,
                          capture_output=True, text=True, check=True)
    rows: list[list[Any]] = json.loads(done.stdout)
    return rows


def routes_for(providers: int) -> list[str]:
    return list(harness.ROUTES)[:providers]


async def soak(args: argparse.Namespace, sidecar: str, pid: int) -> dict[str, Any]:
    routes = routes_for(args.providers)
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
    info = {**harness.machine(), "venv": args.venv}
    venv = harness.venv_of(args.venv)
    with harness.stack() as st:
        upstream = st.emulator()
        sidecar, _admin, sc = st.sidecar(upstream, optimize=args.optimize, routes=routes_for(args.providers), venv=venv)
        start_kb = harness.rss_kb(sc.pid)
        res = asyncio.run(soak(args, sidecar, sc.pid))
    s = res["samples"]
    growth = (s[-1]["rss_kb"] - s[0]["rss_kb"]) / s[0]["rss_kb"] * 100 if len(s) >= 2 else None
    peak = max([res["warm_rss_kb"], *(x["rss_kb"] for x in s)])
    return {"bench": "memory", "machine": info, "optimize": args.optimize, "providers": args.providers, "start_rss_kb": start_kb,
            **res, "growth_pct": growth, "peak_rss_kb": peak,
            "goal": {"rss_mb": GOAL_MB[args.providers], "growth_pct": GOAL_GROWTH_PCT}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--every", type=int, default=10_000, help="RSS sample interval, in requests")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--max-seconds", type=float, default=1200, help="stop the soak early after this long")
    p.add_argument("--optimize", type=int, choices=(0, 2), default=2,
                   help="PYTHONOPTIMIZE of the sidecar: 2 as the injected container runs it (default), 0 plain python")
    p.add_argument("--providers", type=int, choices=(1, 3), default=3,
                   help="3: one route per provider (default); 1: the openai route only")
    p.add_argument("--venv", choices=harness.VENVS, default="image",
                   help="the sidecar's venv: image (built as the Dockerfile does: as deployed) or dev (this editable install)")
    p.add_argument("--where", action="store_true",
                   help="only: where the memory goes, layer by layer, in a fresh interpreter (no soak)")
    args = p.parse_args()
    if args.where:
        rows = where(args.optimize)
        print(f"where the sidecar's memory goes (PYTHONOPTIMIZE={args.optimize}), layer by layer")
        print(harness.table(["layer", "RSS MB", "added MB", "modules added", "CPU s"], rows))
        return
    goal_mb = GOAL_MB[args.providers]
    out = run(args)
    mb = 1024.0
    rows = [["after start (config loaded)", out["start_rss_kb"] / mb], ["after warm-up (all providers)", out["warm_rss_kb"] / mb]]
    rows += [[f"after {x['requests']} requests", x["rss_kb"] / mb] for x in out["samples"]]
    print(f"sidecar resident memory ({args.venv} venv, PYTHONOPTIMIZE={args.optimize}), {args.providers} provider(s), {out['requests']} requests in {out['seconds']:.0f} s "
          f"({out['errors']} errors; load avg at start {out['machine']['loadavg_1m_at_start']})")
    print(harness.table(["point", "RSS MB"], rows))
    g = out["growth_pct"]
    print(f"peak {out['peak_rss_kb'] / mb:.1f} MB (goal <= {goal_mb:g} MB: {'met' if out['peak_rss_kb'] / mb <= goal_mb else 'MISSED'}); "
          f"growth first->last sample {'n/a' if g is None else f'{g:+.2f}%'} "
          f"(goal < {GOAL_GROWTH_PCT:g}%: {'met' if g is not None and g < GOAL_GROWTH_PCT else 'MISSED'})")
    if not out["finished"]:
        print(f"NOTE: stopped by --max-seconds before {args.requests} requests")
    print(f"-> {harness.write_result('memory' if args.providers == 3 else f'memory-{args.providers}', out)}")


if __name__ == "__main__":
    main()
