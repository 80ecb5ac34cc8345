"""Run a snippet in a fresh interpreter: what a module imports shows only in a process that had none of it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping


def run_python(code: str, *, timeout: float = 60, env: Mapping[str, str] | None = None) -> str:
    """``code`` run by this interpreter in a new process (``env``: added variables); its stdout. Raises unless it exits 0."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, **(env or {})})
    if out.returncode != 0:
        raise AssertionError(f"exit {out.returncode}: {out.stderr[-2000:]}")
    return out.stdout
