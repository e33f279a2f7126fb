"""Eligibility (issue 17, section 4): inclusion rules checked at ingest from the original header
before de-identification; only the age band is kept; ineligible cases are held out with the
reason, never served, and a lead reviews them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pydicom
import pytest
from django.core.exceptions import ValidationError
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from active_learning.ml import synthetic
from annotations.dicom import eligibility
from annotations.models import AuditEvent, Case, Project
from annotations.services import ingest, projects, queue
from annotations.services.ingest import storage_path

pytestmark = pytest.mark.django_db


def _variant(directory: Path, index: int, *, birth: str | None, age: str | None, tag: str) -> bytes:
    """A synthetic case as a new patient and study, with the birth date and age given (None:
    the attribute removed)."""
    item = synthetic.load_manifest(directory)[index]
    dataset = pydicom.dcmread(directory / item["file"])
    dataset.PatientID = f"ELIG-{tag}"
    dataset.PatientName = f"Minor^{tag}"
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        setattr(dataset, keyword, generate_uid(entropy_srcs=[tag, keyword]))
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.AccessionNumber = f"ACC{tag}"
    for keyword, value in (("PatientBirthDate", birth), ("PatientAge", age)):
        if value is None:
            if keyword in dataset:
                delattr(dataset, keyword)
        else:
            setattr(dataset, keyword, value)
    out = directory.parent / f"variant-{tag}.dcm"
    dataset.save_as(out, enforce_file_format=True)
    return out.read_bytes()


def _study_date(directory: Path, index: int) -> date:
    item = synthetic.load_manifest(directory)[index]
    value = str(pydicom.dcmread(directory / item["file"], stop_before_pixels=True).StudyDate)
    return date(int(value[:4]), int(value[4:6]), int(value[6:8]))


@pytest.fixture
def adult_study(project: Project) -> Project:
    projects.update_project(
        project=project, changed_by=None, eligibility_rules={"min_age_years": 18}
    )
    project.refresh_from_db()
    return project


def _ingest(project: Project, data: bytes) -> Case:
    result = ingest.ingest_dicom_bytes(project=project, data=data, source_name="t")
    return result.instance.series.study.case


def test_a_16_year_old_study_is_held_out_and_never_served(
    adult_study, synthetic_dir, member, api_for
):
    studied = _study_date(synthetic_dir, 0)
    # Sixteen on the study date: the birthday was the day before, 16 years earlier.
    born = date(studied.year - 16, studied.month, min(studied.day, 28))
    minor = _ingest(
        adult_study,
        _variant(synthetic_dir, 0, birth=born.strftime("%Y%m%d"), age="016Y", tag="minor"),
    )
    adult = _ingest(
        adult_study,
        _variant(synthetic_dir, 1, birth="19600101", age=None, tag="adult"),
    )
    minor.refresh_from_db()
    assert minor.held_out is True
    assert "below the minimum of 18 years" in minor.held_out_reason
    assert "16" not in minor.held_out_reason  # the band, never the age
    assert minor.study.age_band == "0-17"
    assert adult.held_out is False and adult.study.age_band not in ("", "0-17")
    # Only the band is kept: the stored file has neither birth date nor age.
    stored = pydicom.dcmread(storage_path(minor.study.series.first().instances.first().file_path))
    assert not stored.get("PatientBirthDate") and "PatientAge" not in stored
    event = AuditEvent.objects.filter(action="instance.ingest").order_by("id").first()
    assert "below the minimum" in event.detail["held_out_reason"]

    # Never served: the queue hands out the adult and then nothing.
    annotator = member("ann", "annotator")
    served = []
    while (case := queue.lease_next_case(project=adult_study, annotator=annotator)) is not None:
        served.append(case.pk)
        queue.release_lease(case=case, annotator=annotator, skip_reason="next")
    assert minor.pk not in served and adult.pk in served
    client = api_for(annotator)
    assert client.get(f"/api/cases/{minor.pk}/").status_code == 403
    image = minor.study.series.first().instances.first()
    assert client.get(f"/api/instances/{image.pk}/file/").status_code == 403

    # A lead reviews it: listed with the reason and band, then excluded for good.
    lead = api_for(member("lena", "lead"))
    listed = lead.get(f"/api/projects/{adult_study.pk}/held-out-cases/").json()
    assert [(row["id"], row["age_band"]) for row in listed] == [(minor.pk, "0-17")]
    assert "below the minimum" in listed[0]["held_out_reason"]
    decided = lead.post(
        f"/api/projects/{adult_study.pk}/held-out-cases/decisions/",
        {"cases": [minor.pk], "decision": "exclude", "comment": "minor: not in the protocol"},
        format="json",
    )
    assert decided.status_code == 200 and decided.json()["still_held_out"] == 0
    minor.refresh_from_db()
    assert minor.held_out and minor.held_out_excluded_at is not None
    assert lead.get(f"/api/projects/{adult_study.pk}/held-out-cases/").json() == []
    assert AuditEvent.objects.filter(action="case.exclude_held_out", object_id=str(minor.pk))


def test_unknown_age_is_held_and_a_lead_may_include_it(adult_study, synthetic_dir, member, api_for):
    case = _ingest(adult_study, _variant(synthetic_dir, 2, birth=None, age=None, tag="unknown"))
    assert case.held_out and case.held_out_reason.startswith("Eligibility unknown")
    annotator = member("ann", "annotator")
    assert queue.lease_next_case(project=adult_study, annotator=annotator) is None
    lead = api_for(member("lena", "lead"))
    answer = lead.post(
        f"/api/projects/{adult_study.pk}/held-out-cases/decisions/",
        {"cases": [case.pk], "decision": "include", "comment": "adult per the referral letter"},
        format="json",
    )
    assert answer.status_code == 200
    assert queue.lease_next_case(project=adult_study, annotator=annotator).pk == case.pk


def test_projects_without_rules_hold_nothing_out(project, synthetic_dir):
    studied = _study_date(synthetic_dir, 3)
    case = _ingest(
        project,
        _variant(
            synthetic_dir, 3, birth=f"{studied.year - 10}0101", age="010Y", tag="child-no-rules"
        ),
    )
    assert not case.held_out and case.study.age_band == "0-17"


def test_bad_rules_are_refused_naming_the_key(project, member, api_for):
    with pytest.raises(ValidationError, match="min_age_years"):
        projects.update_project(
            project=project, changed_by=None, eligibility_rules={"min_age_years": "18"}
        )
    lead = api_for(member("lena", "lead"))
    answer = lead.patch(
        f"/api/projects/{project.pk}/", {"eligibility_rules": {"age": 18}}, format="json"
    )
    assert answer.status_code == 400 and "unknown keys" in answer.json()["message"]


def _header(**values: str) -> Dataset:
    dataset = Dataset()
    for keyword, value in values.items():
        setattr(dataset, keyword, value)
    return dataset


@pytest.mark.parametrize(
    ("values", "years"),
    [
        ({"PatientBirthDate": "20080615", "StudyDate": "20260614"}, 17),
        ({"PatientBirthDate": "20080615", "StudyDate": "20260615"}, 18),
        ({"PatientAge": "018Y"}, 18),
        ({"PatientAge": "200M"}, 16),
        ({"PatientAge": "030W"}, 0),
        ({"PatientBirthDate": "junk", "PatientAge": "045Y"}, 45),
        ({}, None),
    ],
)
def test_age_at_study_from_birth_date_or_age(values, years):
    assert eligibility.age_at_study(_header(**values)) == years


def test_the_sex_rule_and_if_unknown_include():
    rules = eligibility.validate_rules({"sexes": ["F"], "if_unknown": "include"})
    assert eligibility.evaluate(rules, _header(PatientSex="M")).eligible is False
    assert eligibility.evaluate(rules, _header(PatientSex="F")).eligible is True
    assert eligibility.evaluate(rules, _header()).held_out_reason == ""
    assert eligibility.age_band(95) == "90+" and eligibility.age_band(None) == ""
