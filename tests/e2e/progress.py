"""Build progress shown live in e2e fixtures (builds take minutes on a fresh machine)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def uncaptured(config: pytest.Config) -> Iterator[None]:
    """Suspend pytest's output capture (global and fixture) for the block."""
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is None:
        yield
        return
    with capman.global_and_fixture_disabled():
        yield
