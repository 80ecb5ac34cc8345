"""The sidecar's postStart hook, run for real: it returns only once /readyz says 200."""

from __future__ import annotations

import contextlib
import http.server
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from modelroute.operator.injection import InjectionSettings, StartGate, patch
from modelroute.operator.injection.sidecar import start_gate


class _Readyz(http.server.BaseHTTPRequestHandler):
    """503 for the first ``not_ready`` requests, then 200 (a sidecar getting its first config)."""

    not_ready = 3
    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        code = 503 if len(self.seen) <= self.not_ready else 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def readyz() -> Iterator[tuple[int, list[str]]]:
    seen: list[str] = []
    handler = type("H", (_Readyz,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()
    thread.join()


@contextlib.contextmanager
def socket_nobody_listens() -> Iterator[int]:
    """A loopback port held (bound, never listening) so every connect is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    # The image's interpreter stands in for this one: same flags, same code.
    return subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True, timeout=30, check=False)


def test_hook_returns_once_readyz_is_200(readyz: tuple[int, list[str]]) -> None:
    port, seen = readyz
    done = _run(start_gate(port, StartGate(timeout_seconds=20, poll_interval_ms=5))["exec"]["command"])
    assert done.returncode == 0, done.stderr
    assert seen == ["/readyz"] * 4  # three 503s retried, stopped at the first 200


def test_hook_fails_after_its_timeout_when_never_ready() -> None:
    with socket_nobody_listens() as port:
        done = _run(start_gate(port, StartGate(timeout_seconds=1, poll_interval_ms=50))["exec"]["command"])
    assert done.returncode == 1
    assert "/readyz not 200 after 1 s" in done.stderr


def test_injected_sidecar_has_the_hook_on_its_admin_port_and_no_startup_probe() -> None:
    settings = InjectionSettings(image="i", operator_public_key_pem="k", operator_namespace="ns")
    pod = {"metadata": {"namespace": "apps", "annotations": {"modelroute.dev/inject": "true",
                                                               "modelroute.dev/admin-port": "9001"}},
           "spec": {"containers": [{"name": "app", "image": "app:1"}]}}
    ops = patch(pod, settings)
    sidecar = next(op["value"] for op in ops if op["path"].startswith("/spec/initContainers"))
    if isinstance(sidecar, list):
        sidecar = sidecar[0]
    assert "startupProbe" not in sidecar
    assert sidecar["lifecycle"]["postStart"] == start_gate(9001, settings.start_gate)
    assert "('127.0.0.1',9001)" in sidecar["lifecycle"]["postStart"]["exec"]["command"][4]
    assert "end=time.monotonic()+300" in sidecar["lifecycle"]["postStart"]["exec"]["command"][4]
