"""The clock seam of the model lifecycle checks: ``MODELROUTE_LIFECYCLE_DATE`` pins the day, else the real UTC date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from modelroute.api.lifecycledate import (
    ENV_LIFECYCLE_DATE,
    LifecycleDateError,
    lifecycle_today,
    pin_problem,
    pinned,
)
from modelroute.testing import lifecyclepin


def test_unset_or_empty_is_the_real_utc_date() -> None:
    late_in_tokyo = datetime(2027, 1, 14, 8, 0, tzinfo=timezone(timedelta(hours=9)))  # still 2027-01-13 in UTC
    for environ in ({}, {ENV_LIFECYCLE_DATE: ""}, {ENV_LIFECYCLE_DATE: "  "}):
        assert pinned(environ) is None
        assert lifecycle_today(environ, now=lambda: late_in_tokyo) == date(2027, 1, 13)
    # The default clock is the machine's (read around the call: a midnight in between gives either day).
    before = datetime.now(UTC).date()
    got = lifecycle_today({})
    assert got in {before, datetime.now(UTC).date()}


def test_a_pin_wins_over_the_clock() -> None:
    environ = {ENV_LIFECYCLE_DATE: "2027-02-01"}
    assert lifecycle_today(environ, now=lambda: datetime(2026, 12, 6, tzinfo=UTC)) == date(2027, 2, 1)
    assert pin_problem(environ) is None


@pytest.mark.parametrize("raw", ["tomorrow", "2027-13-01", "2027-02-30", "20270201", "2027-2-1", "1800000000",
                                 "2027-02-01T00:00:00", "2027-W05-1"])
def test_a_bad_pin_is_one_line_naming_the_variable(raw: str) -> None:
    environ = {ENV_LIFECYCLE_DATE: raw}
    with pytest.raises(LifecycleDateError) as ei:
        lifecycle_today(environ)
    assert str(ei.value) == pin_problem(environ)
    assert str(ei.value).startswith(f"{ENV_LIFECYCLE_DATE}={raw!r} is not a date: give YYYY-MM-DD")


def test_the_suite_pins_one_day_unless_the_run_chose_another() -> None:
    environ: dict[str, str] = {}
    assert lifecyclepin.pin(environ) == lifecyclepin.SUITE_DATE == environ[ENV_LIFECYCLE_DATE]
    assert pinned(environ) == date(2026, 12, 6)
    chosen = {ENV_LIFECYCLE_DATE: "2027-02-01"}
    assert lifecyclepin.pin(chosen) == "2027-02-01" and chosen == {ENV_LIFECYCLE_DATE: "2027-02-01"}
    assert lifecyclepin.pin({ENV_LIFECYCLE_DATE: ""}) == lifecyclepin.SUITE_DATE
