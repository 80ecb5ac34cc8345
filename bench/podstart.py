"""Sidecar start-up: process exec -> ``/readyz`` 200, and the first request on each provider.

A native sidecar starts before the app container, so its start-up is paid on every pod start
and every rollout. One run starts the provider emulator (warmed with direct requests), then,
``--runs`` times for each configuration (1 provider: the openai route; 3 providers: openai,
anthropic, gemini routes), a sidecar (``PYTHONOPTIMIZE=2``) from the venv(s) of ``--venv``:

* ``image`` (default: as deployed): a venv built by running the Dockerfile's builder stage
  (``bench/imagevenv.py``: a wheel of the checkout, only the runtime dependencies at the locked
  versions, bytecode at -o 0 and -o 2, google-genai's annotation caches), built once and cached
  outside the repository by the content of what the image copies; run as the image runs it (its
  ``modelroute`` console script, ``PYTHONDONTWRITEBYTECODE=1``, from a folder holding no source);
* ``dev``: the checkout's development venv, an editable install (``python -m modelroute.cli``
  from the checkout; ~120 distributions, dev and test tools among them; bytecode precompiled);
  ``--venv image,dev`` measures both in one run (the figures before 2026-12-06 session 6 were dev);

configured by ``--source``:

* ``bundle`` (default): as injected (``bench/injected.py``): the injected container's args and env,
  the namespace's signed route bundle written by the operator's code (all three routes), the pod's
  labels selecting one or three of them, the operator's public key, keys in a mounted Secret;
* ``config``: a ``--config`` file and keys in the env (standalone; the figures before 2026-12-06
  session 5 were taken this way). The file holds JSON documents separated by ``---``, read as YAML;
  with one route it is a single JSON document, which the loader reads without PyYAML.
  ``--source bundle,config`` measures both in one run.

and measures:

* ready: wall time from just before ``exec`` to the first 200 of ``GET /readyz`` (polled every
  2 ms on a fresh connection), with the process's CPU time and RSS at that moment;
* first request: each route's first chat request (one fresh connection each, in route order)
  minus the median of ``--warm`` later requests on that route (also one fresh connection each):
  what the first app request pays for anything deferred past ``/readyz``.

``--baseline-tree DIR`` (e.g. ``git worktree add ../before <commit>``): a second checkout, measured
in the same run from its own venvs (its image venv built from its own Dockerfile and lock; its dev
venv ``DIR/.venv/bin/python``, ``make -C DIR venv``, or ``--baseline-python PY``), the rows
alternated run by run, so all see the same machine. ``--baseline-python PY`` alone: the checkout
that interpreter's editable install points at. Rows are named ``this|baseline:image|dev``.

``--instructions``: instead, each configuration once under ``valgrind --tool=cachegrind
--cache-sim=no`` (per interpreter and source): the instructions the sidecar executes from exec until
``/readyz`` answers 200 (polled every 0.25 s; then SIGUSR1, whose default action ends the process at
once, so no shutdown is counted; the 503 answers to polls while a bundle loads are, and their number
is shown). ``PYTHONHASHSEED=0``, so that set and dict layouts are the same every run. Wall time on a
shared host swings 30 % run to run; this count does not (the same code twice: within 0.05 %). Two
different codes also differ by where the collector's full passes fall (tens of M instructions):
``bench/bundlecost.py`` counts the config steps alone, with the collector off.

    .venv/bin/python bench/podstart.py [--runs 7] [--warm 20] [--source bundle] [--venv image,dev] [--baseline-tree ../before]
    .venv/bin/python bench/podstart.py --instructions [--source bundle,config] [--venv image,dev] [--baseline-tree ...]

Goals (issue 15): ready p50 <= 0.5 s with one provider and <= 1.0 s with three; first request
at most 5 ms over a warm one. Memory (issue 15): <= 60 MB with one provider, <= 100 MB with three
(``bench/memory.py --providers`` for the soak).
"""

from __future__ import annotations

import argparse
import functools
import http.client
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import harness
import imagevenv
import injected
from modelroute.api import signing

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


