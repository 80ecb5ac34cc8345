"""`modelroute demo` end to end, as a user runs it: a subprocess with the emulators and a real sidecar.

The live-canary part must promote the healthy model swap through mirror and weights, with
passing analyses printed with values and thresholds, then abort the faulty revision on its
error rate while only mirrored (no user error), back on stable in one push.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelroute.testing import demo
from modelroute.testing.cluster.loopback import free_port


def demo_env(optimize: str, pycache: Path) -> dict[str, str]:
    """The environment of the demo's processes. Under PYTHONOPTIMIZE=2 outside the image there is no ``-OO``
    bytecode, so each process compiles what it imports; with PYTHONDONTWRITEBYTECODE (set on CI hosts) it would
    do so at every start, the sidecar the modules the demo process has just compiled too. Written to ``pycache``
    instead, the sidecar reads them (its start-up CPU 3.4-5.2 s -> 2.0-3.0 s here: bench/README.md, 2026-12-06)."""
    plain = {k: v for k, v in os.environ.items() if k != "PYTHONOPTIMIZE"}
    if not optimize:
        return plain
    return {**{k: v for k, v in plain.items() if k != "PYTHONDONTWRITEBYTECODE"},
            "PYTHONOPTIMIZE": optimize, "PYTHONPYCACHEPREFIX": str(pycache)}


@pytest.mark.parametrize("optimize", ["", "2"], ids=["plain", "PYTHONOPTIMIZE=2"])
def test_demo_promotes_then_aborts_a_canary(optimize: str, tmp_path: Path) -> None:
    """Also under PYTHONOPTIMIZE=2, as the injected sidecar runs: no behaviour may hang on asserts or docstrings."""
    proc = subprocess.run([sys.executable, "-m", "modelroute.cli", "demo"], capture_output=True, text=True,
                          timeout=300, env=demo_env(optimize, tmp_path / "pycache"))
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    # The existing sections still run first.
    assert "fallback: Anthropic answers 429" in out and "GET /stats" in out

    healthy, faulty = out.split("== live canary 2")
    assert "== live canary 1" in healthy
    # Make before break, then mirror, weights 25 and 50, with analyses passing on value vs threshold.
    pushes = re.findall(r"push  (stable \d+% / canary \d+% / mirror \d+%)", healthy)
    assert pushes[:4] == ["stable 100% / canary 0% / mirror 0%", "stable 100% / canary 0% / mirror 100%",
                          "stable 75% / canary 25% / mirror 0%", "stable 50% / canary 50% / mirror 0%"], pushes
    assert re.search(r"ok   analysis Pass: samples \d+ >= 30 .*errorRate 0 <= 0.05", healthy)
    assert "StepStarted: step 6/6: pause: 2s" in healthy
    assert "Promoted: revision" in healthy and "push  stable 100% (canary dropped)" in healthy
    assert "result: promoted: revision" in healthy and "gpt-4.1-mini" in healthy

    # The faulty revision fails its analysis while mirrored and is aborted: users never saw it.
    fail = re.search(r"FAIL analysis Fail .*errorRate (0\.\d+) > 0.05", faulty)
    assert fail and float(fail.group(1)) > 0.05, faulty
    assert "WARNING Aborted: revision" in faulty and "phase Degraded" in faulty
    assert "result: aborted: revision" in faulty
    assert "canary 20%" not in faulty                     # never got live weight
    assert re.search(r"traffic: \d+ answers \(gpt-4\.1-mini \d+\), 0 errors", faulty)
    assert "Done:" in out and "live canary" in out.split("Done:")[1]


async def test_the_readiness_wait_ends_as_soon_as_the_sidecar_exits() -> None:
    """What makes the long ``READY_TIMEOUT`` safe: a sidecar that fails is reported at once, not after the bound."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "raise SystemExit(3)")
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the sidecar exited with code 3"):
        await asyncio.to_thread(demo._wait_ready, f"http://127.0.0.1:{free_port()}/readyz", proc)
    assert time.monotonic() - started < demo.READY_TIMEOUT / 4
