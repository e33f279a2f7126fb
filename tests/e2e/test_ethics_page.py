"""A lead records the project's ethics approval with its letter in the browser (the read-only
banner goes away) and includes a case the eligibility rules held out (issue 17)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from annotations.models import AuditEvent, Case, Project
from annotations.services import ingest, projects
from tests.annotations.test_eligibility import _variant
from tests.support.browser import log_in

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_lead_records_an_approval_and_includes_a_held_out_case(
    page, live_server, project, member, synthetic_dir: Path, tmp_path: Path, artifacts_dir: Path
):
    member("lena", "lead")
    projects.update_project(
        project=project, changed_by=None, eligibility_rules={"min_age_years": 18}
    )
    project.refresh_from_db()
    unknown = ingest.ingest_dicom_bytes(
        project=project,
        data=_variant(synthetic_dir, 2, birth=None, age=None, tag="page"),
        source_name="t",
    ).instance.series.study.case
    Project.objects.filter(pk=project.pk).update(requires_ethics_approval=True)

    log_in(page, live_server, "lena")
    page.goto(f"{live_server.url}/projects/{project.pk}/ethics/")
    assert "has no ethics approval recorded" in page.text_content("#ethics-notice")
    today = timezone.localdate()
    page.fill("#committee", "Cantonal Ethics Committee")
    page.fill("#reference", "EC-2026-7")
    page.fill("#approved_on", (today - timedelta(days=10)).isoformat())
    page.fill("#expires_on", (today + timedelta(days=365)).isoformat())
    page.fill("#scope", "Adults; chest radiographs; lab values")
    letter = tmp_path / "letter.pdf"
    letter.write_bytes(b"%PDF-1.4 approval")
    page.set_input_files("#document", str(letter))
    page.click("#approval-form button")
    page.wait_for_selector("#approvals tr[data-approval]")
    row = page.text_content("#approvals tr[data-approval]")
    assert "EC-2026-7" in row and "current" in row and "letter.pdf" in row
    assert page.locator("#ethics-notice").count() == 0
    page.screenshot(path=str(artifacts_dir / "ethics-page.png"), full_page=True)

    assert "Eligibility unknown" in page.text_content(f"#held-out tr[data-case='{unknown.pk}']")
    page.check(f"#held-out tr[data-case='{unknown.pk}'] .pick")
    page.fill("#comment", "adult per the referral letter")
    page.click("#held-out-form button[value=include]")
    page.wait_for_function("!document.querySelector('#held-out-form')")
    assert not Case.objects.get(pk=unknown.pk).held_out
    assert AuditEvent.objects.filter(action="case.include_held_out").exists()
