"""Start-up config from the cluster: the operator's signed route bundle and this pod's labels.

The operator persists every accepted ModelRoute of a namespace in ConfigMap ``modelroute-routes``
(``bundle.json`` + ``bundle.sig``), mounted into the sidecar. A pod that starts while the operator
is down selects its routes from it with its own labels (downward-API ``labels`` file) using the
operator's own selection function, so both agree. The files are polled; a newer bundle is loaded
unless a newer operator push (by ``issuedAt``) is already serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from modelroute.api.config import BUNDLE_KEY, SIGNATURE_KEY, RouteBundle
from modelroute.api.problems import validation_problems
from modelroute.api.selection import render_for_pod
from modelroute.api.signing import verify
from modelroute.sidecar.config.loader import ConfigError
from modelroute.sidecar.server.floor import aware as _aware
from modelroute.sidecar.server.state import SidecarState

if TYPE_CHECKING:
    from nacl.signing import VerifyKey

log = logging.getLogger(__name__)

BUNDLE_FILE = BUNDLE_KEY           # the ConfigMap's keys are the mounted files' names
SIGNATURE_FILE = SIGNATURE_KEY
POLL_SECONDS = 2.0


class BundleError(Exception):
    pass


def parse_labels(text: str) -> dict[str, str]:
    """The downward-API ``labels`` file: one ``key="value"`` per line (Go-quoted values)."""
    labels: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        value = raw
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw[1:-1]
        labels[key.strip()] = value
    return labels


def read_bundle(directory: Path, key: VerifyKey) -> RouteBundle:
    """The verified bundle in ``directory``; raises ``BundleError``."""
    try:
        body = (directory / BUNDLE_FILE).read_bytes()
        sig = (directory / SIGNATURE_FILE).read_text(encoding="ascii").strip()
    except FileNotFoundError as e:
        raise BundleError(f"{e.filename} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BundleError(f"cannot read the bundle in {directory}: {type(e).__name__}") from None
    if not sig.startswith("ed25519="):
        sig = "ed25519=" + sig
    if not verify(key, body, sig):
        raise BundleError(f"{directory / BUNDLE_FILE}: signature does not verify with the operator's public key")
    try:
        return RouteBundle.model_validate_json(body)
    except ValidationError as e:
        raise BundleError(f"{directory / BUNDLE_FILE}: not a valid RouteBundle: {e.error_count()} problems, "
                          f"first: {validation_problems(e)[0]}") from None


@dataclass
class BundleSource:
    directory: Path
    key: VerifyKey
    labels_file: Path | None = None
    namespace: str | None = None   # this pod's namespace; a bundle of another namespace is refused
    tried: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)
    """Set once ``watch`` has tried its first load (loaded or not): the sidecar's start is over."""

    def _sig(self) -> tuple[object, ...]:
        out: list[object] = []
        for p in (self.directory / BUNDLE_FILE, self.directory / SIGNATURE_FILE, self.labels_file):
            if p is None:
                continue
            try:
                st = os.stat(p)
                out.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                out.append(None)
        return tuple(out)

    def labels(self) -> dict[str, str]:
        if self.labels_file is None:
            return {}
        try:
            return parse_labels(self.labels_file.read_text(encoding="utf-8"))
        except OSError as e:
            raise BundleError(f"cannot read pod labels from {self.labels_file}: {type(e).__name__}") from None

    async def load_into(self, state: SidecarState) -> str | None:
        """Load the bundle if it verifies and is newer than any push; returns what happened."""
        bundle = read_bundle(self.directory, self.key)
        if self.namespace and bundle.namespace != self.namespace:
            raise BundleError(f"bundle is for namespace {bundle.namespace!r}, this pod is in {self.namespace!r}")
        issued = _aware(bundle.issued_at)
        rendering = render_for_pod(bundle.routes, self.labels(), bundle.model_registry)
        for c in rendering.conflicts:
            log.warning("bundle: route %r claimed by %s and %s; %s wins (older)", c.route, c.winner, c.loser, c.winner)
        async with state.lock:
            if state.last_push_at is not None and _aware(state.last_push_at) >= issued:
                return f"bundle issued at {issued.isoformat()} ignored: a newer push is serving"
            if state.last_bundle_at is not None and _aware(state.last_bundle_at) > issued:
                return f"bundle issued at {issued.isoformat()} ignored: an older bundle than the one loaded"
            applied = state.apply_locked(rendering.config, source="bundle", issued_at=issued)
            state.quotas_changed(state.quotas.set_terms(bundle.quotas))
        return f"bundle issued at {issued.isoformat()}: config {applied.version} ({'loaded' if applied.changed else 'unchanged'})"

    async def watch(self, state: SidecarState, interval: float = POLL_SECONDS) -> None:
        """Load now, then whenever the files change. Runs until cancelled."""
        last: tuple[object, ...] | None = None
        last_error: str | None = None
        while True:
            sig = self._sig()
            if sig != last:
                last = sig
                try:
                    log.info("%s", await self.load_into(state))
                    last_error = None
                except (BundleError, ConfigError) as e:
                    # Retry on the next poll (a Secret may be mounted later); log each new problem once.
                    last = None
                    msg = str(e) if isinstance(e, BundleError) else "\n  ".join(e.problems)
                    if msg != last_error:
                        log.warning("route bundle not loaded: %s", msg)
                    last_error = msg
            self.tried.set()
            await asyncio.sleep(interval)
