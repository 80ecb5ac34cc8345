"""Peer comparison: the modelroute sidecar against a popular Python LLM proxy, in one run.

The peer is LiteLLM's proxy (``litellm[proxy]``, pinned by ``--litellm``), installed once into
its own venv under ``$MODELROUTE_CACHE/peers/litellm-<version>`` (not a project dependency;
reused by later runs, rebuilt only for another version). One run starts, on loopback, the
OpenAI emulator and four paths to it, and drives each with the same ``wrk`` load:

* ``direct``: straight to the emulator (the floor; "added" figures are against it);
* ``pass-through``: ``bench/passthrough.py``, the barest aiohttp proxy;
* ``modelroute``: the sidecar as deployed (``harness.Stack.sidecar``: ``PYTHONOPTIMIZE=2``, from the
  image venv, ``bench/imagevenv.py``, unless ``--venv dev``), one openai route;
* ``litellm``: the peer's proxy, 1 worker (uvicorn, as its CLI starts it), ``gpt-4o-mini``
  routed to the emulator, a master key, no database, no callbacks, the model cost map and its other
  remote JSON read from the package (``LITELLM_LOCAL_*``) rather than fetched (its
  ``--telemetry`` flag is a no-op in these versions).

Rounds alternate the paths (rotating the order) so drift in the machine's load hits all of
them. Per path: added p50/p99 at 1 connection (its p50/p99 minus those of a direct run right
next to it, which goes first or second by turns; median over rounds), req/s at 32
connections, CPU time per request at 32 connections and RSS after the load (both summed over
the server's process tree, from /proc). The sidecar gets one openai route, as the peer gets
one model; a second sidecar with a route per provider (the three SDKs loaded, as
``memory.py``) is started after the rounds for its RSS. The load average is printed with
each round.

Traffic stays on loopback by construction: after the install (which needs PyPI), the script
re-executes itself in a new network namespace (``unshare --net``) whose only interface is
``lo``, so nothing it starts can reach any other address (``--no-netns`` to skip; the
peer's settings above still keep it off the network). Every process started runs in its
own process group, killed at the end, also on errors and SIGTERM.

    apt-get install -y wrk                      # once (Debian package)
    .venv/bin/python bench/peers.py [--litellm 1.108.7] [--rounds 3] [--seconds 5]

Goals (issue 15): modelroute >= 10x better than the peer on added p50 and on req/s at 32
connections, >= 3x on RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.metadata
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import harness
from modelroute.testing.cluster.loopback import free_port
from modelroute.testing.cluster.processes import spawn
from throughput import lua, wrk

LITELLM = "1.108.7"
CACHE = Path(os.environ.get("MODELROUTE_CACHE") or Path.home() / ".cache" / "modelroute") / "peers"
PATHS = ("direct", "pass-through", "modelroute", "litellm")
GOALS = {"added p50": 10.0, "req/s @32": 10.0, "RSS": 3.0}
PEER_MODEL = "gpt-4o-mini"
# The peer's environment: nothing inherited beyond these (no DATABASE_URL, keys or proxies).
# The LITELLM_LOCAL_* switches make it read the JSON it would otherwise fetch from GitHub
# (model cost map at import; beta headers, presets, policy templates, blog posts on demand).
PEER_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOG": "ERROR",
    "LITELLM_MODE": "PRODUCTION",  # no .env loading
    "DISABLE_ADMIN_UI": "True",
}


# ---- the peer's venv -------------------------------------------------------------------------------

def install_peer(version: str) -> Path:
    """The python of a venv holding ``litellm[proxy]==version``, installed on first use."""
    venv = CACHE / f"litellm-{version}"
    py = venv / "bin" / "python"
    done = venv / ".modelroute-installed"
    log = CACHE / f"litellm-{version}.install.log"
    spec = f"litellm[proxy]=={version}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"litellm-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once: one installs, the other waits
        if done.exists() and py.exists():
            return py
        shutil.rmtree(venv, ignore_errors=True)
        print(f"installing {spec} into {venv} (once per version; log: {log})", file=sys.stderr, flush=True)
        # The import check runs as the peer will (its env, no network): importing litellm fetches otherwise.
        isolated = ["unshare", "--net", "--"] if netns_possible() is None else []
        steps = [[sys.executable, "-m", "venv", str(venv)],
                 [str(py), "-m", "pip", "install", "--disable-pip-version-check", spec],
                 [*isolated, str(py), "-c", "import litellm.proxy.proxy_server"]]
        with open(log, "w") as out:
            for argv in steps:
                out.write(f"$ {' '.join(argv)}\n")
                out.flush()
                env = peer_env() if argv[-1].startswith("import") else None
                try:
                    rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=1800,
                                        check=False).returncode
                except subprocess.TimeoutExpired:
                    rc = -1
                if rc != 0:
                    shutil.rmtree(venv, ignore_errors=True)
                    raise SystemExit(f"bench/peers.py: installing the peer failed at `{' '.join(argv[-3:])}` "
                                     f"(exit {rc}); the venv was removed. Last lines of {log}:\n{_tail(log, 25)}")
        done.write_text(_peer_version(py) + "\n")
    return py


def _peer_version(py: Path) -> str:
    return subprocess.run([str(py), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                          capture_output=True, text=True, check=True).stdout.strip()


def _tail(path: Path, n: int) -> str:
    try:
        return "\n".join(line[:300] for line in path.read_text(errors="replace").splitlines()[-n:])
    except FileNotFoundError:
        return "(no log)"


def peer_env() -> dict[str, str]:
    return {k: v for k in ("PATH", "HOME", "LANG", "TMPDIR") if (v := os.environ.get(k))} | PEER_ENV


def peer_config(upstream: str, master_key: str) -> str:
    cfg = {
        "model_list": [{"model_name": PEER_MODEL,
                        "litellm_params": {"model": f"openai/{PEER_MODEL}", "api_base": f"{upstream}/v1",
                                           "api_key": harness.KEYS["OPENAI_API_KEY"]}}],
        "litellm_settings": {"callbacks": [], "success_callback": [], "failure_callback": []},
        "general_settings": {"master_key": master_key},  # it refuses to start without one
    }
    return json.dumps(cfg, indent=1) + "\n"  # JSON is YAML


def start_peer(st: harness.Stack, py: Path, upstream: str, master_key: str) -> tuple[str, harness.Proc]:
    cfg = st.tmp / "litellm.yaml"
    cfg.write_text(peer_config(upstream, master_key))
    port = free_port()
    env = peer_env()
    argv = [str(py), "-m", "litellm.proxy.proxy_cli", "--config", str(cfg), "--host", "127.0.0.1",
            "--port", str(port), "--num_workers", "1"]
    log = st.tmp / "litellm.log"
    proc = harness.Proc("litellm", spawn(argv, log_path=log, env=env, cwd=st.tmp), log)
    st.procs.append(proc)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300  # a large import on a busy host
    while proc.popen.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(RuntimeError):
            harness.wait_http(f"{url}/health/liveliness", timeout=1)
            return url, proc
    state = "timed out" if proc.popen.poll() is None else f"exited with {proc.popen.returncode}"
    raise RuntimeError(f"the LiteLLM proxy did not come up ({state}); its log ends:\n{_tail(log, 30)}")


# ---- processes, trees, cleanup ---------------------------------------------------------------------

def tree(pid: int) -> list[int]:
    """``pid`` and its live descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def tree_rss_kb(pid: int) -> int:
    total = 0
    for p in tree(pid):
        with contextlib.suppress(FileNotFoundError, RuntimeError):
            total += harness.rss_kb(p)
    return total


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in tree(pid):
        with contextlib.suppress(FileNotFoundError):
            total += harness.cpu_seconds(p)
    return total


