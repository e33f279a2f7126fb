"""Ingest of a CT series slice by slice (issue 21): the slices after the first find their
series in one look-up, the file's fsync runs beside the row inserts, and the audit event is
written in the instance's transaction. What must hold whatever the speed: one patient, study,
case and series for the whole series, every slice stored once with its file complete and
audited, nothing left half-written, and a bad slice refused without touching the others."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pydicom
import pytest

from active_learning.ml import synthetic_ct
from annotations.models import AuditEvent, Case, Instance, Patient, Series, Study
from annotations.services.errors import InvalidInput
from annotations.services.ingest import ingest_dicom_bytes, storage_path

SLICES = 8


@pytest.fixture
def slice_files(tmp_path: Path) -> list[bytes]:
    series = synthetic_ct.generate_series(3, SLICES, 48)
    paths = synthetic_ct.write_series(synthetic_ct.slice_datasets(series), tmp_path / "in")
    return [path.read_bytes() for path in paths]


def _ingest_events(project_id: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(project_id=project_id, action="instance.ingest"))


@pytest.mark.django_db(transaction=True)  # real commits: each slice's own transaction
def test_a_series_ingested_slice_by_slice_is_one_series_of_audited_complete_files(
    project, slice_files
):
    results = [
        ingest_dicom_bytes(project=project, data=data, source_name=f"slice-{i}.dcm")
        for i, data in enumerate(slice_files)
    ]
    assert all(result.created for result in results)
    assert Patient.objects.filter(project=project).count() == 1
    assert Study.objects.filter(project=project).count() == 1
    assert Case.objects.filter(project=project).count() == 1
    (series,) = Series.objects.filter(study__project=project)
    instances = list(Instance.objects.filter(series=series).order_by("instance_number"))
    assert [i.instance_number for i in instances] == list(range(1, SLICES + 1))
    events = _ingest_events(project.pk)
    assert sorted(int(e.object_id) for e in events) == sorted(i.pk for i in instances)
    by_id = {int(e.object_id): e for e in events}
    for instance in instances:
        path = storage_path(instance.file_path)
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == instance.sha256
        assert len(data) == instance.size_bytes
        assert by_id[instance.pk].detail == {"sha256": instance.sha256, "bytes": len(data)}
        stored = pydicom.dcmread(path)
        assert stored.SeriesInstanceUID == series.series_instance_uid
        assert stored.PatientIdentityRemoved == "YES"
    # No temporary file of the atomic write is left beside the stored ones.
    folder = storage_path(instances[0].file_path).parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        Path(i.file_path).name for i in instances
    )

    # The same slices again: stored once, no second audit event, files unchanged.
    again = [ingest_dicom_bytes(project=project, data=data) for data in slice_files]
    assert not any(result.created for result in again)
    assert [r.instance.pk for r in again] == [r.instance.pk for r in results]
    assert Instance.objects.filter(series__study__project=project).count() == SLICES
    assert len(_ingest_events(project.pk)) == SLICES


@pytest.mark.django_db(transaction=True)
def test_a_damaged_slice_in_a_series_is_refused_and_leaves_the_others_intact(project, slice_files):
    for data in slice_files[:3]:
        ingest_dicom_bytes(project=project, data=data)
    before = {i.pk: i.sha256 for i in Instance.objects.filter(series__study__project=project)}
    truncated = slice_files[3][: len(slice_files[3]) // 2]
    with pytest.raises(InvalidInput) as refused:
        ingest_dicom_bytes(project=project, data=truncated, source_name="slice-3.dcm")
    assert "slice-3.dcm" in str(refused.value)
    after = {i.pk: i.sha256 for i in Instance.objects.filter(series__study__project=project)}
    assert after == before
    assert len(_ingest_events(project.pk)) == 3
    folder = storage_path(Instance.objects.filter(series__study__project=project)[0].file_path)
    assert len(list(folder.parent.iterdir())) == 3  # nothing written for the refused slice
    # The series goes on with the next slices, into the same series row.
    for data in slice_files[3:]:
        assert ingest_dicom_bytes(project=project, data=data).created
    assert Series.objects.filter(study__project=project).count() == 1
    assert Instance.objects.filter(series__study__project=project).count() == SLICES


@pytest.mark.django_db(transaction=True)
def test_a_series_whose_study_holds_another_patient_is_not_taken_for_a_known_series(
    project, slice_files
):
    """The one-look-up path matches the patient too: a slice with the same study and series
    UIDs under another Patient ID goes through the full look-up, as before (its patient row is
    made; the instance joins the study's existing series)."""
    ingest_dicom_bytes(project=project, data=slice_files[0])
    other = pydicom.dcmread(io.BytesIO(slice_files[1]))
    other.PatientID = "SOMEONE-ELSE"
    other.PatientName = "Else^Someone"
    buffer = io.BytesIO()
    other.save_as(buffer, enforce_file_format=True)
    assert ingest_dicom_bytes(project=project, data=buffer.getvalue()).created
    assert Patient.objects.filter(project=project).count() == 2
    assert Study.objects.filter(project=project).count() == 1
    assert Series.objects.filter(study__project=project).count() == 1
    assert Instance.objects.filter(series__study__project=project).count() == 2