def readyz(port: int) -> int | None:
    """The status of ``GET /readyz`` (None: nothing listening yet)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def start(st: harness.Stack, venv: harness.Venv, upstream: str, routes: list[str], n: int, source: str, key: bytes,
          wrap: list[str] | None = None, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int, int, Path]:
    """Spawn one sidecar (``wrap``: a command it runs under; ``env``: more variables); (process, inbound port, admin port, log)."""
    port, admin = harness.free_port(), harness.free_port()
    how = injected.launch(source, st.tmp / f"pod-{n}", upstream, routes, port, admin, key)
    log = st.tmp / f"sidecar-{n}.log"
    p = harness.spawn([*(wrap or []), *venv.argv(how.argv)], log_path=log,
                      env=injected.child_env({**how.env, **venv.env(), **(env or {})}), cwd=venv.cwd(st.tmp))
    return p, port, admin, log


def wait_ready(p: subprocess.Popen[bytes], admin: int, log: Path, every: float, timeout: float) -> int:
    """Poll ``/readyz`` until 200 (raise if the process ends or ``timeout`` passes); how many polls it answered."""
    deadline = time.perf_counter() + timeout
    answered = 0
    while (status := readyz(admin)) != 200:
        answered += status is not None
        if p.poll() is not None or time.perf_counter() > deadline:
            raise RuntimeError(f"sidecar did not become ready: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(every)
    return answered + 1


def one_start(st: harness.Stack, venv: harness.Venv, upstream: str, routes: list[str], warm: int, n: int,
              source: str, key: bytes) -> dict[str, Any]:
    """One sidecar process: its ready time, CPU and RSS then, and each route's first vs warm request."""
    t0 = time.perf_counter()
    p, port, admin, log = start(st, venv, upstream, routes, n, source, key)
    try:
        wait_ready(p, admin, log, 0.002, 120)
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


POLL_UNDER_VALGRIND_S = 0.25
CACHEGRIND = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
_IREFS = re.compile(rb"^==\d+== I\s+refs:\s+([\d,]+)", re.MULTILINE)


