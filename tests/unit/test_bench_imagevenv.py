"""``bench/imagevenv.py`` builds the benches' image venv by running the Dockerfile's builder stage:
what it reads from the Dockerfile, what the build context holds, when the cached venv is reused."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_imagevenv", ROOT / "bench" / "imagevenv.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


iv = _load()

DOCKERFILE = """\
ARG HATCHLING_VERSION=1.0
FROM base AS builder
ARG HATCHLING_VERSION
ENV PIP_NO_CACHE_DIR=1 \\
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
COPY requirements.lock pyproject.toml ./
COPY api ./api
RUN python -m venv /opt/modelroute \\
    && /opt/modelroute/bin/pip install /wheels/x.whl
FROM base
COPY --from=builder /opt/modelroute /opt/modelroute
RUN echo final stage
"""


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    (tree / "api" / "pkg" / "__pycache__").mkdir(parents=True)
    (tree / "tests").mkdir()
    (tree / "Dockerfile").write_text(DOCKERFILE)
    for rel, text in {"requirements.lock": "a==1\n", "pyproject.toml": "[project]\n", "api/pkg/m.py": "x = 1\n",
                      "api/pkg/__pycache__/m.cpython-311.pyc": "", "api/pkg/stale.pyc": "", "tests/t.py": ""}.items():
        (tree / rel).write_text(text)
    return tree


def _key(tree: Path) -> str:
    return str(iv.key(tree, (tree / "Dockerfile").read_text(), sys.executable))


def test_the_builder_stage_is_read_from_the_dockerfile_alone() -> None:
    stage = iv.builder_stage(DOCKERFILE)
    assert stage.args == {"HATCHLING_VERSION": "1.0"}
    assert stage.env == {"PIP_NO_CACHE_DIR": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    assert stage.workdir == "/build"
    assert stage.copies == [(["requirements.lock", "pyproject.toml"], "./"), (["api"], "./api")]
    assert stage.runs == ["python -m venv /opt/modelroute      && /opt/modelroute/bin/pip install /wheels/x.whl"]


def test_the_repositorys_builder_stage_maps_onto_the_cache() -> None:
    stage = iv.builder_stage((ROOT / "Dockerfile").read_text())
    runs = " ".join(iv.map_paths(r, Path("/cache/venv"), Path("/scratch/wheels")) for r in stage.runs)
    assert "/opt/modelroute" not in runs and " /wheels" not in runs, runs
    for step in ("pip wheel --no-deps --no-build-isolation", "/cache/venv/bin/pip install --constraint requirements.lock "
                 "/scratch/wheels/modelroute-", "/cache/venv/bin/pip check", "compileall -q -o 0 -o 2 /cache/venv/lib"):
        assert step in runs


def test_the_context_is_what_copy_takes_without_what_dockerignore_drops(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    files = iv.context_files(tree, iv.builder_stage(DOCKERFILE))
    assert files == [("requirements.lock", "./requirements.lock"), ("pyproject.toml", "./pyproject.toml"),
                     ("api/pkg/m.py", "./api/pkg/m.py")]
    assert [iv._under_workdir(into, "/build") for _, into in files] == ["build/requirements.lock", "build/pyproject.toml",
                                                                         "build/api/pkg/m.py"]


def test_dockerignore_drops_only_what_the_bench_build_drops() -> None:
    drops = [ln for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln and ln[0] not in "#!" and ln != "*"]
    assert drops == [f"**/{d}" for d in iv.IGNORED_DIRS] + [f"**/*{s}" for s in iv.IGNORED_SUFFIXES]


def test_the_key_follows_the_copied_files_on_disk_and_nothing_else(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    first = _key(tree)
    assert _key(tree) == first
    (tree / "api" / "pkg" / "__pycache__" / "m.cpython-311.pyc").write_text("bytecode")
    (tree / "tests" / "t.py").write_text("not copied")
    assert _key(tree) == first
    keys = {first}
    for change in ("api/pkg/m.py", "api/pkg/new.py", "requirements.lock"):   # an edit, a new file, the lock
        (tree / change).write_text("changed\n")
        keys.add(_key(tree))
    (tree / "Dockerfile").write_text(DOCKERFILE.replace("1.0", "1.1"))
    keys.add(_key(tree))
    assert len(keys) == 5


def test_uncommitted_changes_are_told(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    stage = iv.builder_stage(DOCKERFILE)
    assert iv.dirty(tree, stage) is None   # not a git checkout
    git = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    assert iv.dirty(tree, stage) is False
    (tree / "tests" / "t.py").write_text("outside the image")
    assert iv.dirty(tree, stage) is False
    (tree / "api" / "pkg" / "m.py").write_text("x = 2\n")
    assert iv.dirty(tree, stage) is True


def test_prune_keeps_the_most_recently_used(tmp_path: Path) -> None:
    for i, name in enumerate(["a", "b", "c", "unfinished"]):
        (tmp_path / name).mkdir()
        if name != "unfinished":
            (tmp_path / name / iv.DONE).write_text("")
            os.utime(tmp_path / name / iv.DONE, (i, i))
    assert iv.prune(tmp_path, keep=2) == [tmp_path / "a"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["b", "c", "unfinished"]
