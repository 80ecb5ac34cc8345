"""A venv built the way the image's builder stage builds ``/opt/modelroute``, so the benches measure what is deployed.

The development venv (``make venv``) is an editable install: the namespace folders ``api/``,
``cli/``, ``sidecar/``, ``operator/``, ``testing/`` on ``sys.path`` and ~120 distributions,
every dev and test tool among them (pydantic's plugin loader reads all their entry points at
the first model; the path finders scan more entries). The image holds a wheel of the repository
installed into a fresh venv with only the runtime dependencies at the versions of
``requirements.lock``, compiled at ``-o 0`` and ``-o 2``, with google-genai's annotation caches.

``build(tree)`` makes that venv from the checkout at ``tree`` by running the builder stage of
that checkout's own ``Dockerfile``: its ``COPY`` sources (minus what ``.dockerignore`` drops:
``__pycache__``, ``*.pyc``) copied into a scratch build directory, its ``ARG`` defaults and
``ENV`` set, and its ``RUN`` commands run by ``sh`` with ``/opt/modelroute`` and ``/wheels``
mapped onto the cache. Nothing is restated here, so the bench cannot drift from the image.
Differences: ``python`` is a scratch venv of this host's interpreter (the image's base image has
its own Python, e.g. 3.11.14), and pip may use its cache (``PIP_NO_CACHE_DIR`` is dropped).

Built once per key and kept outside the repository under ``$MODELROUTE_CACHE/imagevenv/<key>``
(default ``~/.cache/modelroute``): the key hashes the Dockerfile, the host interpreter and the
path and contents of every file the stage copies as they are on disk, so uncommitted changes
get their own venv (``dirty`` says when there are any; ``git`` status of the copied paths).
The four most recently used venvs are kept.

    .venv/bin/python bench/imagevenv.py [TREE]     # build (or find) it; prints its python
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("MODELROUTE_CACHE") or Path.home() / ".cache" / "modelroute") / "imagevenv"
KEEP = 4
VENV_IN_IMAGE = "/opt/modelroute"
WHEELS_IN_IMAGE = "/wheels"
SKIPPED_ENV = ("PIP_NO_CACHE_DIR",)       # the pip cache is reused here
IGNORED_DIRS = ("__pycache__",)           # as .dockerignore drops them from the build context
IGNORED_SUFFIXES = (".pyc",)
DONE = ".built"


@dataclass
class Stage:
    """A Dockerfile's first (builder) stage: what ``build`` runs."""

    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    copies: list[tuple[list[str], str]] = field(default_factory=list)   # (sources, destination)
    runs: list[str] = field(default_factory=list)


def _expand(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), value)


