"""``memory``: the start-up heap frozen when modules were loaded (and only then), the collector's threshold, the allocator."""

from __future__ import annotations

import gc
import sys
import types

from modelroute.sidecar.server import memory


def test_settle_freezes_once_per_batch_of_new_modules() -> None:
    try:
        memory.settle()
        before = gc.get_freeze_count()
        assert not memory.settle()  # nothing new since: no-op
        assert gc.get_freeze_count() == before
        sys.modules["modelroute_test_fake_sdk"] = types.ModuleType("modelroute_test_fake_sdk")
        kept: list[list[int]] = [[] for _ in range(10)]  # lists are tracked by the collector
        assert memory.settle()  # a config brought a module: what is alive now is frozen
        assert gc.get_freeze_count() >= before + len(kept)
    finally:
        sys.modules.pop("modelroute_test_fake_sdk", None)
        gc.unfreeze()


def test_tune_allocator_takes_on_glibc_linux() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":  # musl and others: nothing to tune, and no error
        assert memory.tune_allocator() is False
        return
    assert memory.tune_allocator() is True


def test_tune_collector_raises_generation_0_only() -> None:
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 7, 9)
        memory.tune_collector()
        assert gc.get_threshold() == (memory.GEN0_THRESHOLD, 7, 9) and memory.GEN0_THRESHOLD > 700
    finally:
        gc.set_threshold(*saved)
