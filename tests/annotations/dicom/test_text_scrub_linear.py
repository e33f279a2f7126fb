"""The scrubber's e-mail step finds exactly what the regex it replaced found
(text_scrub.EMAIL_PATTERN), without the regex's quadratic search: it looks at each "@" once,
so a long text with no "@" is never searched for an address at all. Timings are in
bench/text_scrub_speed.py, not here."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotations.dicom import text_scrub
from annotations.dicom.text_scrub import EMAIL_PATTERN, _replace_emails, scrub_clinical_text

REGEX = re.compile(EMAIL_PATTERN)
# The characters that decide where an address starts and ends, and a few that do not.
ALPHABET = "ab1_.+-@ é\n,xZ"


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=40))
def test_linear_email_step_finds_the_same_addresses_as_the_regex(text):
    assert _replace_emails(text) == REGEX.sub("[EMAIL]", text)


@pytest.mark.parametrize(
    "text",
    [
        "write to j.smith@example.org today",
        "a@b.c.+x@y.z",  # a second address right after the first one's domain
        "a@b@c.d",
        "@x.y a@ b@c .d@e.f",
        "x@y",  # no dot in the domain: not an address
        "first.last+tag@sub.example.co.uk, other@mail.org.",
        "ünïcödé@exämple.org",
        "a" * 5000 + "@" + "b" * 5000 + ".c",
    ],
)
def test_linear_email_step_on_hand_picked_cases(text):
    assert _replace_emails(text) == REGEX.sub("[EMAIL]", text)


def test_a_long_text_without_at_signs_is_not_searched_for_addresses(monkeypatch):
    """The structural fix: the domain pattern runs once per "@" (the old regex tried every
    position of the text); a 60,000-character text with none runs it never."""
    calls = []
    domain = text_scrub._EMAIL_DOMAIN

    class Counting:
        def match(self, text: str, pos: int) -> re.Match[str] | None:
            calls.append(pos)
            return domain.match(text, pos)

    monkeypatch.setattr(text_scrub, "_EMAIL_DOMAIN", Counting())
    scrubbed = scrub_clinical_text("a" * 60_000, secret="k", patient_key="p")
    assert scrubbed == "a" * 60_000 and calls == []
    text = "x" * 30_000 + "@example.org " + "y" * 30_000 + " a@b.c"
    scrubbed = scrub_clinical_text(text, secret="k", patient_key="p")
    assert scrubbed == "[EMAIL] " + "y" * 30_000 + " [EMAIL]"
    assert len(calls) == 2
