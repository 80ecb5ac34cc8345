"""Which day the model lifecycle checks take as today: the real UTC date, or the one ``MODELROUTE_LIFECYCLE_DATE`` pins.

A model's shutdown date (``ProviderSpec.retirements``) turns a config that was accepted yesterday into one refused
today, with no change to the config or the code. That is right for a running system and wrong for a test suite or a
benchmark: a commit that passes today must pass next month. ``MODELROUTE_LIFECYCLE_DATE=YYYY-MM-DD`` (in the spirit
of ``SOURCE_DATE_EPOCH``) pins the day the checks use; the test suite sets it once for its session and every process
it starts inherits it. Unset or empty: today's UTC date.

The checks themselves (``registry.lifecycle_problem``/``lifecycle_warning``/``lifecycle_notes``) are pure and take
the date; only the edges (config loading, ``PUT /config``, the operator's reconcile round) call ``lifecycle_today``.
The sidecar and operator CLIs call ``pin_problem`` at start, so a bad pin stops them with a line naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime

ENV_LIFECYCLE_DATE = "MODELROUTE_LIFECYCLE_DATE"
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class LifecycleDateError(ValueError):
    """``MODELROUTE_LIFECYCLE_DATE`` holds something other than a ``YYYY-MM-DD`` date."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def pinned(environ: Mapping[str, str]) -> date | None:
    """The pinned day, or None when the variable is unset or empty; raises ``LifecycleDateError`` on a bad value."""
    raw = environ.get(ENV_LIFECYCLE_DATE, "").strip()
    if not raw:
        return None
    try:
        if not _DAY.fullmatch(raw):  # fromisoformat also takes 20270201 and 2027-W05-1: only the plain form here
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise LifecycleDateError(f"{ENV_LIFECYCLE_DATE}={raw[:40]!r} is not a date: give YYYY-MM-DD (the day the model "
                                 "retirement checks take as today), or unset it to use today's UTC date") from None


def pin_problem(environ: Mapping[str, str]) -> str | None:
    """The start-up check: a line naming the variable when its value is not a date, else None."""
    try:
        pinned(environ)
    except LifecycleDateError as e:
        return str(e)
    return None


def lifecycle_today(environ: Mapping[str, str] | None = None, now: Callable[[], datetime] = _utc_now) -> date:
    """The day the lifecycle checks use: the pinned one, else ``now()``'s UTC date (``environ``: ``os.environ``)."""
    day = pinned(os.environ if environ is None else environ)
    return day if day is not None else now().astimezone(UTC).date()
