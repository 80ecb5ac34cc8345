"""Static checks of the Dockerfile (no container engine runs on this machine).

Every copied path exists, the final stage is non-root with no compilers and no source tree,
the entry point is the console script with both subcommands, base images are pinned, and the
pinned dependencies cover pyproject's.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from modelroute.cli.main import SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [arg for o, arg in self.instructions if o == op]


def parse() -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op, rest = op.upper(), rest.strip()
        if op == "ARG" and not stages and "=" in rest:
            k, v = rest.split("=", 1)
            args[k] = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], v)  # an ARG may use an earlier one
        elif op == "FROM":
            parts = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(image=image, name=name))
        elif stages:
            stages[-1].instructions.append((op, rest))
    return args, stages


ARGS, STAGES = parse()
FINAL = STAGES[-1]


def test_multi_stage_with_slim_python_bases_pinned_by_tag() -> None:
    assert len(STAGES) >= 2
    for stage in STAGES:
        repo, _, tag = stage.image.partition(":")
        assert repo == "python", stage.image
        assert re.fullmatch(r"3\.11\.\d+-slim(-\w+)?", tag), f"{stage.image}: pin a full version tag"


def test_the_base_image_is_a_build_arg_defaulting_to_upstream_python_slim() -> None:
    # Machines without a registry build a Debian base and pass it (hack/local-cluster images).
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", ARGS["BASE_IMAGE"]), ARGS["BASE_IMAGE"]
    text = DOCKERFILE.read_text()
    assert [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")] == ["${BASE_IMAGE}"] * len(STAGES)


def test_every_copied_path_exists() -> None:
    for stage in STAGES:
        for arg in stage.all("COPY"):
            words = [w for w in shlex.split(arg) if not w.startswith("--")]
            if "--from=" in arg:
                continue
            for src in words[:-1]:
                assert (ROOT / src).exists(), f"COPY {src}: no such path in the repository"


def test_packages_of_pyproject_are_copied() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied: set[str] = set()
    for stage in STAGES:
        for arg in stage.all("COPY"):
            if "--from=" not in arg:
                copied |= {w.rstrip("/") for w in shlex.split(arg)[:-1]}
    for package in pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]:
        assert package.split("/")[0] in copied, f"{package} is built into the wheel but not copied"
    assert {"pyproject.toml", "requirements.lock", "README.md"} <= copied


def test_final_stage_runs_as_non_root() -> None:
    users = FINAL.all("USER")
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user.isdigit(), "a numeric UID lets Kubernetes verify runAsNonRoot"


def test_final_stage_has_no_compilers_or_source_tree() -> None:
    body = " ".join(arg for _, arg in FINAL.instructions)
    for tool in ("gcc", "g++", "build-essential", "clang", "make ", "python3-dev", "libffi-dev"):
        assert tool not in body, f"{tool} in the final stage"
    for arg in FINAL.all("COPY"):
        assert arg.startswith("--from="), f"the final stage copies from the build context: COPY {arg}"
    workdir = FINAL.all("WORKDIR")[-1]
    assert workdir not in ("/", "/build", "/src", "/app") and "operator" not in workdir


def test_entry_point_is_the_console_script_with_both_subcommands() -> None:
    (entry,) = FINAL.all("ENTRYPOINT")
    assert entry == '["modelroute"]'
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "modelroute" in scripts
    assert {"operator", "sidecar"} <= set(SUBCOMMANDS)


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"requirements.lock: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version
    return pins


def _runtime_closure() -> dict[str, str]:
    """Every distribution a plain ``pip install modelroute`` pulls in (from the venv's metadata)."""
    env = {"extra": ""}
    seen: dict[str, str] = {}
    todo = [Requirement(d) for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        extras = sorted(req.extras)
        key = name + "[" + ",".join(extras) + "]"
        if key in seen:
            continue
        dist = metadata.distribution(req.name)
        seen[key] = dist.version
        for raw in dist.requires or []:
            sub = Requirement(raw)
            if sub.marker is None or any(sub.marker.evaluate({**env, "extra": e}) for e in (extras or [""])):
                todo.append(sub)
    return {k.split("[", 1)[0]: v for k, v in seen.items()}


def test_every_runtime_dependency_is_pinned_to_the_tested_version() -> None:
    pins = _lock()
    closure = _runtime_closure()
    assert {"aiohttp", "kopf", "openai", "anthropic", "google-genai", "pydantic-core"} <= set(closure)
    unpinned = sorted(set(closure) - set(pins))
    assert not unpinned, f"runtime dependencies missing from requirements.lock: {unpinned}"
    drift = {n: (pins[n], v) for n, v in closure.items() if pins[n] != v}
    assert not drift, f"requirements.lock differs from the tested venv (lock, venv): {drift}"
    for dep in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        req = Requirement(dep)
        assert req.specifier.contains(pins[canonicalize_name(req.name)], prereleases=True), dep


def test_the_image_installs_with_the_lock_as_constraints() -> None:
    builder = STAGES[0]
    runs = " ".join(builder.all("RUN"))
    assert re.search(r"pip install (--constraint|-c) requirements\.lock /wheels/modelroute-", runs), runs
    assert "pip check" in runs


def test_the_image_ships_the_bytecode_the_injected_sidecar_runs() -> None:
    """The sidecar container sets PYTHONOPTIMIZE=2 on a read-only root filesystem: the image
    must carry -OO bytecode (and plain bytecode for the operator), or every start compiles."""
    runs = " ".join(STAGES[0].all("RUN"))
    levels = re.search(r"compileall((?: -q)?(?: -o \d)+) /opt/modelroute/lib", runs)
    assert levels and {"-o 0", "-o 2"} <= set(re.findall(r"-o \d", levels.group(1))), runs
    # (tests/unit/injection/test_patch.py checks that the injected container sets PYTHONOPTIMIZE=2)


@pytest.mark.parametrize("path", ["requirements.lock", "pyproject.toml", "README.md", "api", "operator", "sidecar", "cli", "testing"])
def test_dockerignore_lets_copied_paths_through(path: str) -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert f"!{path}" in ignore or f"!{path}/" in ignore