def instructions_start(st: harness.Stack, venv: harness.Venv, upstream: str, routes: list[str], n: int, source: str,
                       key: bytes) -> dict[str, Any]:
    """One sidecar under cachegrind: instructions from exec to ``/readyz`` 200 (no shutdown: SIGUSR1 ends it)."""
    t0 = time.perf_counter()
    p, _port, admin, log = start(st, venv, upstream, routes, n, source, key, wrap=CACHEGRIND, env={"PYTHONHASHSEED": "0"})
    try:
        polls = wait_ready(p, admin, log, POLL_UNDER_VALGRIND_S, 900)
        took = time.perf_counter() - t0
        p.send_signal(signal.SIGUSR1)
        p.wait(120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    m = _IREFS.search(log.read_bytes())
    if m is None:
        raise RuntimeError(f"no instruction count in {log}: {log.read_text(errors='replace')[-2000:]}")
    return {"instructions": int(m.group(1).replace(b",", b"")), "readyz_answered": polls, "wall_under_valgrind_s": took}


def precompile(python: str) -> None:
    """-OO bytecode of ``python``'s site-packages and of the checkout its editable install points at."""
    code = ("import sysconfig, pathlib, modelroute.sidecar, modelroute.api, modelroute.cli; "
            "print(sysconfig.get_paths()['purelib']); "
            "[print(pathlib.Path(m.__path__[0]).parents[1]) for m in (modelroute.sidecar, modelroute.api, modelroute.cli)]")
    paths = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    subprocess.run([python, "-m", "compileall", "-q", "-o", "2", *paths], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    harness.write_sdk_caches(python)


def summarize(runs: list[dict[str, Any]], routes: list[str]) -> dict[str, Any]:
    med = statistics.median
    return {"runs": len(runs), "ready_p50_s": med(r["ready_s"] for r in runs), "ready_min_s": min(r["ready_s"] for r in runs),
            "ready_max_s": max(r["ready_s"] for r in runs), "cpu_p50_s": med(r["cpu_s"] for r in runs),
            "rss_p50_mb": med(r["rss_mb"] for r in runs),
            "rss_after_requests_p50_mb": med(r["rss_after_requests_mb"] for r in runs),
            "excess_p50_ms": {rt: med(r["excess_ms"][rt] for r in runs) for rt in routes},
            "warm_p50_ms": {rt: med(r["warm_ms"][rt] for r in runs) for rt in routes}}


def label(name: str, source: str, sources: list[str]) -> str:
    """A row's key in the JSON: the interpreter's name (checkout:venv), with the source when a run measures several."""
    return name if len(sources) == 1 else f"{name}:{source}"


def checkout_of(python: str) -> Path:
    """The checkout ``python``'s editable install points at."""
    code = "import pathlib, modelroute.sidecar as m; print(pathlib.Path(m.__path__[0]).parents[2])"
    return Path(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip())


def interpreters(args: argparse.Namespace) -> tuple[dict[str, harness.Venv], dict[str, Any]]:
    """The sidecar's interpreters, ``checkout:venv`` -> venv (dev venvs precompiled, image venvs built), and what they are."""
    trees = {"this": (harness.REPO, harness.PY)}
    if args.baseline_tree or args.baseline_python:
        tree = Path(args.baseline_tree).resolve() if args.baseline_tree else checkout_of(args.baseline_python)
        trees["baseline"] = (tree, args.baseline_python or str(tree / ".venv" / "bin" / "python"))
    venvs: dict[str, harness.Venv] = {}
    about: dict[str, Any] = {}
    for who, (tree, py) in trees.items():
        for kind in args.venvs:
            if kind == "dev":
                if not Path(py).exists():
                    raise SystemExit(f"bench/podstart.py: no development venv {py} (make -C {tree} venv, or --baseline-python)")
                precompile(py)
                venvs[f"{who}:dev"] = harness.Venv(py, image=False)
                about[f"{who}:dev"] = {"tree": str(tree), "python": py}
            else:
                built = imagevenv.build(tree)
                venvs[f"{who}:image"] = harness.Venv(str(built.python), image=True)
                about[f"{who}:image"] = {"tree": str(tree), "python": str(built.python), "key": built.key,
                                         "uncommitted_changes": built.dirty, "built_s": built.built_s}
    return venvs, about


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=7, help="sidecar starts per configuration and interpreter")
    p.add_argument("--warm", type=int, default=20, help="warm requests per route after the first")
    p.add_argument("--venv", default="image",
                   help="the sidecar's venv: image (built as the Dockerfile does, bench/imagevenv.py: as deployed), "
                        "dev (the checkout's editable install), or both, comma-separated")
    p.add_argument("--baseline-python", help="also measure this interpreter's checkout (its dev venv; its image venv "
                                             "built from that checkout), alternated with this one")
    p.add_argument("--baseline-tree", help="also measure this checkout (its image venv; its dev venv: "
                                           "TREE/.venv/bin/python unless --baseline-python), alternated with this one")
    p.add_argument("--configs", default="1,3", help="provider counts to measure (1: openai; 3: openai, anthropic, gemini)")
    p.add_argument("--source", default="bundle",
                   help="how the sidecar gets its routes: bundle (as injected), config (a YAML file), or both, comma-separated")
    p.add_argument("--instructions", action="store_true",
                   help="count instructions exec -> ready under cachegrind, once per configuration, instead of timing")
    args = p.parse_args()
    args.sources = args.source.split(",")
    if not set(args.sources) <= set(injected.SOURCES):
        p.error(f"--source: one or more of {', '.join(injected.SOURCES)}")
    args.venvs = args.venv.split(",")
    if not args.venvs or not set(args.venvs) <= {"dev", "image"}:
        p.error("--venv: image, dev or both")
    return args


def main() -> None:
    args = parse_args()
    sources: list[str] = args.sources
    pythons, about = interpreters(args)
    configs = {int(c): (ONE if c == "1" else THREE) for c in args.configs.split(",")}
    rows_of = {label(name, src, sources): (py, src) for src in sources for name, py in pythons.items()}
    key = signing.generate_private_key_pem()
    info = {**harness.machine(), "venvs": about}
    raw: dict[str, dict[int, list[dict[str, Any]]]] = {row: {c: [] for c in configs} for row in rows_of}
    with harness.stack() as st:
        upstream = st.emulator()
        for route in THREE:  # the emulator warmed: its first answers are not the sidecar's
            for _ in range(5):
                harness.direct(upstream, route)
        n = 0
        for _ in range(1 if args.instructions else args.runs):
            for c, routes in configs.items():
                for row, (py, src) in rows_of.items():
                    n += 1
                    measure = instructions_start if args.instructions else functools.partial(one_start, warm=args.warm)
                    raw[row][c].append(measure(st, py, upstream, routes, n=n, source=src, key=key))
    if args.instructions:
        report_instructions(args, info, configs, raw)
    else:
        report(args, info, configs, raw)
    sys.stdout.flush()


def describe(info: dict[str, Any]) -> None:
    """One line per interpreter: which venv of which checkout."""
    for name, v in info["venvs"].items():
        extra = ""
        if "key" in v:
            built = "" if v["built_s"] is None else f", built in {v['built_s']:.0f} s"
            extra = f" (image venv {v['key']}{', uncommitted changes' if v['uncommitted_changes'] else ''}{built})"
        print(f"  {name}: {v['python']}{extra}")


def report_instructions(args: argparse.Namespace, info: dict[str, Any], configs: dict[int, list[str]],
                        raw: dict[str, dict[int, list[dict[str, Any]]]]) -> None:
    out: dict[str, Any] = {"bench": "podstart-instructions", "source": args.source, "machine": info,
                           "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
                           "runs": {row: {str(c): raw[row][c][0] for c in configs} for row in raw}}
    path = harness.write_result("podstart-instructions", out)
    first = next(iter(raw))
    rows = [[row, f"{c} provider{'s' * (c > 1)}", f"{r['instructions'] / 1e9:.4f}",
             f"{r['instructions'] / raw[first][c][0]['instructions'] - 1:+.1%}", r["readyz_answered"]]
            for c in configs for row in raw for r in [raw[row][c][0]]]
    print(f"sidecar start-up under cachegrind, instructions exec -> /readyz 200 (source {args.source}; load avg "
          f"{info['loadavg_1m_at_start']} at start, {out['loadavg_1m_at_end']} at end; {info['date']})")
    describe(info)
    print(harness.table(["python", "config", "G instructions", f"vs {first}", "/readyz answers"], rows))
    print(f"JSON: {path}")


def report(args: argparse.Namespace, info: dict[str, Any], configs: dict[int, list[str]],
           raw: dict[str, dict[int, list[dict[str, Any]]]]) -> None:
    out: dict[str, Any] = {"bench": "podstart", "source": args.source, "machine": info,
                           "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
                           "summary": {row: {str(c): summarize(raw[row][c], configs[c]) for c in configs} for row in raw},
                           "runs": {row: {str(c): raw[row][c] for c in configs} for row in raw}}
    path = harness.write_result("podstart", out)
    rows = []
    for row in raw:
        for c in configs:
            s = out["summary"][row][str(c)]
            rows.append([row, f"{c} provider{'s' * (c > 1)}", s["ready_p50_s"], f"{s['ready_min_s']:.3f}-{s['ready_max_s']:.3f}",
                         s["cpu_p50_s"], s["rss_p50_mb"],
                         " ".join(f"{rt} {s['excess_p50_ms'][rt]:+.2f}" for rt in configs[c])])
    print(f"sidecar start-up (source {args.source}), {args.runs} starts per row, alternated (load avg "
          f"{info['loadavg_1m_at_start']} at start, {out['loadavg_1m_at_end']} at end; {info['date']})")
    describe(info)
    print(harness.table(["python", "config", "ready p50 s", "ready min-max s", "CPU at ready s", "RSS at ready MB",
                         "first request - warm, p50 ms"], rows))
    print(f"goals, {next(iter(raw))}:")
    for c in configs:
        s = out["summary"][next(iter(raw))][str(c)]
        goal = GOALS[c]
        worst = max(s["excess_p50_ms"].values())
        print(f"{c} provider(s): ready {s['ready_p50_s']:.3f} s (goal <= {goal['ready_s']}: "
              f"{'met' if s['ready_p50_s'] <= goal['ready_s'] else 'MISSED'}), RSS {s['rss_p50_mb']:.1f} MB (goal <= "
              f"{goal['rss_mb']:g}: {'met' if s['rss_p50_mb'] <= goal['rss_mb'] else 'MISSED'}), first request "
              f"+{worst:.2f} ms (goal <= {GOAL_FIRST_MS:g}: {'met' if worst <= GOAL_FIRST_MS else 'MISSED'})")
    print(f"JSON: {path}")


if __name__ == "__main__":
    main()
