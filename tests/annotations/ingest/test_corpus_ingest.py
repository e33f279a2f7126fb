"""Every file of pydicom's on-disk test corpus goes through MedLoop's ingest: it is either
stored with pixels equal to pydicom's own decoding of the original, or refused with a precise
reason. Nothing crashes, and a refused file leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from annotations.dicom import pixels
from annotations.models import Instance
from annotations.services import ingest
from annotations.services.errors import InvalidInput

CORPUS_ROOT = Path(pydicom.__file__).parent / "data" / "test_files"
CORPUS = sorted(
    p.relative_to(CORPUS_ROOT).as_posix() for p in CORPUS_ROOT.rglob("*") if p.is_file()
)
# What a refusal must say for each kind of file (the start of the reason after the file name).
SPECIFIC_REASONS = (
    "not a DICOM file",
    "not a readable DICOM file",
    "no pixel data",
    "pixel data truncated",
    "truncated or corrupt length",
    "missing required attribute",
    "invalid value",
    "no (0002,0010) Transfer Syntax UID",
    "unable to decode",
    "could not be decoded",
    "SOPInstanceUID is missing",
    "StudyInstanceUID is missing",
    "SeriesInstanceUID is missing",
    "SOPClassUID is missing",
    "Rows or Columns missing",
    "malformed DICOM content",
)


def _original_frames(path: Path) -> list[np.ndarray]:
    try:
        dataset = pydicom.dcmread(path)
    except pydicom.errors.InvalidDicomError:
        dataset = pydicom.dcmread(path, force=True)
    return [pixels.decode_frame(dataset, i) for i in range(pixels.frame_count(dataset))]


@pytest.mark.django_db
@pytest.mark.parametrize("name", CORPUS)
def test_corpus_file_is_stored_with_identical_pixels_or_refused_with_a_reason(project, name):
    path = CORPUS_ROOT / name
    try:
        result = ingest.ingest_dicom_bytes(
            project=project, data=path.read_bytes(), source_name=name
        )
    except InvalidInput as exc:
        reason = exc.message.removeprefix(f"{name}: ")
        assert any(marker in reason for marker in SPECIFIC_REASONS), reason
        assert not Instance.objects.exists()
        return
    stored = pydicom.dcmread(ingest.storage_path(result.instance.file_path))
    assert stored.PatientIdentityRemoved == "YES"
    frames = _original_frames(path)
    assert pixels.frame_count(stored) == len(frames) == result.instance.number_of_frames
    for index, original in enumerate(frames):
        np.testing.assert_array_equal(pixels.decode_frame(stored, index), original)


@pytest.mark.django_db
def test_the_corpus_yields_both_stored_and_refused_files(project):
    outcomes = {"stored": 0, "refused": 0}
    for name in CORPUS:
        try:
            ingest.ingest_dicom_bytes(
                project=project, data=(CORPUS_ROOT / name).read_bytes(), source_name=name
            )
            outcomes["stored"] += 1
        except InvalidInput:
            outcomes["refused"] += 1
    assert outcomes["stored"] >= 80
    assert outcomes["refused"] >= 60
