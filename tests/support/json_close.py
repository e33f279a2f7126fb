"""Compare a rebuilt JSON file with the committed one, number by number.

The rebuilds round their numbers to 4 decimals, and the box priors' copula ranks tied boxes:
before the ranks were made stable, numpy's default sort ordered ties differently on different
CPUs (its SIMD sorts), which moved a few samples by a few units of the last decimal. So numbers
may differ by at most ``TOLERANCE`` (0.002 of a 0..1 image coordinate); keys, lengths, strings
and everything else must be equal."""

from __future__ import annotations

import math
from typing import Any

TOLERANCE = 2e-3


def assert_json_close(rebuilt: Any, committed: Any, path: str = "$") -> None:
    if isinstance(committed, dict):
        assert isinstance(rebuilt, dict), f"{path}: {type(rebuilt).__name__}, not an object"
        assert rebuilt.keys() == committed.keys(), f"{path}: keys differ"
        for key in committed:
            assert_json_close(rebuilt[key], committed[key], f"{path}.{key}")
    elif isinstance(committed, list):
        assert isinstance(rebuilt, list), f"{path}: {type(rebuilt).__name__}, not a list"
        assert len(rebuilt) == len(committed), f"{path}: {len(rebuilt)} != {len(committed)} items"
        for index, (a, b) in enumerate(zip(rebuilt, committed, strict=True)):
            assert_json_close(a, b, f"{path}[{index}]")
    elif isinstance(committed, float) or isinstance(rebuilt, float):
        assert isinstance(rebuilt, int | float) and isinstance(committed, int | float), path
        assert math.isclose(rebuilt, committed, rel_tol=TOLERANCE, abs_tol=TOLERANCE), (
            f"{path}: {rebuilt} != {committed}"
        )
    else:
        assert rebuilt == committed, f"{path}: {rebuilt!r} != {committed!r}"
