"""Eligibility of a study for a project (issue 17, section 4), read from the ORIGINAL DICOM
header before de-identification: the patient's age at the study date (from Patient's Birth
Date and Study Date, else Patient's Age) and sex, checked against the project's inclusion
rules. Only the age band leaves this module; the birth date and the exact age are never kept.

Rules (``Project.eligibility_rules``; empty: every study is eligible and nothing is read)::

    {"min_age_years": 18, "max_age_years": null, "sexes": ["F", "M"], "if_unknown": "hold"}

``if_unknown``: what happens to a study whose age (or sex, when ``sexes`` is given) the header
does not tell: ``hold`` (held out for a lead's review, the default) or ``include``.

Pure functions on pydicom datasets: no models, no Django."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydicom.dataset import Dataset

RULE_KEYS = frozenset({"min_age_years", "max_age_years", "sexes", "if_unknown"})
SEXES = frozenset({"F", "M", "O"})
# Age bands kept in place of the age: 18 is the usual boundary of adult studies.
BANDS = ((0, 17), (18, 29), (30, 39), (40, 49), (50, 59), (60, 69), (70, 79), (80, 89))
_AGE = re.compile(r"(\d{3})([DWMY])")


class RulesInvalid(ValueError):
    """Eligibility rules that cannot be applied; the message names the key at fault."""


@dataclass(frozen=True)
class Verdict:
    """``eligible``: True, False (fails a rule) or None (the header does not tell);
    ``held_out_reason``: why the study is held for review ("" when it is not);
    ``age_band``: e.g. "18-29", "90+", "" when unknown."""

    eligible: bool | None
    held_out_reason: str
    age_band: str


def validate_rules(rules: Any) -> dict[str, Any]:
    """The rules checked and normalised; raise RulesInvalid naming the fault."""
    if rules in (None, {}):
        return {}
    if not isinstance(rules, dict):
        raise RulesInvalid("eligibility_rules must be an object.")
    unknown = set(rules) - RULE_KEYS
    if unknown:
        raise RulesInvalid(f"eligibility_rules: unknown keys {sorted(unknown)}.")
    clean: dict[str, Any] = {}
    for key in ("min_age_years", "max_age_years"):
        value = rules.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 150:
            raise RulesInvalid(f"eligibility_rules.{key} must be a whole number of years 0-150.")
        clean[key] = value
    if clean.get("min_age_years", 0) > clean.get("max_age_years", 150):
        raise RulesInvalid("eligibility_rules: min_age_years is above max_age_years.")
    sexes = rules.get("sexes")
    if sexes is not None:
        if not isinstance(sexes, list) or not sexes or not set(sexes) <= SEXES:
            raise RulesInvalid(f"eligibility_rules.sexes must be a list of {sorted(SEXES)}.")
        clean["sexes"] = sorted(set(sexes))
    if_unknown = rules.get("if_unknown", "hold")
    if if_unknown not in ("hold", "include"):
        raise RulesInvalid("eligibility_rules.if_unknown must be 'hold' or 'include'.")
    if clean:
        clean["if_unknown"] = if_unknown
    return clean


def _date(value: object) -> date | None:
    digits = str(value or "").strip().replace(".", "")[:8]
    if not re.fullmatch(r"\d{8}", digits):
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def age_at_study(dataset: Dataset) -> int | None:
    """Whole years of age at the study date: from Patient's Birth Date and Study Date (or
    Series, Acquisition or Content Date), else from Patient's Age (AS); None when unknown."""
    born = _date(dataset.get("PatientBirthDate"))
    studied = next(
        (
            day
            for day in (
                _date(dataset.get(keyword))
                for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")
            )
            if day is not None
        ),
        None,
    )
    if born is not None and studied is not None and born <= studied:
        years = studied.year - born.year
        if (studied.month, studied.day) < (born.month, born.day):
            years -= 1
        return years
    match = _AGE.fullmatch(str(dataset.get("PatientAge", "") or "").strip())
    if match is None:
        return None
    number, unit = int(match.group(1)), match.group(2)
    return {"Y": number, "M": number // 12, "W": number // 52, "D": number // 365}[unit]


def age_band(years: int | None) -> str:
    """The band an age falls in ("18-29", "90+"), "" when unknown."""
    if years is None:
        return ""
    for low, high in BANDS:
        if low <= years <= high:
            return f"{low}-{high}"
    return "90+"


def evaluate(rules: dict[str, Any], dataset: Dataset) -> Verdict:
    """Check the ORIGINAL ``dataset`` (call before de-identification) against ``rules``."""
    years = age_at_study(dataset)
    band = age_band(years)
    if not rules:
        return Verdict(eligible=True, held_out_reason="", age_band=band)
    failures, unknown = [], []
    low, high = rules.get("min_age_years"), rules.get("max_age_years")
    if low is not None or high is not None:
        if years is None:
            unknown.append("the patient's age at the study date is unknown (no birth date or age)")
        elif low is not None and years < low:
            # The reason names the band, never the age itself.
            failures.append(
                f"the age at the study date is below the minimum of {low} years (band {band})"
            )
        elif high is not None and years > high:
            failures.append(
                f"the age at the study date is above the maximum of {high} years (band {band})"
            )
    sexes = rules.get("sexes")
    if sexes:
        sex = str(dataset.get("PatientSex", "") or "").strip().upper()
        if sex not in SEXES:
            unknown.append("the patient's sex is unknown")
        elif sex not in sexes:
            failures.append(f"sex {sex} is not among the included {', '.join(sexes)}")
    if failures:
        return Verdict(False, "Ineligible: " + "; ".join(failures) + ".", band)
    if unknown and rules.get("if_unknown", "hold") == "hold":
        return Verdict(None, "Eligibility unknown: " + "; ".join(unknown) + ".", band)
    return Verdict(True if not unknown else None, "", band)
