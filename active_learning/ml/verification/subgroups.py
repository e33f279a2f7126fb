"""Coarse patient and acquisition attributes a verification report splits its figures by; the
values only, never anything identifying (de-identification keeps sex, a capped age, view
position and the vendor's canonical name: DICOM PS3.15 option 113108 and the allow-list in
:mod:`annotations.dicom.deidentify`)."""

from __future__ import annotations

import re

#: The attributes of a report's subgroups, in the order a report lists them.
ATTRIBUTES = ("sex", "age_band", "view_position", "manufacturer", "site")
#: Adult age bands of the report (a case under 18 is counted as "under 18").
AGE_BANDS = ((18, 39, "18-39"), (40, 59, "40-59"), (60, 79, "60-79"), (80, None, "80+"))
UNDER_18 = "under 18"
_AGE = re.compile(r"(\d{3})([DWMY])")


def age_band(patient_age: str | None) -> str | None:
    """The report's age band of a DICOM Patient's Age (``"045Y"``, ``"006M"``); ``None`` when it
    is missing or not an age string. Ages over 89 are stored as ``"090Y"``: they fall in 80+."""
    match = _AGE.fullmatch(str(patient_age or "").strip())
    if not match:
        return None
    value, unit = int(match.group(1)), match.group(2)
    if unit != "Y" or value < 18:
        return UNDER_18
    for low, high, name in AGE_BANDS:
        if value >= low and (high is None or value <= high):
            return name
    return None  # pragma: no cover - the bands cover every age from 18


def sex(patient_sex: str | None) -> str | None:
    """``F``, ``M`` or ``O``; ``None`` when the header does not tell."""
    value = str(patient_sex or "").strip().upper()
    return value if value in {"F", "M", "O"} else None


def stratum(sex_value: str | None, band: str | None, findings: list[str] | None) -> str:
    """The draw's stratum of a case: ``sex|age band|findings`` (``?`` unknown; findings where a
    label tells them, sorted, ``-`` for none present)."""
    finding_part = "?" if findings is None else ("+".join(sorted(findings)) or "-")
    return f"{sex_value or '?'}|{band or '?'}|{finding_part}"
