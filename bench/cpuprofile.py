"""Run ``modelroute`` under cProfile with a CPU-time clock, switched on and off by signals.

Wall-clock profiles of a busy 2-core host mostly show the scheduler; CPU time
(``time.process_time``) shows what the sidecar itself spends. ``SIGUSR1`` starts profiling
(after warm-up), ``SIGUSR2`` stops it and writes the stats to OUT (read with ``pstats``).

    python bench/cpuprofile.py OUT sidecar --config ... --listen ... --admin-listen ...
"""

from __future__ import annotations

import cProfile
import signal
import sys
import time
from types import FrameType

from modelroute.cli.main import main


def run() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    prof = cProfile.Profile(time.process_time)

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
