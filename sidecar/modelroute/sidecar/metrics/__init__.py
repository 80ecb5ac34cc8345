"""What the sidecar reports about itself: ``/stats`` and ``/metrics`` counters, and OpenTelemetry.

``stats`` counts requests and attempts per route and target (an ``Observer``), ``promtext``
writes the Prometheus text format, ``telemetry`` emits OTel spans and metrics (off unless
``OTEL_*`` is set). The pipeline's own counters live beside it (``pipeline.counters``).
"""
