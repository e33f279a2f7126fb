"""The leak finder of the marker tests: a marker date counts where it starts a value, not
inside a random UID's digits (which once failed CI by chance: 2.25.33938 19170423 37...)."""

from tests.support.markers import MARKER_DATE, leaks

MARKER = "ZqLeakMarker4711"


def test_the_marker_date_as_a_value_is_a_leak_in_either_form() -> None:
    assert leaks(b"DA\x08\x00" + MARKER_DATE.encode(), MARKER)
    assert leaks(MARKER_DATE.encode() + b"101500", MARKER)
    assert leaks(b'"study_date": "1917-04-23"', MARKER)


def test_the_marker_is_found_in_any_case() -> None:
    assert leaks(b"name=zqleakmarker4711", MARKER)
    assert leaks(b"AE ZQLEAKMARKER4711", MARKER)


def test_the_date_digits_inside_a_uid_are_no_leak() -> None:
    assert leaks(b"UI,\x002.25.339381917042337637492919697606547691333", MARKER) == []
    assert leaks(b"2.25.19170423123", MARKER) == []
