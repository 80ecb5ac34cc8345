"""``prelude``: `modelroute sidecar` imports with the collector paused, and resumes it (heap frozen) once serving."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from modelroute.cli import main
from modelroute.sidecar import prelude
from modelroute.sidecar.server import memory

ROUTE = """\
apiVersion: modelroute.dev/v1alpha1
kind: ModelRoute
metadata: {name: a}
spec:
  route: chat
  targets: [{name: t, provider: openai, model: gpt-4o-mini, baseUrl: "http://127.0.0.1:9/v1", apiKey: {env: OPENAI_API_KEY}}]
"""


def sidecar(config: Path, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, OPENAI_API_KEY="k")
    return subprocess.Popen([sys.executable, "-m", "modelroute.cli", "sidecar", "--config", str(config),
                             "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", *extra],
                            env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)


def test_the_prelude_pauses_the_collector_until_resumed() -> None:
    assert gc.isenabled()
    try:
        with prelude.starting():
            assert not gc.isenabled()
        assert not gc.isenabled()  # still paused after the imports: the sidecar resumes it once serving
        assert memory.resume_collector() is True
        assert gc.isenabled() and gc.get_freeze_count() > 0
        assert memory.resume_collector() is False  # nobody paused it: left as it is, nothing frozen again
    finally:
        gc.enable()
        gc.unfreeze()


def test_only_the_sidecar_subcommand_has_a_prelude() -> None:
    assert isinstance(main.prelude(["operator", "--help"]), contextlib.nullcontext)
    assert isinstance(main.prelude([]), contextlib.nullcontext)
    assert main.PRELUDES["sidecar"] == prelude.__name__
    assert not isinstance(main.prelude(["--x", "sidecar"]), contextlib.nullcontext)


def test_a_tree_without_the_prelude_starts_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bench scripts run an older checkout's ``modelroute/sidecar`` (no prelude.py) under this cli."""
    monkeypatch.setitem(main.PRELUDES, "sidecar", "modelroute.sidecar.no_such_prelude")
    assert isinstance(main.prelude(["sidecar"]), contextlib.nullcontext)


def test_a_started_sidecar_resumes_the_collector_once_it_serves(tmp_path: Path) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text(ROUTE)
    proc = sidecar(config, "--log-level", "debug")
    assert proc.stderr is not None
    seen: list[str] = []
    try:
        for line in proc.stderr:  # the sidecar's own log: the events, in order
            seen.append(line)
            if "the collector resumed" in line:
                break
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(seen)
    assert "the collector resumed" in text, text
    assert text.index("serving config") < text.index("inbound on") < text.index("the collector resumed")
    assert proc.returncode == 0


def test_a_failing_start_still_exits_2_with_its_problems(tmp_path: Path) -> None:
    config = tmp_path / "routes.yaml"
    config.write_text(ROUTE.replace("provider: openai", "provider: mistral"))
    proc = sidecar(config)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "spec.targets[0].provider: Input should be" in err
