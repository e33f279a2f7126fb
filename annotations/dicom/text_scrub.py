"""Scrubbing direct identifiers from clinical free text (indication, history) before it is stored.

Rule-based, in this order, each rule on what the previous ones left:

1. e-mail addresses -> ``[EMAIL]``; URLs (``http://``, ``https://``, ``www.``) -> ``[URL]``;
2. labelled phone and fax numbers (Tel, Phone, Mobile, Fax, Pager, Bleep) -> ``[PHONE]``;
3. labelled identifiers (MRN, medical record / hospital / NHS number, patient ID, accession
   number, study ID, SSN, ID) -> ``[ID]``, the label kept;
4. dates, shifted back by the same keyed per-patient offset as the DICOM dates
   (``deidentify.date_shift_days``), written back in their own format: ISO ``2024-03-12`` and
   ``2024/03/12``, numeric ``12/03/2024``, ``12.03.2024``, ``12-03-2024`` (day first when the
   first number is over 12, month first when the second is, otherwise as ``day_first`` says),
   ``12 March 2024``, ``12th Mar 2024``, ``March 12, 2024``; ``March 2024`` is shifted as the
   1st of that month. A date with a two-digit year, or one that is not a real date -> ``[DATE]``;
5. unlabelled phone numbers (``(617) 555-0100``, ``617-555-0100``, ``+44 20 7946 0958``);
6. addresses: ``Address:`` labels, street addresses (``12 Elm Street``), US state + ZIP
   (``MA 02115``) and UK postcodes (``SW1A 1AA``) -> ``[ADDRESS]``;
7. ages over 89 (``92-year-old``, ``92 yo``, ``92 y/o``, ``aged 92``, ``age: 92``) -> ``90+``;
8. person names after a title (Mr, Mrs, Ms, Miss, Mx, Dr, Prof) or a label (Patient:, Name:,
   Pt:, Referring physician:, Radiologist:, Signed by, Dictated by, Seen by) -> ``[NAME]``,
   the title or label kept;
9. what is left that looks like a record number: runs of 6 or more digits, ``123-45-6789``,
   and 1-4 letters followed by 5 or more digits (``AB123456``) -> ``[ID]``.

What it cannot do: names in running text without a title or label ("seen with her husband
John"), names written in lower case, nicknames and relatives' names, initials on their own,
identifying circumstances (a rare occupation, an event in the news), places other than postal
addresses (towns, hospitals, wards), years on their own (kept, and not shifted, so a year next to
a shifted date may disagree with it by one), and dates in forms it does not know (``12th of
March``, ``03/12``). It over-scrubs rather than under-scrubs: a capitalised word after "Dr" is
taken as a name. Text scrubbed here is safer, not anonymous; it is shown only inside the
project that imported it.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from annotations.dicom.deidentify import date_shift_days

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTH_NUMBER = {name.lower(): i for i, name in enumerate(MONTHS, start=1)}
_MONTH_NUMBER.update({name[:3].lower(): i for i, name in enumerate(MONTHS, start=1)})
_MONTH_NUMBER["sept"] = 9
_MONTH_ALTERNATIVES = "|".join([*MONTHS, "Sept", *(m[:3] for m in MONTHS if m != "May")])

# An e-mail address is [\w.+-]+@[\w-]+(?:\.[\w-]+)+ (EMAIL_PATTERN). Searched with that one
# regex, every position of a long run of word characters with no "@" after it started a scan to
# the run's end: quadratic (a 60,000-character text took 9 s). _replace_emails finds the same
# matches from each "@" instead, looking left and right of it once: linear.
EMAIL_PATTERN = r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+"
_EMAIL_LOCAL_REVERSED = re.compile(r"[\w.+\-]*")
_EMAIL_DOMAIN = re.compile(r"[\w\-]+(?:\.[\w\-]+)+")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')]+", re.IGNORECASE)
_LABELLED_PHONE = re.compile(
    r"(?P<label>\b(?:tel|telephone|phone|ph|mobile|cell|fax|pager|bleep)\b\.?\s*"
    r"(?:no\.?|number|#)?\s*[:#]?\s*)(?P<value>\+?\(?\d[\d\s().\-/]{4,}\d)",
    re.IGNORECASE,
)
_LABELLED_ID = re.compile(
    r"(?P<label>\b(?:MRN|medical\s+record(?:\s+(?:number|no\.?|#))?|record\s+(?:number|no\.?|#)"
    r"|hospital\s+(?:number|no\.?)|NHS(?:\s+(?:number|no\.?))?|patient\s+ID"
    r"|accession(?:\s+(?:number|no\.?|#))?|acc\.?\s*no\.?|study\s+ID|SSN"
    r"|social\s+security(?:\s+number)?|ID)\s*[:#]?\s*)"
    r"(?P<value>[A-Za-z0-9][A-Za-z0-9\-/]*\d[A-Za-z0-9\-/]*)",
    re.IGNORECASE,
)


def _month(suffix: str) -> str:
    return rf"(?P<month{suffix}>" + _MONTH_ALTERNATIVES + r")\.?"


# One alternation, so that a date rewritten by one form is never matched again by another.
_DATE = re.compile(
    r"\b(?:"
    r"(?P<iso_y>\d{4})(?P<iso_sep>[-/])(?P<iso_m>\d{1,2})(?P=iso_sep)(?P<iso_d>\d{1,2})"
    r"|(?P<num_a>\d{1,2})(?P<num_sep>[/.\-])(?P<num_b>\d{1,2})(?P=num_sep)(?P<num_y>\d{4})"
    r"|(?P<short>\d{1,2}(?P<short_sep>[/.\-])\d{1,2}(?P=short_sep)\d{2})"
    r"|(?P<dmy_d>\d{1,2})(?:st|nd|rd|th)?\s+" + _month("_dmy") + r",?\s+(?P<dmy_y>\d{4})"
    r"|" + _month("_mdy") + r"\s+(?P<mdy_d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<mdy_y>\d{4})"
    r"|" + _month("_my") + r"\s+(?P<my_y>\d{4})"
    r")\b",
    re.IGNORECASE,
)
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.\-]?)?(?:\(\d{2,4}\)\s?|\d{3}[\s.\-])\d{3}[\s.\-]\d{4}(?!\w)"
    r"|\+\d{1,3}(?:[\s.\-]\d{2,4}){2,5}(?!\w)"
)
_ADDRESS_LABEL = re.compile(r"(?P<label>\b(?:home\s+)?address\s*[:\-]\s*)[^\n;]+", re.IGNORECASE)
_STREET = re.compile(
    r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s+){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln"
    r"|Drive|Court|Ct|Way|Place|Pl|Terrace|Close|Crescent|Square|Sq)\b\.?"
)
_US_ZIP = re.compile(r"\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b")
_UK_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s+\d[A-Z]{2}\b")
_AGE_SUFFIX = re.compile(
    r"\b(?P<age>\d{2,3})(?P<rest>\s*-?\s*(?:years?|yrs?)(?:[\s\-]+old)?\b|\s*y/?o\b)",
    re.IGNORECASE,
)
_AGE_PREFIX = re.compile(r"(?P<label>\b(?:aged?|age\s*:)\s*)(?P<age>\d{2,3})\b", re.IGNORECASE)
_NAME_WORD = r"[A-Z][A-Za-z'\-]+"
_TITLE_NAME = re.compile(
    r"(?P<label>\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\b\.?\s+)"
    r"(?P<value>(?:[A-Z]\.\s*)*" + _NAME_WORD + r"(?:\s+" + _NAME_WORD + r"){0,2})"
)
_LABELLED_NAME = re.compile(
    r"(?P<label>\b(?i:patient(?:'s)?\s+name|patient|name|pt|referring\s+(?:physician|doctor)"
    r"|physician|doctor|radiologist|consultant|attending)\s*[:\-]\s*"
    r"|\b(?i:signed|dictated|seen|reported|referred)\s+by\s+)"
    r"(?!(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\b)"  # a title: the title rule has done it
    r"(?P<value>" + _NAME_WORD + r"(?:(?:[ ,^]+|(?<=\w)\^)(?:[A-Z]\.|" + _NAME_WORD + r")){0,3})"
)
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_DIGIT_RUN = re.compile(r"(?<![\w.])\d{6,}(?![\w.])")
_LETTER_ID = re.compile(r"\b[A-Z]{1,4}-?\d{5,}[A-Z]?\b")


def _replace_emails(text: str, replacement: str = "[EMAIL]") -> str:
    """``re.sub(EMAIL_PATTERN, replacement, text)``, with the same matches, in linear time.

    The regex's leftmost match starts where the run of local-part characters before some "@"
    starts (never before the end of the previous match) and takes the longest domain after it;
    each "@" looks left through the run before it (the runs between two "@" do not overlap,
    "@" being no local-part character) and right through one domain."""
    if "@" not in text:
        return text
    reversed_text = text[::-1]
    size = len(text)
    pieces: list[str] = []
    done = 0  # the end of the previous match: no match starts before it
    at = text.find("@")
    while at != -1:
        # The run of local-part characters ending at "@" (it may match nothing).
        run = _EMAIL_LOCAL_REVERSED.match(reversed_text, size - at)
        start = max(at - (run.end() - run.start()), done) if run else at
        domain = _EMAIL_DOMAIN.match(text, at + 1) if start < at else None
        if domain is None:
            at = text.find("@", at + 1)
            continue
        pieces += [text[done:start], replacement]
        done = domain.end()
        at = text.find("@", done)
    pieces.append(text[done:])
    return "".join(pieces)


def _keep_label(token: str):  # type: ignore[no-untyped-def]
    return lambda m: m.group("label") + token


def _month_name(number: int, like: str) -> str:
    """The month ``number`` written as ``like`` was: full or abbreviated, and its case."""
    like = like.rstrip(".")
    name = MONTHS[number - 1]
    if like.lower() not in (m.lower() for m in MONTHS):
        name = name[:3]
    if like.isupper() and len(like) > 1:
        return name.upper()
    return name if like[:1].isupper() else name.lower()


class _DateShifter:
    """Rewrites one matched date, moved back by the patient's offset, in its own format."""

    def __init__(self, days: int, *, day_first: bool) -> None:
        self.delta = timedelta(days=days)
        self.day_first = day_first

    def _shift(self, year: int, month: int, day: int) -> date | None:
        try:
            return date(year, month, day) - self.delta
        except (ValueError, OverflowError):
            return None

    def __call__(self, m: re.Match[str]) -> str:
        if m["iso_y"]:
            shifted = self._shift(int(m["iso_y"]), int(m["iso_m"]), int(m["iso_d"]))
            sep = m["iso_sep"]
            return f"{shifted:%Y}{sep}{shifted:%m}{sep}{shifted:%d}" if shifted else "[DATE]"
        if m["num_y"]:
            return self._numeric(int(m["num_a"]), int(m["num_b"]), int(m["num_y"]), m["num_sep"])
        if m["short"]:
            return "[DATE]"  # a two-digit year cannot be shifted with confidence
        for form, day_group in (("dmy", "dmy_d"), ("mdy", "mdy_d"), ("my", None)):
            if m[f"month_{form}"]:
                like = m[f"month_{form}"]
                number = _MONTH_NUMBER[like.lower()]
                day = int(m[day_group]) if day_group else 1
                shifted = self._shift(int(m[f"{form}_y"]), number, day)
                if shifted is None:
                    return "[DATE]"
                month = _month_name(shifted.month, like)
                if form == "dmy":
                    return f"{shifted.day} {month} {shifted.year}"
                if form == "mdy":
                    return f"{month} {shifted.day}, {shifted.year}"
                return f"{month} {shifted.year}"
        return "[DATE]"  # pragma: no cover - every alternative is handled above

    def _numeric(self, a: int, b: int, year: int, sep: str) -> str:
        day_first = a > 12 or (b <= 12 and self.day_first)
        day, month = (a, b) if day_first else (b, a)
        shifted = self._shift(year, month, day)
        if shifted is None:
            return "[DATE]"
        first, second = (shifted.day, shifted.month) if day_first else (shifted.month, shifted.day)
        return f"{first:02d}{sep}{second:02d}{sep}{shifted.year}"


