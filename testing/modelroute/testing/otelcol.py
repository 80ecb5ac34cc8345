"""A real OpenTelemetry Collector for tests: OTLP/HTTP in on a loopback port, JSON lines out to a file.

The binary is built with the official collector builder (``cluster.binaries.ensure_otelcol``).
``Collector`` writes a config (OTLP HTTP receiver on a free loopback port, batch processor
with a 100 ms timeout, file exporter flushing every 100 ms), runs the collector, waits
until the receiver accepts connections, and reads back what it exported::

    with Collector() as col:                       # or ``async with``
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": col.endpoint}
        ...
        spans = col.wait_for_spans(lambda s: len(s) >= 2)

Each line of the file is one OTLP/JSON export request (``resourceSpans`` or
``resourceMetrics``); ``spans()`` and ``metrics()`` flatten them, keeping the resource
attributes with each item. The collector's own telemetry is off (no port 8888).
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from modelroute.testing.cluster.loopback import free_port

Json = dict[str, Any]
R = TypeVar("R")

CONFIG = """\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
processors:
  batch:
    timeout: 100ms
exporters:
  file:
    path: {path}
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [file]
    metrics:
      receivers: [otlp]
      processors: [batch]
      exporters: [file]
"""


def attr_value(v: Json) -> Any:
    """An OTLP/JSON ``AnyValue`` as a Python value (ints arrive as strings)."""
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v:
        return [attr_value(x) for x in v["arrayValue"].get("values", [])]
    return None


def attributes(items: list[Json] | None) -> dict[str, Any]:
    return {a["key"]: attr_value(a.get("value") or {}) for a in items or []}


@dataclass
class Span:
    name: str
    kind: int                       # OTLP SpanKind: 2 SERVER, 3 CLIENT
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status: Json
    raw: Json


@dataclass
class Metric:
    name: str
    unit: str
    points: list[Json]              # data points, attributes decoded into ``attrs``
    resource: dict[str, Any]


class Collector:
    def __init__(self, binary: Path | None = None, workdir: Path | None = None, start_timeout: float = 20.0) -> None:
        if binary is None:
            from modelroute.testing.cluster.binaries import ensure_otelcol

            binary = ensure_otelcol()
        self.binary = binary
        self._tmp = None if workdir is not None else tempfile.TemporaryDirectory(prefix="otelcol-")
        self.workdir = workdir if workdir is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        self.output = self.workdir / "export.jsonl"
        self.port = 0
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self.workdir / "otelcol.log"

    @property
    def endpoint(self) -> str:
        """The value for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        for _ in range(5):  # a port picked free may be taken before the collector binds it: try another
            self.port = free_port()
            cfg = self.workdir / "config.yaml"
            cfg.write_text(CONFIG.format(port=self.port, path=self.output))
            with self._log.open("ab") as log:
                self._proc = subprocess.Popen([str(self.binary), "--config", str(cfg)], stdout=log, stderr=log)
            if self._wait_ready():
                return
            self.stop()
        raise RuntimeError(f"the OpenTelemetry Collector did not start; its log:\n{self.log_text()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
            time.sleep(0.05)
        return False

    def log_text(self) -> str:
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # the collector flushes its pipelines on SIGTERM
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    # -- reading the export ------------------------------------------------------------------
    def lines(self) -> list[Json]:
        if not self.output.exists():
            return []
        out = []
        for line in self.output.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):  # a line being written right now
                out.append(json.loads(line))
        return out

    def raw_text(self) -> str:
        return self.output.read_text() if self.output.exists() else ""

    def _records(self, signal: str, item: str) -> Iterator[tuple[dict[str, Any], Json]]:
        """(resource attributes, record) for every ``item`` of every ``resource<signal>`` exported so far."""
        for doc in self.lines():
            for rs in doc.get(f"resource{signal}", []):
                res = attributes((rs.get("resource") or {}).get("attributes"))
                for ss in rs.get(f"scope{signal}", []):
                    for record in ss.get(item, []):
                        yield res, record

    def spans(self) -> list[Span]:
        return [Span(s.get("name", ""), int(s.get("kind", 0)), s.get("traceId", ""), s.get("spanId", ""),
                     s.get("parentSpanId", ""), attributes(s.get("attributes")), res, s.get("status") or {}, s)
                for res, s in self._records("Spans", "spans")]

    def metrics(self) -> list[Metric]:
        out = []
        for res, m in self._records("Metrics", "metrics"):
            body: Json = next((m[k] for k in ("histogram", "sum", "gauge", "exponentialHistogram") if k in m), {})
            points = [{**p, "attrs": attributes(p.get("attributes"))} for p in body.get("dataPoints", [])]
            out.append(Metric(m.get("name", ""), m.get("unit", ""), points, res))
        return out

    def wait_for_spans(self, done: Callable[[list[Span]], bool], timeout: float = 10.0) -> list[Span]:
        return _poll(self.spans, done, timeout)

    def wait_for_metrics(self, done: Callable[[list[Metric]], bool], timeout: float = 10.0) -> list[Metric]:
        return _poll(self.metrics, done, timeout)

    def __enter__(self) -> Collector:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _poll(read: Callable[[], list[R]], done: Callable[[list[R]], bool], timeout: float) -> list[R]:
    """``read()`` until ``done`` says so or ``timeout`` passes; the last reading either way."""
    deadline = time.monotonic() + timeout
    while True:
        got = read()
        if done(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.05)
