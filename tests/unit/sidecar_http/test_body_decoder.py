"""``parse_json``'s shared decoder: the same answers as a fresh ``json.loads`` with callbacks per body."""

from __future__ import annotations

import pytest

from modelroute.sidecar.server.body import BodyError, parse_json


def test_a_bom_is_named_as_json_loads_names_it() -> None:
    with pytest.raises(BodyError, match=r"Unexpected UTF-8 BOM .* at line 1 column 1"):
        parse_json(b'\xef\xbb\xbf{"model": "r"}')


@pytest.mark.parametrize(("raw", "where"), [(b'{"a": [1, NaN]}', "a[1]"), (b'{"b": {"c": 1e999}}', "b.c"),
                                            (b'{"d": -Infinity}', "d")])
def test_non_finite_numbers_are_found_after_clean_bodies_too(raw: bytes, where: str) -> None:
    assert parse_json(b'{"x": 1.5, "y": [2, 3]}') == {"x": 1.5, "y": [2, 3]}
    with pytest.raises(BodyError) as info:
        parse_json(raw)
    assert info.value.param == where and "not a finite number" in info.value.message
    assert parse_json(b'{"x": 0.25}') == {"x": 0.25}  # the next body is not blamed
