"""Sidecar start-up: process exec -> ``/readyz`` 200, and the first request on each provider.

A native sidecar starts before the app container, so its start-up is paid on every pod start
and every rollout. One run starts the provider emulator (warmed with direct requests), then,
``--runs`` times for each configuration (1 provider: the openai route; 3 providers: openai,
anthropic, gemini routes), a sidecar exactly as deployed (``python -m modelroute.cli sidecar``,
``PYTHONOPTIMIZE=2``, bytecode precompiled as in the image) and measures:

* ready: wall time from just before ``exec`` to the first 200 of ``GET /readyz`` (polled every
  2 ms on a fresh connection), with the process's CPU time and RSS at that moment;
* first request: each route's first chat request (one fresh connection each, in route order)
  minus the median of ``--warm`` later requests on that route (also one fresh connection each):
  what the first app request pays for anything deferred past ``/readyz``.

``--baseline-python PY``: a second interpreter whose editable install is another checkout (e.g.
``git worktree add ../before <commit> && make -C ../before venv``): its sidecar is measured in
the same run, the two alternated run by run, so both see the same machine.

    .venv/bin/python bench/podstart.py [--runs 7] [--warm 20] [--baseline-python ../before/.venv/bin/python]

Goals (issue 15): ready p50 <= 0.5 s with one provider and <= 1.0 s with three; first request
at most 5 ms over a warm one. Memory (issue 15): <= 60 MB with one provider, <= 100 MB with three
(``bench/memory.py --providers`` for the soak).
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import harness

GOALS = {1: {"ready_s": 0.5, "rss_mb": 60.0}, 3: {"ready_s": 1.0, "rss_mb": 100.0}}
GOAL_FIRST_MS = 5.0
ONE = ["chat"]
THREE = list(harness.ROUTES)


def post(port: int, route: str) -> float:
    """Seconds for one chat request to the sidecar on a fresh connection (raises unless 200)."""
    _url, headers, body = harness.sidecar_request("http://x", route)
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
    finally:
        conn.close()
    took = time.perf_counter() - t0
    if r.status != 200:
        raise RuntimeError(f"{route}: {r.status} {data[:300]!r}")
    return took


def ready(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def one_start(st: harness.Stack, python: str, upstream: str, routes: list[str], warm: int, n: int) -> dict[str, Any]:
    """One sidecar process: its ready time, CPU and RSS then, and each route's first vs warm request."""
    cfg = st.tmp / f"routes-{n}.yaml"
    cfg.write_text(harness.config_yaml(upstream, routes))
    port, admin = harness.free_port(), harness.free_port()
    env = {**os.environ, **harness.KEYS, "PYTHONOPTIMIZE": "2"}
    argv = [python, "-m", "modelroute.cli", "sidecar", "--config", str(cfg), "--listen", f"127.0.0.1:{port}",
            "--admin-listen", f"127.0.0.1:{admin}", "--log-level", "warning"]
    log = st.tmp / f"sidecar-{n}.log"
    t0 = time.perf_counter()
    p = harness.spawn(argv, log_path=log, env=env, cwd=harness.REPO)
    try:
        deadline = t0 + 120
        while not ready(admin):
            if p.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError(f"sidecar did not become ready: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.002)
        took = time.perf_counter() - t0
        cpu, rss = harness.cpu_seconds(p.pid), harness.rss_kb(p.pid) / 1024
        first = {r: post(port, r) for r in routes}
        warm_s = {r: statistics.median(post(port, r) for _ in range(warm)) for r in routes}
        rss_after = harness.rss_kb(p.pid) / 1024
    finally:
        p.terminate()
        p.wait(10)
    return {"ready_s": took, "cpu_s": cpu, "rss_mb": rss, "rss_after_requests_mb": rss_after,
            "first_ms": {r: first[r] * 1000 for r in routes}, "warm_ms": {r: warm_s[r] * 1000 for r in routes},
            "excess_ms": {r: (first[r] - warm_s[r]) * 1000 for r in routes}}


def precompile(python: str) -> None:
    """-OO bytecode of ``python``'s site-packages and of the checkout its editable install points at."""
    code = ("import sysconfig, pathlib, modelroute.sidecar, modelroute.api, modelroute.cli; "
            "print(sysconfig.get_paths()['purelib']); "
            "[print(pathlib.Path(m.__path__[0]).parents[1]) for m in (modelroute.sidecar, modelroute.api, modelroute.cli)]")
    paths = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    subprocess.run([python, "-m", "compileall", "-q", "-o", "2", *paths], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize(runs: list[dict[str, Any]], routes: list[str]) -> dict[str, Any]:
    med = statistics.median
    return {"runs": len(runs), "ready_p50_s": med(r["ready_s"] for r in runs), "ready_min_s": min(r["ready_s"] for r in runs),
            "ready_max_s": max(r["ready_s"] for r in runs), "cpu_p50_s": med(r["cpu_s"] for r in runs),
            "rss_p50_mb": med(r["rss_mb"] for r in runs),
            "rss_after_requests_p50_mb": med(r["rss_after_requests_mb"] for r in runs),
            "excess_p50_ms": {rt: med(r["excess_ms"][rt] for r in runs) for rt in routes},
            "warm_p50_ms": {rt: med(r["warm_ms"][rt] for r in runs) for rt in routes}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=7, help="sidecar starts per configuration and interpreter")
    p.add_argument("--warm", type=int, default=20, help="warm requests per route after the first")
    p.add_argument("--baseline-python", help="also measure this interpreter's checkout, alternated with this one")
    p.add_argument("--configs", default="1,3", help="provider counts to measure (1: openai; 3: openai, anthropic, gemini)")
    args = p.parse_args()
    pythons = {"this": harness.PY, **({"baseline": args.baseline_python} if args.baseline_python else {})}
    for py in pythons.values():
        precompile(py)
    configs = {int(c): (ONE if c == "1" else THREE) for c in args.configs.split(",")}
    info = harness.machine()
    raw: dict[str, dict[int, list[dict[str, Any]]]] = {name: {c: [] for c in configs} for name in pythons}
    with harness.stack() as st:
        upstream = st.emulator()
        for route in THREE:  # the emulator warmed: its first answers are not the sidecar's
            for _ in range(5):
                harness.direct(upstream, route)
        n = 0
        for _ in range(args.runs):
            for c, routes in configs.items():
                for name, py in pythons.items():
                    n += 1
                    raw[name][c].append(one_start(st, py, upstream, routes, args.warm, n))
    out: dict[str, Any] = {"bench": "podstart", "machine": info, "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
           "summary": {name: {str(c): summarize(raw[name][c], configs[c]) for c in configs} for name in pythons},
           "runs": {name: {str(c): raw[name][c] for c in configs} for name in pythons}}
    path = harness.write_result("podstart", out)
    rows = []
    for name in pythons:
        for c in configs:
            s = out["summary"][name][str(c)]
            rows.append([name, f"{c} provider{'s' * (c > 1)}", s["ready_p50_s"], f"{s['ready_min_s']:.3f}-{s['ready_max_s']:.3f}",
                         s["cpu_p50_s"], s["rss_p50_mb"],
                         " ".join(f"{rt} {s['excess_p50_ms'][rt]:+.2f}" for rt in configs[c])])
    print(f"sidecar start-up, {args.runs} starts per row, alternated (load avg {info['loadavg_1m_at_start']} at start, "
          f"{out['loadavg_1m_at_end']} at end; {info['date']})")
    print(harness.table(["python", "config", "ready p50 s", "ready min-max s", "CPU at ready s", "RSS at ready MB",
                         "first request - warm, p50 ms"], rows))
    for c in configs:
        s = out["summary"]["this"][str(c)]
        goal = GOALS[c]
        worst = max(s["excess_p50_ms"].values())
        print(f"{c} provider(s): ready {s['ready_p50_s']:.3f} s (goal <= {goal['ready_s']}: "
              f"{'met' if s['ready_p50_s'] <= goal['ready_s'] else 'MISSED'}), RSS {s['rss_p50_mb']:.1f} MB (goal <= "
              f"{goal['rss_mb']:g}: {'met' if s['rss_p50_mb'] <= goal['rss_mb'] else 'MISSED'}), first request "
              f"+{worst:.2f} ms (goal <= {GOAL_FIRST_MS:g}: {'met' if worst <= GOAL_FIRST_MS else 'MISSED'})")
    print(f"JSON: {path}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