def builder_stage(dockerfile: str) -> Stage:
    """The first stage of ``dockerfile`` (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", dockerfile)
    stage, froms = Stage(), 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op, rest = op.upper(), rest.strip()
        if op == "FROM":
            froms += 1
            if froms > 1:
                break
        elif op == "ARG":
            name, eq, default = rest.partition("=")
            if eq:
                stage.args[name] = _expand(default, stage.args)
        elif froms == 0:
            continue
        elif op == "ENV":
            stage.env.update(dict(item.split("=", 1) for item in shlex.split(rest)))
        elif op == "WORKDIR":
            stage.workdir = rest
        elif op == "COPY":
            if rest.startswith("--"):
                raise ValueError(f"COPY with options is not supported by bench/imagevenv.py: {line}")
            *sources, dest = shlex.split(rest)
            stage.copies.append((sources, dest))
        elif op == "RUN":
            stage.runs.append(rest)
        elif op not in ("LABEL",):
            raise ValueError(f"bench/imagevenv.py does not run {op} (builder stage): {line}")
    if not stage.runs:
        raise ValueError("no RUN in the Dockerfile's first stage")
    return stage


def context_files(tree: Path, stage: Stage) -> list[tuple[str, str]]:
    """(path in the tree, destination as the COPY names it) of every file the stage copies.

    As ``COPY`` does: a folder's contents go into the destination; a file goes into it when it ends
    with ``/`` or several sources share it, else becomes it.
    """
    out = []
    for sources, dest in stage.copies:
        for src in sources:
            path = tree / src
            if path.is_dir():
                for root, dirs, files in os.walk(path):
                    dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS)
                    for f in sorted(files):
                        if not f.endswith(IGNORED_SUFFIXES):
                            inside = Path(root, f).relative_to(path).as_posix()
                            out.append((Path(root, f).relative_to(tree).as_posix(), f"{dest.rstrip('/')}/{inside}"))
            elif dest.endswith("/") or len(sources) > 1:
                out.append((src, f"{dest.rstrip('/')}/{Path(src).name}"))
            else:
                out.append((src, dest))
    return out


def key(tree: Path, dockerfile: str, python: str) -> str:
    """What the venv is made of: the Dockerfile, the host interpreter, every copied file's path, mode and bytes."""
    stage = builder_stage(dockerfile)
    h = hashlib.sha256()
    version = subprocess.run([python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True,
                             check=True).stdout
    h.update(f"{dockerfile}\0{python}\0{version}\0".encode())
    for rel, into in context_files(tree, stage):
        path = tree / rel
        h.update(f"{into}\0{os.access(path, os.X_OK)}\0".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def dirty(tree: Path, stage: Stage) -> bool | None:
    """Whether the copied paths differ from the checkout's HEAD (None: not a git checkout)."""
    paths = [s for sources, _ in stage.copies for s in sources]
    r = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--", *paths], capture_output=True, text=True,
                       check=False)
    return None if r.returncode else bool(r.stdout.strip())


def base_python() -> str:
    """This host's interpreter itself, not a venv's (``python -m venv`` from it, as the image's base Python)."""
    return str(Path(getattr(sys, "_base_executable", sys.executable)).resolve())


@dataclass(frozen=True)
class ImageVenv:
    python: Path
    key: str
    dirty: bool | None
    built_s: float | None    # None: found in the cache


def build(tree: Path, log: Path | None = None) -> ImageVenv:
    """The image venv of the checkout at ``tree`` (built on first use; the wait of another run building it)."""
    tree = tree.resolve()
    dockerfile = (tree / "Dockerfile").read_text()
    stage = builder_stage(dockerfile)
    python = base_python()
    k = key(tree, dockerfile, python)
    home = CACHE / k
    venv, done = home / "venv", home / DONE
    CACHE.mkdir(parents=True, exist_ok=True)
    state = dirty(tree, stage)
    with open(CACHE / f"{k}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # two runs at once: one builds, the other waits
        if done.exists():
            done.touch()
            return ImageVenv(venv / "bin" / "python", k, state, None)
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        log = log or home / "build.log"
        print(f"building the image venv of {tree} ({k}{', uncommitted changes' if state else ''}) as the Dockerfile's "
              f"builder stage does; log: {log}", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            _run_stage(tree, stage, python, venv, log)
        except BaseException:
            shutil.rmtree(home, ignore_errors=True)
            raise
        done.write_text(f"{tree}\n")
        took = time.monotonic() - t0
    prune()
    return ImageVenv(venv / "bin" / "python", k, state, took)


def _run_stage(tree: Path, stage: Stage, python: str, venv: Path, log: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="modelroute-imagevenv-") as scratch:
        work = Path(scratch)
        builddir, wheels, tools = work / "build", work / "wheels", work / "python"
        for rel, into in context_files(tree, stage):
            target = builddir / _under_workdir(into, stage.workdir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(tree / rel, target)
        wheels.mkdir()
        # `python` of the RUN lines: the base image's interpreter, with pip; here a scratch venv of the host's.
        subprocess.run([python, "-m", "venv", str(tools)], check=True, capture_output=True)
        # The host's pip settings (index, certificates) stay: they are how pip reaches the registry here.
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONOPTIMIZE")}
        env.update({k: v for k, v in stage.env.items() if k not in SKIPPED_ENV})
        env.update(stage.args)
        env["PATH"] = f"{tools / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        cwd = builddir / _under_workdir(".", stage.workdir)
        cwd.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as out:
            for run in stage.runs:
                command = map_paths(run, venv, wheels)
                out.write(f"$ {command}\n")
                out.flush()
                rc = subprocess.run(["sh", "-ec", command], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    timeout=1800, check=False).returncode
                if rc:
                    tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
                    raise RuntimeError(f"the image venv's build failed (exit {rc}) at:\n{command}\nlast lines of {log}:\n{tail}")


def _under_workdir(into: str, workdir: str) -> str:
    """A COPY destination as a path relative to the build directory standing for ``/``."""
    path = into if into.startswith("/") else f"{workdir.rstrip('/')}/{into}"
    return os.path.normpath(path).lstrip("/") or "."


def map_paths(run: str, venv: Path, wheels: Path) -> str:
    """A RUN command with the image's paths replaced by the cache's."""
    run = re.sub(rf"(?<![\w/.]){re.escape(WHEELS_IN_IMAGE)}(?=[/\s]|$)", str(wheels), run)
    return re.sub(rf"(?<![\w/.]){re.escape(VENV_IN_IMAGE)}(?=[/\s]|$)", str(venv), run)


def prune(cache: Path = CACHE, keep: int = KEEP) -> list[Path]:
    """Remove all but the ``keep`` most recently used venvs under ``cache`` (those another run holds locked stay)."""
    if not cache.exists():
        return []
    built = sorted((d for d in cache.iterdir() if (d / DONE).exists()), key=lambda d: (d / DONE).stat().st_mtime,
                   reverse=True)
    removed = []
    for d in built[keep:]:
        with open(cache / f"{d.name}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def main() -> None:
    tree = Path(sys.argv[1]) if len(sys.argv) > 1 else BENCH.parent
    v = build(tree)
    took = "found in the cache" if v.built_s is None else f"built in {v.built_s:.0f} s"
    print(f"{v.python}  ({took}; key {v.key}{'; uncommitted changes' if v.dirty else ''})")


if __name__ == "__main__":
    main()
