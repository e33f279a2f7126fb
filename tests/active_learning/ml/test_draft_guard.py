"""The report-draft guard: real reports pass, the shapes untrained report models write do not.
Pure Python: no Django, no database."""

from __future__ import annotations

import numpy as np
import pytest

from active_learning.ml import iu_reports
from active_learning.ml.draft_guard import draft_text, is_degenerate
from active_learning.ml.synthetic_clinical import report_for
from tests.support.tools import require


@pytest.fixture(scope="module")
def real_reports() -> list[iu_reports.IUReport]:
    try:
        path = iu_reports.default_archive_path()
    except FileNotFoundError:
        path = None
    if path is None or not path.is_file():
        require(["torchxrayvision 1.5.7 (requirements-extra.txt)"], "the IU X-ray reports")
    return list(iu_reports.iter_reports(path))


def test_every_real_iu_report_passes_the_guard(real_reports):
    refused = {
        r.report_id: reason
        for r in real_reports
        if (
            reason := is_degenerate(
                draft_text({"findings": r.findings, "impression": r.impression})
            )
        )
    }
    assert len(real_reports) == 3927
    assert refused == {}


def test_the_shortest_real_reports_pass(real_reports):
    shortest = sorted(real_reports, key=lambda r: len((r.findings + " " + r.impression).split()))
    for report in shortest[:25]:
        assert is_degenerate(f"{report.findings} {report.impression}") is None, report


def test_synthetic_ground_truth_reports_pass():
    rng = np.random.default_rng(0)
    names = ("cardiomegaly", "nodule", "mass", "consolidation", "effusion", "pneumothorax")
    for _ in range(200):
        findings = {name: bool(rng.random() < 0.3) for name in names}
        lesions = {name: tuple(rng.uniform(0.1, 0.4, 4)) for name in names}
        report = report_for(findings, lesions, mm_per_unit=350.0)
        assert is_degenerate(draft_text(report)) is None, report


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   \n ", "empty"),
        # What versions 1 and 2 wrote in Findings and Impression (issue 14).
        (".........", "repeated punctuation"),
        ("Heart size normal.......... No effusion", "repeated punctuation"),
        (". . . . . . . .", "repeated punctuation"),
        ("No effusion ; , . ; , .", "repeated punctuation"),
        ("12 34 56 78 90 1.2 3.4 cm", "not letters"),
        ("Effusion", "1 word"),
        ("right right", "2 word"),
        ("a b c d e f g h", "single letters"),
        ("the the the the the the the the", "'the' over and over"),
        ("no effusion no effusion no effusion no effusion", "'no effusion' over and over"),
        (
            "There is no effusion. There is no effusion. There is no effusion.",
            "over and over",
        ),
        (
            "effusion nodule effusion mass effusion effusion nodule effusion mass effusion "
            "effusion",
            "'effusion' makes up 7 of the draft's 11 words",
        ),
        (
            "No effusion. Heart normal. No effusion. Lungs clear. No effusion.",
            "repeats the sentence 'no effusion' 3 times",
        ),
        (
            "nodule mass effusion nodule mass effusion mass nodule effusion effusion mass nodule",
            "too small a vocabulary",
        ),
    ],
)
def test_degenerate_drafts_are_refused_with_their_reason(text, reason):
    refused = is_degenerate(text)
    assert refused is not None
    assert reason in refused


def test_a_draft_is_judged_as_a_whole():
    """A degenerate section spoils the draft even when the other section reads well."""
    good = "The heart size is normal. The lungs are clear."
    assert is_degenerate(draft_text({"findings": good, "impression": ""})) is None
    assert is_degenerate(draft_text({"findings": good, "impression": "........"})) is not None
