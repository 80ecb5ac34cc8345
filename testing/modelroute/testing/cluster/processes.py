"""Starting and stopping long-running local processes (etcd, kube-apiserver, pod processes).

Each process gets its own session, a log file and optionally a pid file, so a later,
unrelated invocation (``hack/local-cluster down``) can stop it. Processes started for a
test session are *tied* to their parent: Linux delivers SIGKILL to them if the parent dies,
so a crashed or killed pytest never leaves a control plane behind (they are forked from one
long-lived thread, because Linux ties that signal to the forking thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelroute-spawner")


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    pid_path: Path | None = None,
    tie_to_parent: bool = True,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with stdout+stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)

    def start() -> subprocess.Popen[bytes]:
        with open(log_path, "ab") as log:
            return subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent if tie_to_parent else None,
            )

    # PDEATHSIG fires when the *thread* that forked exits, so tied children are forked
    # from one thread that lives as long as the process (not from a short-lived worker).
    proc = _SPAWNER.submit(start).result() if tie_to_parent else start()
    if pid_path is not None:
        pid_path.write_text(f"{proc.pid}\n")
    return proc


def read_pid(pid_path: Path) -> int | None:
    try:
        return int(pid_path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def pid_runs(pid: int, executable: Path | None = None) -> bool:
    """Whether ``pid`` is alive (and, if given, runs ``executable``: guards pid reuse)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return executable is None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":  # zombie: dead, not yet reaped
            return False
    except (FileNotFoundError, IndexError):
        return False
    if executable is None:
        return True
    try:
        cmd0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    except FileNotFoundError:
        return False
    return cmd0 == str(executable)


def stop_pid(pid: int, *, executable: Path | None = None, timeout: float = 10.0) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL. No-op if it is not (our) process."""
    if not pid_runs(pid, executable):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_runs(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(100):
        _reap(pid)
        if not pid_runs(pid):
            return
        time.sleep(0.02)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: its parent reaps it
        os.waitpid(pid, os.WNOHANG)


def log_tail(log_path: Path, lines: int = 25) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "".join(text.splitlines(keepends=True)[-lines:])
