"""Shared set-up for the sidecar benchmarks: processes, config, requests, statistics.

Every benchmark runs three kinds of processes on loopback so that none steals the other's
event loop: the provider emulator (upstream), the system under test (the sidecar, or the
bare pass-through proxy used as a baseline) and the load generator (the benchmark script
itself, or ``wrk``). Processes are tied to this one (``modelroute.testing.cluster.processes``)
so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imagevenv
from modelroute.testing import lifecyclepin
from modelroute.testing.cluster.loopback import free_port as free_port
from modelroute.testing.cluster.processes import spawn as spawn

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
PY = sys.executable

# Configs name gpt-4o-mini (shut down 2027-01-14): every bench process takes the suite's fixed day as today
# (MODELROUTE_LIFECYCLE_DATE, inherited by the sidecars and operators started from here), so a bench runs next year.
lifecyclepin.pin()

KEYS = {"OPENAI_API_KEY": "sk-bench-openai", "ANTHROPIC_API_KEY": "sk-ant-bench", "GEMINI_API_KEY": "bench-gemini"}

# route name -> (provider, upstream model)
ROUTES = {
    "chat": ("openai", "gpt-4o-mini"),
    "claude": ("anthropic", "claude-haiku-4-5"),
    "gem": ("gemini", "gemini-2.5-flash"),
}
PROMPT = "hello from the benchmark"
MAX_TOKENS = 16


IMAGE_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
"""The final stage's ENV (Dockerfile): the image venv's bytecode is all there, and nothing writes to it."""


@dataclass(frozen=True)
class Venv:
    """The interpreter a sidecar runs on: a development venv (editable install of a checkout, run from
    that checkout as ``python -m modelroute.cli``) or an image venv (``bench/imagevenv.py``, run as the
    image runs it: its ``modelroute`` console script, the final stage's env, from a folder holding no source)."""

    python: str
    image: bool

    def argv(self, args: list[str]) -> list[str]:
        """The command for ``args`` after the interpreter (``-m modelroute.cli ...``: the image's entry point)."""
        if self.image and args[:2] == ["-m", "modelroute.cli"]:
            return [self.python, str(Path(self.python).parent / "modelroute"), *args[2:]]
        return [self.python, *args]

    def env(self) -> dict[str, str]:
        return IMAGE_ENV if self.image else {}

    def cwd(self, scratch: Path) -> Path:
        """Where it starts: the checkout (dev), or an empty folder (image; the pod's is ``/home/modelroute``)."""
        if not self.image:
            return REPO
        home = scratch / "home"
        home.mkdir(parents=True, exist_ok=True)
        return home



def wait_http(url: str, timeout: float = 30.0, headers: dict[str, str] | None = None) -> None:
    """Until ``url`` answers 2xx (or raise)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=2) as r:
                if 200 <= r.status < 300:
                    return
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up: {last}")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


class Stack:
    """The processes of one benchmark run, stopped together."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="modelroute-perf-"))
        self.procs: list[Proc] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> Proc:
        log = self.tmp / f"{name}.log"
        p = Proc(name, spawn(argv, log_path=log, env={**os.environ, **(env or {})}, cwd=cwd), log)
        self.procs.append(p)
        return p

    def emulator(self, extra: list[str] | None = None) -> str:
        """Start the emulator (all providers; ``extra``: more of its CLI options); its base URL."""
        port = free_port()
        self.start("emulator", [PY, "-m", "modelroute.testing.emulators", "--host", "127.0.0.1", "--port", str(port),
                                "--log-size", "100", *(extra or [])])
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/_emulator/faults")
        return url

    def sidecar(self, upstream: str, *, log_level: str = "info", variant: list[str] | None = None,
                name: str = "sidecar", optimize: int = 2, routes: Iterable[str] = tuple(ROUTES),
                tree: Path | None = None, venv: Venv | None = None) -> tuple[str, str, Proc]:
        """Start the sidecar with one route per provider (or only ``routes``); (inbound URL, admin URL, process).

        ``variant``: options for ``bench/runsidecar.py`` (``--profile OUT``, ``--uvloop``, ``--gc-freeze``);
        without it the sidecar runs as the injected container does (``modelroute sidecar`` with
        ``PYTHONOPTIMIZE=2``; from the dev venv as ``python -m modelroute.cli``, its bytecode compiled first).
        ``optimize=0``: plain ``python``, as ``modelroute sidecar`` runs outside the image.
        ``tree``: a source root holding another ``modelroute/sidecar`` (e.g. ``git archive main sidecar``
        unpacked), imported ahead of this checkout's: a before/after in one run (``--before``).
        ``venv``: the interpreter (default: this development venv); ``venv_of("image")``: the image's venv,
        as deployed (``bench/imagevenv.py``; not with ``variant`` or ``tree``).
        """
        venv = venv or Venv(PY, image=False)
        if venv.image and (variant or tree):
            raise ValueError("variant and tree run on the development venv only")
        if not venv.image:
            precompile()
        cfg = self.tmp / f"{name}-routes.yaml"
        cfg.write_text(config_yaml(upstream, routes))
        port, admin = free_port(), free_port()
        cmd = [str(BENCH / "runsidecar.py"), *variant, "--"] if variant else ["-m", "modelroute.cli"]
        p = self.start(name, [*venv.argv([*cmd, "sidecar", "--config", str(cfg),
                                          "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}",
                                          "--log-level", log_level])],
                   env={**KEYS, "PYTHONOPTIMIZE": str(optimize) if optimize else "",
                        **({"PYTHONPATH": str(tree)} if tree else {}), **venv.env()}, cwd=venv.cwd(self.tmp))
        try:
            wait_http(f"http://127.0.0.1:{admin}/readyz", timeout=120)  # 3 SDKs to import on a busy host
        except RuntimeError:
            tail = "\n".join(p.log.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"the sidecar did not become ready; its log ends:\n{tail}") from None
        return f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}", p

    def passthrough(self, upstream: str) -> str:
        """Start the bare aiohttp pass-through proxy (``bench/passthrough.py``); its URL."""
        port = free_port()
        self.start("passthrough", [PY, str(BENCH / "passthrough.py"), "--port", str(port), "--upstream", upstream])
        wait_http(f"http://127.0.0.1:{port}/healthz")
        return f"http://127.0.0.1:{port}"

    def close(self) -> None:
        for p in reversed(self.procs):
            p.stop()


