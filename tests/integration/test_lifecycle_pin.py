"""``MODELROUTE_LIFECYCLE_DATE`` as the processes see it: a sidecar and an operator started with a pin.

The same written config (gpt-4o-mini, shut down 2027-01-14 per the openai SDK) starts before the day and is
refused on and after it; a pin that is not a date stops either process at start with a line naming the variable.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

from modelroute.api.lifecycledate import ENV_LIFECYCLE_DATE
from modelroute.api.signing import generate_private_key_pem
from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.sidecars import ENV, route, target

LISTENING = re.compile(r"inbound on http://\S+, admin on http://\S+")


async def start(*args: str, pin: str, env: dict[str, str] | None = None) -> tuple[int | None, str]:
    """Run ``modelroute <args>`` with the pin; (exit code, stderr) when it exits, (None, stderr so far) once it listens."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "modelroute.cli", *args, env={**os.environ, **ENV, **(env or {}), ENV_LIFECYCLE_DATE: pin},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(60):  # an import on a busy host, not a wait on time
            while line := (await proc.stderr.readline()).decode():
                lines.append(line)
                if LISTENING.search(line):
                    return None, "".join(lines)
            return await proc.wait(), "".join(lines)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def config(tmp_path: Path, emu: EmulatorServer) -> Path:
    f = tmp_path / "routes.yaml"
    f.write_text(yaml.safe_dump(route("chat", [target(emu, "openai", model="gpt-4o-mini")])))
    return f


def sidecar(f: Path) -> tuple[str, ...]:
    return ("sidecar", "--config", str(f), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")


async def test_the_same_config_starts_before_the_shutdown_and_is_refused_after(tmp_path: Path, emu: EmulatorServer) -> None:
    f = config(tmp_path, emu)
    code, err = await start(*sidecar(f), pin="2027-01-13")
    assert code is None, err  # served, with the shutdown ahead as a warning
    assert "model 'gpt-4o-mini' is deprecated by openai and shuts down on 2027-01-14" in err
    code, err = await start(*sidecar(f), pin="2027-02-01")
    assert code == 2
    assert err.startswith(f"modelroute sidecar: {f} doc 1 (chat): spec.targets[0].model: target 'openai': model "
                          "'gpt-4o-mini' was retired by openai on 2027-01-14: every call to it fails"), err


@pytest.mark.parametrize("mode", ["config", "admin token"])
async def test_a_bad_pin_stops_the_sidecar_at_start_naming_the_variable(tmp_path: Path, emu: EmulatorServer,
                                                                        mode: str) -> None:
    args = (sidecar(config(tmp_path, emu)) if mode == "config"
            else ("sidecar", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"))
    code, err = await start(*args, pin="next tuesday", env={"MODELROUTE_ADMIN_TOKEN": "t0ken"} if mode != "config" else None)
    assert code == 2
    assert err == (f"modelroute sidecar: {ENV_LIFECYCLE_DATE}='next tuesday' is not a date: give YYYY-MM-DD (the day "
                   "the model retirement checks take as today), or unset it to use today's UTC date\n")


async def test_a_bad_pin_stops_the_operator_at_start_naming_the_variable(tmp_path: Path) -> None:
    key = tmp_path / "operator.key"
    key.write_bytes(generate_private_key_pem())
    code, err = await start("operator", "--signing-key", str(key), "--metrics-listen", "127.0.0.1:0", pin="2027-1-14")
    assert code == 2
    assert err == (f"modelroute operator: {ENV_LIFECYCLE_DATE}='2027-1-14' is not a date: give YYYY-MM-DD (the day "
                   "the model retirement checks take as today), or unset it to use today's UTC date\n")
