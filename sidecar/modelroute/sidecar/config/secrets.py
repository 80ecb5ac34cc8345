"""API-key sources: environment variables, files (rotated in place) and mounted Secrets.

A config only ever holds key *references*; this module turns a reference into a zero-argument
callable that returns the current key. The callables sit on the hot path (called once per
upstream attempt), so a file source stats its file at most once per ``check_interval`` and
re-reads it only when the file changed (mtime, size or inode: Kubernetes swaps mounted Secret
files with a symlink flip, which changes the inode). Key values never appear in messages.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from modelroute.api.v1alpha1 import ApiKey, Target

SECRETS_DIR_ENV = "MODELROUTE_SECRETS_DIR"
DEFAULT_SECRETS_DIR = "/var/run/secrets/modelroute"
CHECK_INTERVAL_S = 1.0

log = logging.getLogger(__name__)

KeySource = Callable[[], str]


class KeyUnavailable(Exception):
    """A key reference cannot be resolved. The message names the reference, never a value."""


def _read_key(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise KeyUnavailable(f"key file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise KeyUnavailable(f"key file {str(path)!r} is a directory") from None
    except (OSError, UnicodeDecodeError) as e:
        raise KeyUnavailable(f"key file {str(path)!r} cannot be read ({type(e).__name__})") from None
    if not text:
        raise KeyUnavailable(f"key file {str(path)!r} is empty")
    return text


class FileKey:
    """The key in a file, re-read when the file changes (checked at most once per interval)."""

    __slots__ = ("_checked", "_clock", "_interval", "_lock", "_sig", "_value", "path")

    def __init__(self, path: Path, *, check_interval: float = CHECK_INTERVAL_S, clock: Callable[[], float] = time.monotonic):
        self.path = path
        self._interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._sig = self._stat()
        self._value = _read_key(path)   # raises KeyUnavailable: a missing file fails at load
        self._checked = clock()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def __call__(self) -> str:
        now = self._clock()
        if now - self._checked < self._interval:
            return self._value
        with self._lock:
            self._checked = now
            sig = self._stat()
            if sig is not None and sig != self._sig:
                try:
                    self._value = _read_key(self.path)
                    self._sig = sig
                    log.info("API key file %s changed; using the new key", self.path)
                except KeyUnavailable as e:
                    # Mid-rotation (file briefly empty or gone): keep serving the previous key.
                    log.warning("%s; keeping the previous key", e)
        return self._value

    def __repr__(self) -> str:
        return f"FileKey({str(self.path)!r})"


class _EnvKey:
    """A key read from the environment when the config was loaded."""

    __slots__ = ("_value", "name")

    def __init__(self, name: str, value: str):
        self.name = name
        self._value = value

    def __call__(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"EnvKey({self.name!r})"


def describe(ref: ApiKey) -> str:
    """Human description of a key reference (no value)."""
    if ref.env is not None:
        return f"env {ref.env}"
    if ref.file is not None:
        return f"file {ref.file}"
    assert ref.secret_key_ref is not None
    return f"secret {ref.secret_key_ref.name}/{ref.secret_key_ref.key}"


class KeyResolver:
    """Resolves key references to sources. File sources are shared per path across configs."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        secrets_dir: str | os.PathLike[str] | None = None,
        *,
        check_interval: float = CHECK_INTERVAL_S,
    ):
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        if secrets_dir is None:
            secrets_dir = self.environ.get(SECRETS_DIR_ENV) or DEFAULT_SECRETS_DIR
        self.secrets_dir = Path(secrets_dir)
        self._interval = check_interval
        self._files: dict[Path, FileKey] = {}
        self._lock = threading.Lock()

    def path_for(self, ref: ApiKey) -> Path | None:
        if ref.file is not None:
            return Path(ref.file)
        if ref.secret_key_ref is not None:
            return self.secrets_dir / ref.secret_key_ref.name / ref.secret_key_ref.key
        return None

    def resolve(self, ref: ApiKey) -> KeySource:
        """A source for ``ref``; raises ``KeyUnavailable`` when it cannot be read now."""
        if ref.env is not None:
            value = self.environ.get(ref.env)
            if value is None:
                raise KeyUnavailable(f"environment variable {ref.env} is not set")
            if not value.strip():
                raise KeyUnavailable(f"environment variable {ref.env} is empty")
            return _EnvKey(ref.env, value.strip())
        path = self.path_for(ref)
        assert path is not None
        with self._lock:
            src = self._files.get(path)
            if src is None:
                try:
                    src = FileKey(path, check_interval=self._interval)
                except KeyUnavailable as e:
                    if ref.secret_key_ref is not None:
                        raise KeyUnavailable(
                            f"Secret {ref.secret_key_ref.name!r} key {ref.secret_key_ref.key!r}: {e}"
                            f" (is the Secret mounted under {self.secrets_dir}? set {SECRETS_DIR_ENV} to change the directory)"
                        ) from None
                    raise
                self._files[path] = src
            else:
                src()  # refresh (and surface a now-missing file as the last good key)
            return src

    def source_for(self, target: Target) -> KeySource | None:
        """The key source of ``target``; ``None`` when the target needs no key."""
        if target.api_key is None:
            return None
        return self.resolve(target.api_key)

    def problem(self, target: Target) -> str | None:
        """Why ``target``'s key cannot be resolved, or ``None`` when it can."""
        try:
            self.source_for(target)
        except KeyUnavailable as e:
            return str(e)
        return None


_default: KeyResolver | None = None


def default_resolver() -> KeyResolver:
    global _default
    if _default is None:
        _default = KeyResolver()
    return _default


def source_for(target: Target) -> KeySource | None:
    """The key source of ``target`` from the process environment and the default secrets dir."""
    return default_resolver().source_for(target)