@contextmanager
def stack() -> Iterator[Stack]:
    """A ``Stack`` whose processes stop at the end; its logs are kept only if the run failed."""
    s = Stack()
    try:
        yield s
    except BaseException:
        s.close()
        print(f"logs kept in {s.tmp}", file=sys.stderr)
        raise
    s.close()
    shutil.rmtree(s.tmp, ignore_errors=True)


def venv_of(kind: str) -> Venv:
    """``dev``: this development venv; ``image``: this checkout's image venv (``bench/imagevenv.py``, built on first use)."""
    if kind == "dev":
        return Venv(PY, image=False)
    return Venv(str(imagevenv.build(REPO).python), image=True)


VENVS = ("image", "dev")


_precompiled = False


def precompile() -> None:
    """Write the -OO bytecode the image ships (Dockerfile), so the sidecar does not compile at start."""
    global _precompiled
    if _precompiled:
        return
    site = subprocess.run([PY, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([PY, "-m", "compileall", "-q", "-o", "2", site, str(REPO / "sidecar"), str(REPO / "api"),
                    str(REPO / "cli")], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    write_sdk_caches(PY)
    _precompiled = True


def write_sdk_caches(python: str) -> None:
    """As the image build does: google-genai's string-annotation code caches (``providers/leandefs.py``).

    Without them (a host with PYTHONDONTWRITEBYTECODE set) every start compiles five SDK modules:
    ~0.2 G instructions and ~15 MB more RSS than a pod (bench/README.md, session 5).
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for flags in ([], ["-OO"]):
        subprocess.run([python, *flags, "-c", "import modelroute.sidecar.providers.gemini"], check=False, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY"}


def route_docs(upstream: str, routes: Iterable[str] = tuple(ROUTES), secret: str | None = None) -> list[dict[str, Any]]:
    """One ModelRoute document per route, against the emulator at ``upstream``.

    Keys from the env (``KEYS``), or with ``secret`` from that mounted Secret, one key per provider.
    """
    base = {"openai": f"{upstream}/v1", "anthropic": upstream, "gemini": upstream}
    docs = []
    for route in routes:
        provider, model = ROUTES[route]
        key = {"secretKeyRef": {"name": secret, "key": provider}} if secret else {"env": KEY_ENV[provider]}
        docs.append({
            "apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": f"bench-{route}"},
            "spec": {"route": route, "targets": [{"name": provider, "provider": provider, "model": model,
                                                  "baseUrl": base[provider], "apiKey": key}],
                     "timeoutSeconds": 10, "retry": {"attempts": 1}},
        })
    return docs


def config_yaml(upstream: str, routes: Iterable[str] = tuple(ROUTES)) -> str:
    return "\n---\n".join(json.dumps(d) for d in route_docs(upstream, routes)) + "\n"  # JSON is YAML


# ---- the same question, as each path asks it -----------------------------------------------------

def chat_body(model: str) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": PROMPT}],
                       "max_tokens": MAX_TOKENS}).encode()


def sidecar_request(sidecar: str, route: str) -> tuple[str, dict[str, str], bytes]:
    """(url, headers, body) of the app's OpenAI request to the sidecar for ``route``."""
    return (f"{sidecar}/v1/chat/completions", {"Content-Type": "application/json", "Authorization": "Bearer app"},
            chat_body(route))


def direct_request(upstream: str, route: str) -> tuple[str, dict[str, str], bytes]:
    """(url, headers, body) of the equivalent request sent straight to the emulator, in its provider's format."""
    provider, model = ROUTES[route]
    if provider == "openai":
        return (f"{upstream}/v1/chat/completions",
                {"Content-Type": "application/json", "Authorization": f"Bearer {KEYS['OPENAI_API_KEY']}"}, chat_body(model))
    if provider == "anthropic":
        body = {"model": model, "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": PROMPT}]}
        return (f"{upstream}/v1/messages",
                {"Content-Type": "application/json", "x-api-key": KEYS["ANTHROPIC_API_KEY"],
                 "anthropic-version": "2023-06-01"}, json.dumps(body).encode())
    body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}], "generationConfig": {"maxOutputTokens": MAX_TOKENS}}
    return (f"{upstream}/v1beta/models/{model}:generateContent",
            {"Content-Type": "application/json", "x-goog-api-key": KEYS["GEMINI_API_KEY"]}, json.dumps(body).encode())


def direct(upstream: str, route: str) -> None:
    """One request for ``route`` straight to the emulator (raises unless 2xx)."""
    url, headers, body = direct_request(upstream, route)
    with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=10) as r:
        r.read()


# ---- measurements ------------------------------------------------------------------------------

def pct(xs: list[float], p: float) -> float:
    """Percentile ``p`` (0-100) by nearest rank on sorted data."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def summary(xs: list[float]) -> dict[str, float]:
    return {"n": len(xs), "mean": statistics.fmean(xs), "p50": pct(xs, 50), "p90": pct(xs, 90), "p99": pct(xs, 99),
            "max": max(xs)}


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_1m_at_start": round(load[0], 2),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
