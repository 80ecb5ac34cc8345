"""Throughput at 32 connections: the sidecar vs a bare aiohttp pass-through proxy, same upstream.

One run starts the emulator, the sidecar and ``passthrough.py`` in their own processes and
drives them with ``wrk`` (C, one thread: a few % of a core at these rates, so the load
generator is not the bottleneck). Rounds alternate sidecar / pass-through so drift in the
machine's load hits both; the medians and their ratio are reported (and, steadier on a
shared host, the ratio of their CPU time per request from /proc), plus the upstream
alone (the ceiling) and the sidecar's other provider routes for reference. Every response
must be a 200 (wrk's non-2xx count is checked).

    apt-get install -y wrk      # once (Debian package)
    .venv/bin/python bench/throughput.py [--seconds 6] [--rounds 5] [--connections 32]
        [--variants uvloop,gc-freeze]   # extra sidecars (bench/runsidecar.py), one round each
        [--before DIR]                  # a sidecar from another source tree as a third path in every round

Goal (issue 2): sidecar >= 1/3 of the pass-through's requests/s.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import harness

GOAL_RATIO = 1 / 3


def lua(path: Path, headers: dict[str, str], body: bytes) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_str(body.decode())}"]
    lines += [f"wrk.headers[{_lua_str(k)}] = {_lua_str(v)}" for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _lua_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk(url: str, script: Path, *, connections: int, seconds: float, pid: int | None,
        timeout: float = 2) -> dict[str, Any]:
    cpu0 = harness.cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", f"--timeout={timeout:g}s", "--latency",
                          "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    cpu = harness.cpu_seconds(pid) - cpu0 if pid else 0.0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        raise RuntimeError(f"{url}: failures during the run:\n{out}")
    lat = {p: _ms(v) for p, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M)}
    return {"rps": rps, "requests": total, "p50_ms": lat.get("50"), "p99_ms": lat.get("99"),
            "cpu_ms_per_req": cpu * 1000 / total if pid and total else None}


def _ms(v: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", v)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def run(args: argparse.Namespace) -> dict[str, Any]:
    info = harness.machine()
    with harness.stack() as st:
        upstream = st.emulator()
        sidecar, _admin, sc = st.sidecar(upstream)
        proxy = st.passthrough(upstream)
        proxy_pid = st.procs[-1].pid
        emu_pid = st.procs[0].pid
        url, headers, body = harness.direct_request(upstream, "chat")
        s_url, s_headers, s_body = harness.sidecar_request(sidecar, "chat")
        direct_lua = lua(st.tmp / "direct.lua", headers, body)
        sidecar_lua = lua(st.tmp / "sidecar.lua", s_headers, s_body)
        kw = {"connections": args.connections, "seconds": args.seconds}
        # warm-up: connection pools, SDK clients, caches
        wrk(s_url, sidecar_lua, connections=args.connections, seconds=2, pid=None)
        wrk(url.replace(upstream, proxy), direct_lua, connections=args.connections, seconds=2, pid=None)
        rounds: dict[str, list[dict[str, Any]]] = {"sidecar": [], "passthrough": []}
        before = None
        if args.before:
            b_url, _a, bp = st.sidecar(upstream, name="before", tree=args.before)
            before = (s_url.replace(sidecar, b_url), bp.pid)
            wrk(before[0], sidecar_lua, connections=args.connections, seconds=2, pid=None)
            rounds["before"] = []
        for _ in range(args.rounds):
            rounds["sidecar"].append(wrk(s_url, sidecar_lua, pid=sc.pid, **kw))
            rounds["passthrough"].append(wrk(url.replace(upstream, proxy), direct_lua, pid=proxy_pid, **kw))
            if before is not None:
                rounds["before"].append(wrk(before[0], sidecar_lua, pid=before[1], **kw))
        extra = {"upstream alone (openai)": wrk(url, direct_lua, pid=emu_pid, **kw)}
        for route in ("claude", "gem"):
            r_url, r_headers, r_body = harness.sidecar_request(sidecar, route)
            r_lua = lua(st.tmp / f"{route}.lua", r_headers, r_body)
            extra[f"sidecar {route} ({harness.ROUTES[route][0]})"] = wrk(r_url, r_lua, pid=sc.pid, **kw)
            if before is not None:  # the same route on the --before sidecar, right after
                b_route = r_url.replace(sidecar, before[0].removesuffix("/v1/chat/completions"))
                extra[f"sidecar --before {route} ({harness.ROUTES[route][0]})"] = wrk(b_route, r_lua, pid=before[1], **kw)
        rss = harness.rss_kb(sc.pid)
        sc.stop()
        for v in filter(None, args.variants.split(",")):
            v_url, _a, vp = st.sidecar(upstream, variant=[f"--{v}"], name=f"sidecar-{v}")
            u = s_url.replace(sidecar, v_url)
            wrk(u, sidecar_lua, connections=args.connections, seconds=2, pid=None)
            extra[f"sidecar chat (openai) --{v}"] = wrk(u, sidecar_lua, pid=vp.pid, **kw)
            vp.stop()
    med = {k: statistics.median(r["rps"] for r in v) for k, v in rounds.items()}
    cpu = {k: statistics.median(r["cpu_ms_per_req"] for r in v) for k, v in rounds.items()}
    if "before" in med:
        extra_ratios = {"before_ratio": med["before"] / med["passthrough"], "before_cpu_ratio": cpu["passthrough"] / cpu["before"]}
    else:
        extra_ratios = {}
    return {"bench": "throughput", "machine": info, "connections": args.connections, "seconds": args.seconds,
            **extra_ratios, "rounds": rounds, "median_rps": med, "ratio": med["sidecar"] / med["passthrough"],
            "median_cpu_ms_per_req": cpu, "cpu_ratio": cpu["passthrough"] / cpu["sidecar"], "extra": extra,
            "sidecar_rss_kb_after": rss, "goal": {"ratio": GOAL_RATIO}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=6)
    p.add_argument("--rounds", type=int, default=5, help="alternating sidecar / pass-through rounds")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--variants", default="", help="comma list of bench/runsidecar.py flags to compare, e.g. uvloop,gc-freeze")
    p.add_argument("--before", type=Path, metavar="DIR",
                   help="a third path in the rounds: a sidecar imported from DIR/modelroute/sidecar (before/after in one run)")
    args = p.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/throughput.py needs wrk: apt-get install -y wrk")
    out = run(args)
    rows = []
    for name, runs in out["rounds"].items():
        label = {"sidecar": "sidecar chat (openai)", "before": "sidecar --before chat (openai)"}.get(
            name, "bare pass-through proxy (openai)")
        r = sorted(runs, key=lambda x: x["rps"])[len(runs) // 2]
        rows.append([label, out["median_rps"][name], " ".join(f"{x['rps']:.0f}" for x in runs), r["p50_ms"], r["p99_ms"],
                     r["cpu_ms_per_req"]])
    for label, r in out["extra"].items():
        rows.append([label, r["rps"], "-", r["p50_ms"], r["p99_ms"], r["cpu_ms_per_req"]])
    print(f"throughput at {args.connections} connections, wrk, {args.rounds} x {args.seconds:g} s per path "
          f"(load avg at start {out['machine']['loadavg_1m_at_start']} on {out['machine']['cpus']} CPUs)")
    print(harness.table(["path", "median req/s", "rounds", "p50 ms", "p99 ms", "server CPU ms/req"], rows))
    ok = out["ratio"] >= GOAL_RATIO
    print(f"sidecar / pass-through = {out['ratio']:.3f} (goal >= {GOAL_RATIO:.3f}: {'met' if ok else 'MISSED'}); "
          f"CPU-bound capacity ratio (pass-through CPU/req / sidecar CPU/req) = {out['cpu_ratio']:.3f}")
    if "before_ratio" in out:
        print(f"--before sidecar / pass-through = {out['before_ratio']:.3f}; its CPU-bound capacity ratio = "
              f"{out['before_cpu_ratio']:.3f}")
    print(f"-> {harness.write_result('throughput', out)}")


if __name__ == "__main__":
    main()