def _cap_age(m: re.Match[str]) -> str:
    if int(m["age"]) <= 89:
        return m.group(0)
    label = m.groupdict().get("label") or ""
    return label + "90+" + (m.groupdict().get("rest") or "")


def scrub_clinical_text(
    text: str, *, secret: str, patient_key: str, day_first: bool = False
) -> str:
    """``text`` with direct identifiers replaced by tokens (``[NAME]``, ``[ID]``, ``[PHONE]``,
    ``[EMAIL]``, ``[URL]``, ``[ADDRESS]``, ``[DATE]``) and dates shifted by the patient's keyed
    offset. ``secret`` is the project's key and ``patient_key`` the patient's pseudonym (what
    ``deidentify`` returns, ``Patient.pseudonym``), so text and image dates move together.
    ``day_first`` decides dates like 03/04/2024 where either number could be the month."""
    if not text:
        return text
    shifter = _DateShifter(date_shift_days(secret, patient_key), day_first=day_first)
    text = _replace_emails(text)
    text = _URL.sub("[URL]", text)
    text = _LABELLED_PHONE.sub(_keep_label("[PHONE]"), text)
    text = _LABELLED_ID.sub(_keep_label("[ID]"), text)
    text = _DATE.sub(shifter, text)
    text = _PHONE.sub("[PHONE]", text)
    text = _ADDRESS_LABEL.sub(_keep_label("[ADDRESS]"), text)
    text = _STREET.sub("[ADDRESS]", text)
    text = _US_ZIP.sub("[ADDRESS]", text)
    text = _UK_POSTCODE.sub("[ADDRESS]", text)
    text = _AGE_SUFFIX.sub(_cap_age, text)
    text = _AGE_PREFIX.sub(_cap_age, text)
    text = _TITLE_NAME.sub(_keep_label("[NAME]"), text)
    text = _LABELLED_NAME.sub(_keep_label("[NAME]"), text)
    text = _SSN.sub("[ID]", text)
    text = _DIGIT_RUN.sub("[ID]", text)
    return _LETTER_ID.sub("[ID]", text)
