"""Rendering the chart with the helm binary the cluster tooling installs (fixture ``chart``)."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelroute.testing.cluster.binaries import cache_dir, ensure_kubectl_and_helm

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "modelroute"
RELEASE, NAMESPACE = "mr", "modelroute-system"

# The generated signing key differs on every render; snapshots keep a placeholder.
_GENERATED_KEY = re.compile(r"(signing-key\.pem: )[A-Za-z0-9+/=]{40,}")


@cache
def helm() -> Path:
    return ensure_kubectl_and_helm(cache_dir())[1]


def run_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm()), *args], capture_output=True, text=True, check=check)


def template(*set_args: str, values: Path | None = None) -> str:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    if values is not None:
        args += ["--values", str(values)]
    for s in set_args:
        args += ["--set", s]
    return run_helm(*args).stdout


def normalize(rendered: str) -> str:
    return _GENERATED_KEY.sub(r"\1<generated>", rendered)


def documents(rendered: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(rendered) if d]


def find(docs: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    for d in docs:
        if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix):
            return d
    raise AssertionError(f"no {kind} *{name_suffix} in the rendered chart")


class Chart:
    """The helpers above as one fixture object."""

    root, path, release, namespace = ROOT, CHART, RELEASE, NAMESPACE
    template = staticmethod(template)
    normalize = staticmethod(normalize)
    documents = staticmethod(documents)
    find = staticmethod(find)
    run_helm = staticmethod(run_helm)


@pytest.fixture(scope="session")
def chart() -> Chart:
    return Chart()
