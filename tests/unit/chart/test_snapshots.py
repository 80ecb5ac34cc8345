"""Golden files of `helm template` for representative value sets.

Regenerate after an intended change with ``UPDATE_SNAPSHOTS=1 pytest tests/unit/chart``
and review the diff like code.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
CASES: dict[str, tuple[list[str], Path | None]] = {
    "default": ([], None),
    "custom": ([], HERE / "values" / "custom.yaml"),
    "webhook-disabled": (["webhook.enabled=false"], None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_chart_matches_snapshot(case: str, chart: Any) -> None:
    set_args, values = CASES[case]
    rendered = chart.normalize(chart.template(*set_args, values=values))
    golden = HERE / "snapshots" / f"{case}.yaml"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        golden.write_text(rendered)
    assert golden.exists(), f"no snapshot {golden}; run with UPDATE_SNAPSHOTS=1"
    expected = golden.read_text()
    if rendered != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), rendered.splitlines(True), str(golden), "rendered"))
        pytest.fail(f"helm template differs from {golden.name} (UPDATE_SNAPSHOTS=1 to accept):\n{diff[:6000]}")
