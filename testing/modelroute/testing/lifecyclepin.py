"""The day the test suite, the benches and ``modelroute demo`` take as today for model retirements.

Model shutdown dates (``ProviderSpec.retirements``) would otherwise turn the suite red on a set day with no
change to the code: gpt-4o-mini, named in ~1,100 tests, the demo's canary and the benches, shuts down on
2027-01-14. ``pin`` sets ``MODELROUTE_LIFECYCLE_DATE`` (``modelroute.api.lifecycledate``) in this process's
environment unless it is already set, so every process started from here (operator, sidecars) inherits it.
Tests of the retirement checks themselves pass their dates explicitly.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

from modelroute.api.lifecycledate import ENV_LIFECYCLE_DATE

SUITE_DATE = "2026-12-06"
"""The day the retirement table was copied from the pinned SDKs (gpt-5-mini's 2026-12-11 shutdown still ahead)."""


def pin(environ: MutableMapping[str, str] = os.environ) -> str:
    """Set the variable to ``SUITE_DATE`` unless it holds a value already (a run may pin another day); the day used."""
    if not environ.get(ENV_LIFECYCLE_DATE):
        environ[ENV_LIFECYCLE_DATE] = SUITE_DATE
    return environ[ENV_LIFECYCLE_DATE]