def kill_groups(procs: list[harness.Proc]) -> list[str]:
    """SIGKILL whatever is left in each process's group (each was started in its own session); what was left."""
    left = []
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, 0)
            left.append(p.name)
            os.killpg(p.pid, signal.SIGKILL)
    return left


def busy_ports(ports: list[int]) -> list[int]:
    """The ports in ``ports`` that something still listens on."""
    busy = []
    for port in ports:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                busy.append(port)
    return busy


def netns_possible() -> str | None:
    """None if ``unshare --net`` works here, else why not."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "no unshare/ip"
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True, check=False)
    return None if probe.returncode == 0 else f"unshare --net: {probe.stderr.strip()}"


def enter_netns(argv: list[str]) -> None:
    """Re-execute this script in a new network namespace with only ``lo`` (up); returns if impossible."""
    if (why := netns_possible()) is not None:
        print(f"bench/peers.py: cannot create a network namespace ({why}); running in the host's", file=sys.stderr)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp("unshare", ["unshare", "--net", "--", sys.executable, str(Path(__file__).resolve()), *argv, "--in-netns"])


# ---- the measurement -------------------------------------------------------------------------------

def check(url: str, headers: dict[str, str], body: bytes, who: harness.Proc | None) -> None:
    """One request; a clear error (with the server's log) unless it is a 200 with a chat completion."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=60) as r:
            data = json.loads(r.read())
        if not data.get("choices"):
            raise RuntimeError(f"no choices in {data!r:.300}")
    except (urllib.error.URLError, ValueError, RuntimeError) as e:
        detail = e.read()[:300] if isinstance(e, urllib.error.HTTPError) else ""
        log = f"; its log ends:\n{_tail(who.log, 30)}" if who else ""
        raise RuntimeError(f"{url}: {e} {detail!r}{log}") from None


def load(url: str, script: Path, pid: int, connections: int, seconds: float) -> dict[str, Any]:
    cpu0 = tree_cpu_seconds(pid)
    r = wrk(url, script, connections=connections, seconds=seconds, pid=None, timeout=30)
    r["cpu_ms_per_req"] = (tree_cpu_seconds(pid) - cpu0) * 1000 / r["requests"] if r["requests"] else None
    return r


def run(args: argparse.Namespace, peer_py: Path, venv: harness.Venv) -> dict[str, Any]:
    info = harness.machine()
    info["netns"] = args.in_netns
    info["venv"] = args.venv
    many = f"c{args.connections}"
    rounds: list[dict[str, Any]] = []
    left: list[str] = []
    ports: list[int] = []
    with harness.stack() as st:
        try:
            upstream = st.emulator()
            emulator = st.procs[-1]
            sidecar, admin, sc = st.sidecar(upstream, routes=["chat"], venv=venv)  # the peer's config: one openai model
            proxy = st.passthrough(upstream)
            passthrough = st.procs[-1]
            master_key = "sk-" + secrets.token_hex(32)
            peer, lp = start_peer(st, peer_py, upstream, master_key)
            url, headers, body = harness.direct_request(upstream, "chat")
            s_url, s_headers, s_body = harness.sidecar_request(sidecar, "chat")
            p_headers = {"Content-Type": "application/json", "Authorization": f"Bearer {master_key}"}
            paths = {  # name -> (url, request, server process)
                "direct": (url, (headers, body), emulator),
                "pass-through": (url.replace(upstream, proxy), (headers, body), passthrough),
                "modelroute": (s_url, (s_headers, s_body), sc),
                "litellm": (f"{peer}/v1/chat/completions", (p_headers, harness.chat_body(PEER_MODEL)), lp),
            }
            ports = [_port(u) for u in (upstream, proxy, sidecar, admin, peer)]
            scripts = {}
            for name, (u, (h, b), proc) in paths.items():
                check(u, h, b, proc)
                scripts[name] = lua(st.tmp / f"{name}.lua", h, b)
                wrk(u, scripts[name], connections=args.connections, seconds=2, pid=None, timeout=30)  # warm-up
                wrk(u, scripts[name], connections=1, seconds=1, pid=None, timeout=30)

            def measure(name: str, connections: int) -> dict[str, Any]:
                u, _req, proc = paths[name]
                return load(u, scripts[name], proc.pid, connections, args.seconds)

            for i in range(args.rounds):
                order = PATHS[i % len(PATHS):] + PATHS[:i % len(PATHS)]
                load_avg = os.getloadavg()[0]
                rnd: dict[str, Any] = {"order": list(order), "loadavg_1m": round(load_avg, 2)}
                for name in order:
                    rnd[name] = {}
                    if name != "direct":  # 1 connection: next to a direct run, first or second by turns
                        pair = ("direct", name) if i % 2 else (name, "direct")
                        got = {n: measure(n, 1) for n in pair}
                        rnd[name] |= {"c1": got[name], "c1_direct": got["direct"]}
                    rnd[name][many] = measure(name, args.connections)
                rounds.append(rnd)
                print(f"round {i + 1}/{args.rounds} [load {load_avg:.2f}]: "
                      + ", ".join(f"{n} {rnd[n]['c1']['p50_ms'] - rnd[n]['c1_direct']['p50_ms']:+.2f} ms"
                                  for n in PATHS[1:])
                      + "; " + ", ".join(f"{n} {rnd[n][many]['rps']:.0f} req/s" for n in PATHS), flush=True)
            rss = {name: tree_rss_kb(proc.pid) for name, (_u, _r, proc) in paths.items()}
            sc.stop()
            # As in memory.py: the sidecar with a route per provider (the three SDKs loaded), RSS only.
            sidecar3, admin3, sc3 = st.sidecar(upstream, name="sidecar-3", venv=venv)
            ports += [_port(sidecar3), _port(admin3)]
            u3 = s_url.replace(sidecar, sidecar3)
            wrk(u3, scripts["modelroute"], connections=args.connections, seconds=2, pid=None, timeout=30)
            rss["modelroute, 3 providers"] = tree_rss_kb(sc3.pid)
        finally:
            procs = list(st.procs)
            st.close()
            left = kill_groups(procs)
    info["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    return summarise(args, info, rounds, rss, peer_py) | {"leftover_processes": left, "busy_ports": busy_ports(ports)}


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def summarise(args: argparse.Namespace, info: dict[str, Any], rounds: list[dict[str, Any]], rss: dict[str, int],
              peer_py: Path) -> dict[str, Any]:
    many = f"c{args.connections}"
    rows: dict[str, dict[str, float]] = {}
    for name in PATHS:
        def med(key: str, level: str, name: str = name) -> float:
            return float(statistics.median(r[name][level][key] for r in rounds))

        def added(key: str, name: str = name) -> float:
            return float(statistics.median(r[name]["c1"][key] - r[name]["c1_direct"][key] for r in rounds))

        rows[name] = {"rps": med("rps", many), "cpu_ms_per_req": med("cpu_ms_per_req", many), "rss_mb": rss[name] / 1024}
        if name != "direct":
            rows[name] |= {"p50_ms": med("p50_ms", "c1"), "p99_ms": med("p99_ms", "c1"),
                           "added_p50_ms": added("p50_ms"), "added_p99_ms": added("p99_ms")}
    directs = [r[n]["c1_direct"] for r in rounds for n in PATHS[1:]]
    rows["direct"] |= {"p50_ms": float(statistics.median(d["p50_ms"] for d in directs)),
                       "p99_ms": float(statistics.median(d["p99_ms"] for d in directs))}
    mr, peer = rows["modelroute"], rows["litellm"]
    ratios = {"added p50": _ratio(peer["added_p50_ms"], mr["added_p50_ms"]),
              "added p99": _ratio(peer["added_p99_ms"], mr["added_p99_ms"]),
              "req/s @32": _ratio(mr["rps"], peer["rps"]),
              "RSS": _ratio(peer["rss_mb"], mr["rss_mb"]),
              "RSS, modelroute with 3 providers": _ratio(peer["rss_mb"], rss["modelroute, 3 providers"] / 1024),
              "CPU/req": _ratio(peer["cpu_ms_per_req"], mr["cpu_ms_per_req"])}
    return {"bench": "peers", "machine": info, "versions": versions(peer_py), "rounds_n": args.rounds,
            "seconds": args.seconds, "connections": args.connections, "rounds": rounds, "rows": rows,
            "rss_mb_modelroute_3_providers": rss["modelroute, 3 providers"] / 1024,
            "ratios_modelroute_over_peer": ratios, "goals": GOALS}


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def versions(peer_py: Path) -> dict[str, str]:
    v = {"litellm": _peer_version(peer_py)}
    for dist in ("aiohttp", "openai", "anthropic", "google-genai", "pydantic"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            v[dist] = importlib.metadata.version(dist)
    git = subprocess.run(["git", "-C", str(harness.REPO), "describe", "--always", "--dirty"],
                         capture_output=True, text=True, check=False)
    v["modelroute"] = git.stdout.strip() or "?"
    w = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    v["wrk"] = (w.stdout or w.stderr).split("\n", 1)[0].split(" Copyright", 1)[0].removeprefix("wrk ").strip()
    return v


def report(out: dict[str, Any]) -> None:
    m, rows, c = out["machine"], out["rows"], out["connections"]
    print(f"\npeer comparison, {out['rounds_n']} alternated rounds x {out['seconds']:g} s per path and level, wrk "
          f"(load avg {m['loadavg_1m_at_start']} at start, {m['loadavg_1m_at_end']} at end, on {m['cpus']} CPUs; "
          f"{m['date']}; network namespace: {'yes' if m['netns'] else 'no'})")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in out["versions"].items()) + f"; modelroute's venv: {m['venv']}")
    table = []
    for name in PATHS:
        r = rows[name]
        direct = name == "direct"
        table.append([name, r["p50_ms"], r["p99_ms"], "-" if direct else r["added_p50_ms"],
                      "-" if direct else r["added_p99_ms"], r["rps"], r["cpu_ms_per_req"], r["rss_mb"]])
    table.append(["modelroute, 3 providers", "-", "-", "-", "-", "-", "-", out["rss_mb_modelroute_3_providers"]])
    print(harness.table(["path", "p50 ms @1", "p99 ms @1", "added p50", "added p99", f"req/s @{c}",
                         f"CPU ms/req @{c}", "RSS MB"], table))
    verdicts = []
    for k, v in out["ratios_modelroute_over_peer"].items():
        goal = GOALS.get(k)
        verdicts.append(f"{k} {v:.1f}x" + (f" (goal >= {goal:g}x: {'met' if v >= goal else 'MISSED'})" if goal else ""))
    print("modelroute vs litellm: " + "; ".join(verdicts))
    print("(direct: the emulator's own figures; modelroute: one openai route, as the peer's one model; "
          "RSS after the load, RSS and CPU summed over each server's process tree)")
    print("\nmarkdown (bench/README.md, README.md):\n" + markdown(out))
    if out["leftover_processes"] or out["busy_ports"]:
        print(f"WARNING: left over after stop (killed): processes {out['leftover_processes']}, "
              f"ports still bound {out['busy_ports']}")


def markdown(out: dict[str, Any]) -> str:
    rows, c = out["rows"], out["connections"]
    label = {"direct": "direct to the emulator", "pass-through": "bare aiohttp pass-through",
             "modelroute": "modelroute sidecar", "litellm": f"LiteLLM proxy {out['versions']['litellm']}"}
    lines = [f"| path | added p50 ms @1 | added p99 ms @1 | req/s @{c} | CPU ms/req @{c} | RSS MB |", "|---|---|---|---|---|---|"]
    for name in PATHS:
        r = rows[name]
        lat = ["-", "-"] if name == "direct" else [f"{r['added_p50_ms']:.2f}", f"{r['added_p99_ms']:.2f}"]
        rss = "(emulator)" if name == "direct" else f"{r['rss_mb']:.0f}"
        lines.append(f"| {label[name]} | {' | '.join(lat)} | {r['rps']:,.0f} | {r['cpu_ms_per_req']:.2f} | {rss} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--litellm", default=LITELLM, help="LiteLLM version to install and measure")
    p.add_argument("--rounds", type=int, default=3, help="alternated rounds over the four paths")
    p.add_argument("--seconds", type=int, default=5, help="wrk duration per path, level and round")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--venv", choices=harness.VENVS, default="image",
                   help="the sidecar's venv: image (built as the Dockerfile does: as deployed) or dev (this editable install)")
    p.add_argument("--no-netns", action="store_true", help="stay in the host's network namespace")
    p.add_argument("--in-netns", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/peers.py needs wrk: apt-get install -y wrk")
    py = install_peer(args.litellm)  # cached: a no-op inside the namespace
    venv = harness.venv_of(args.venv)  # likewise
    if args.in_netns:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    elif not args.no_netns:
        enter_netns(sys.argv[1:])  # does not return when it can
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: the stack stops its processes
    out = run(args, py, venv)
    report(out)
    print(f"-> {harness.write_result('peers', out)}")


if __name__ == "__main__":
    main()
