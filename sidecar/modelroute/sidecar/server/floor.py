"""The replay floor on disk, so a restarted sidecar refuses pushes older than what it served before.

The floor is the newest ``issuedAt`` of a signed config this sidecar applied (push or bundle).
It lives in the sidecar's writable state directory: in a cluster the pod's emptyDir, which
survives container restarts; a new pod starts without it but has a new UID, and pushes are bound
to the UID (``auth.audience_problem``). Written atomically (temp file, then rename).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

FILE_NAME = "replay-floor.json"


def aware(ts: datetime) -> datetime:
    """``ts`` with UTC assumed when it has no zone (naive and aware times cannot be compared)."""
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


@dataclass(frozen=True)
class FloorFile:
    directory: Path

    @property
    def path(self) -> Path:
        return self.directory / FILE_NAME

    def load(self) -> datetime | None:
        """The persisted floor; None when there is none. An unreadable file is logged and ignored."""
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            return aware(datetime.fromisoformat(str(doc["issuedAt"])))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("replay floor %s unreadable (%s); starting without it", self.path, type(e).__name__)
            return None

    def save(self, issued_at: datetime, version: str) -> None:
        """Persist the floor; a write failure is logged (the in-memory floor still holds)."""
        tmp = self.path.with_suffix(".tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"issuedAt": aware(issued_at).isoformat(), "version": version}), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as e:
            log.warning("cannot persist the replay floor in %s: %s", self.directory, e)
