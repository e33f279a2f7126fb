"""Summaries of per-item measures where some items have none."""

from __future__ import annotations

import math
from collections.abc import Iterable


def mean_of_known(values: Iterable[float | None]) -> float | None:
    """The mean of the values that are known (neither None nor NaN); None when none is."""
    known = [v for v in values if v is not None and not math.isnan(v)]
    return sum(known) / len(known) if known else None
