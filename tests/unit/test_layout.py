"""Guards the repository layout: no folder may shadow the stdlib's `operator` module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = ["api", "cli", "sidecar", "operator", "testing"]


def test_top_level_folders_exist() -> None:
    for name in ["pyproject.toml", "operator", "sidecar", "crds", "charts", "tests", "Dockerfile", "README.md"]:
        assert (ROOT / name).exists(), f"{name} is missing at the repository top level"


@pytest.mark.parametrize("base", [ROOT, *(ROOT / r for r in SOURCE_ROOTS), ROOT / "tests", ROOT / "bench", ROOT / "hack"])
def test_no_operator_package_on_any_path_entry(base: Path) -> None:
    # Any of these folders may end up on sys.path (cwd, source roots, rootdir insertion).
    assert not (base / "operator" / "__init__.py").exists(), f"{base}/operator/__init__.py would shadow the stdlib"
    assert not (base / "operator.py").exists(), f"{base}/operator.py would shadow the stdlib"


@pytest.mark.parametrize("cwd", [ROOT, ROOT / "operator", ROOT / "tests"])
def test_stdlib_operator_wins_from_every_working_directory(cwd: Path) -> None:
    code = "import operator, modelroute.operator as m; print(operator.__file__); print(operator.add(1, 2)); print(m.__name__)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
    ).stdout.split()
    assert "site-packages" not in out[0] and str(ROOT) not in out[0], out[0]
    assert out[1:] == ["3", "modelroute.operator"]


def test_no_source_root_declares_a_regular_modelroute_package() -> None:
    # `modelroute` is a PEP 420 namespace across the source roots; an __init__.py would hide the others.
    for root in SOURCE_ROOTS:
        assert not (ROOT / root / "modelroute" / "__init__.py").exists()
