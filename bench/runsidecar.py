"""Run ``modelroute sidecar`` with bench-only variations: a CPU profile, uvloop, ``gc.freeze()``, GC thresholds.

Used by the benchmarks to measure levers before they are adopted in the product.
Wall-clock profiles of a busy 2-core host mostly show the scheduler; ``--profile`` uses
cProfile with a CPU-time clock (``time.process_time``): ``SIGUSR1`` starts it (after
warm-up), ``SIGUSR2`` stops it and writes the stats to the file (read with ``pstats``).

    python bench/runsidecar.py [--profile OUT] [--uvloop] [--gc-freeze] [--gc-threshold N] -- sidecar --config ...
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import gc
import json
import signal
import sys
import time
from types import FrameType

from modelroute.cli.main import main


def _gc_stats(out: str) -> None:
    spent = [0.0, 0.0, 0.0]
    started = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.process_time()
        else:
            spent[info["generation"]] += time.process_time() - started[0]

    def write() -> None:
        with open(out, "w") as f:
            json.dump({"collections": [s["collections"] for s in gc.get_stats()], "cpu_seconds": spent,
                       "process_cpu_seconds": time.process_time()}, f)

    gc.callbacks.append(timed)
    atexit.register(write)


def run() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--profile", metavar="OUT")
    p.add_argument("--uvloop", action="store_true", help="run the sidecar's event loop on uvloop")
    p.add_argument("--gc-freeze", action="store_true",
                   help="import the SDKs, then gc.freeze(): start-up objects leave the collector's generations")
    p.add_argument("--gc-threshold", type=int, metavar="N",
                   help="the collector's generation-0 threshold (the sidecar's: server.memory.GEN0_THRESHOLD; CPython's: 700)")
    p.add_argument("--gc-stats", metavar="OUT",
                   help="at exit, write to OUT the collections run per generation and the CPU time they took")
    p.add_argument("argv", nargs=argparse.REMAINDER)
    a = p.parse_args()
    argv = a.argv[1:] if a.argv[:1] == ["--"] else a.argv
    if a.uvloop:
        import uvloop

        uvloop.install()
    if a.gc_freeze:
        import anthropic  # noqa: F401  (what the config compile would import anyway)
        import openai  # noqa: F401
        from google import genai  # noqa: F401

        gc.collect()
        gc.freeze()
    if a.gc_threshold:  # the sidecar's start sets it (server.memory.tune_collector)
        from modelroute.sidecar.server import memory

        memory.GEN0_THRESHOLD = a.gc_threshold
    if a.gc_stats:
        _gc_stats(a.gc_stats)
    if a.profile:
        prof = cProfile.Profile(time.process_time)
        out = a.profile

        def start(_sig: int, _frame: FrameType | None) -> None:
            prof.enable()

        def stop(_sig: int, _frame: FrameType | None) -> None:
            prof.disable()
            prof.dump_stats(out)

        signal.signal(signal.SIGUSR1, start)
        signal.signal(signal.SIGUSR2, stop)
    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
