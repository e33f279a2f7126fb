"""Serving the de-identified file and rendered images, with caching, access rules, audit and
quarantine."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image

from annotations.models import AuditEvent, Instance
from annotations.services import ingest, queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead(member, api_for):
    return api_for(member("lena", "lead"))


def test_file_is_served_de_identified_with_etag_and_304(lead, cases):
    instance = Instance.objects.first()
    response = lead.get(f"/api/instances/{instance.pk}/file/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom"
    data = b"".join(response.streaming_content)
    dataset = pydicom.dcmread(io.BytesIO(data))
    assert dataset.PatientIdentityRemoved == "YES"
    assert not str(dataset.PatientName).startswith(("SYNTHETIC", "TESTER", "MUSTER"))
    again = lead.get(f"/api/instances/{instance.pk}/file/", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    assert (
        AuditEvent.objects.filter(action="instance.file", object_id=str(instance.pk)).count() == 2
    )


def test_render_applies_window_and_thumbnail_is_small(lead, cases):
    instance = Instance.objects.first()
    url = f"/api/instances/{instance.pk}/render.png"
    wide = Image.open(io.BytesIO(lead.get(url).content))
    assert wide.size == (instance.columns, instance.rows)
    narrow = lead.get(url, {"window_center": 100, "window_width": 10})
    assert narrow.status_code == 200
    pixels = np.asarray(Image.open(io.BytesIO(narrow.content)))
    assert set(np.unique(pixels)) <= set(range(256))
    assert (pixels == 255).mean() > 0.5  # most of the 12-bit image is above 105: white
    inverted = np.asarray(
        Image.open(
            io.BytesIO(
                lead.get(url, {"window_center": 100, "window_width": 10, "invert": "true"}).content
            )
        )
    )
    assert np.array_equal(inverted, 255 - pixels)
    thumb = Image.open(io.BytesIO(lead.get(f"/api/instances/{instance.pk}/thumbnail.png").content))
    assert max(thumb.size) <= 256


@pytest.mark.parametrize(
    "params",
    [
        {"frame": "5"},
        {"frame": "x"},
        {"window_center": "abc", "window_width": "1"},
        {"window_center": "10"},
        {"window_center": "1", "window_width": "-4"},
        {"window_center": "nan", "window_width": "5"},
    ],
)
def test_bad_render_parameters_answer_400_naming_the_parameter(lead, cases, params):
    instance = Instance.objects.first()
    response = lead.get(f"/api/instances/{instance.pk}/render.png", params)
    assert response.status_code == 400
    assert any(key in response.json()["message"] for key in params)


def test_annotator_gets_images_only_of_the_case_they_hold(project, member, api_for, cases):
    reader = member("ann", "annotator")
    client = api_for(reader)
    held = queue.lease_next_case(project=project, annotator=reader)
    own = Instance.objects.filter(series__study__case=held).first()
    other = Instance.objects.exclude(series__study__case=held).first()
    assert client.get(f"/api/instances/{own.pk}/render.png").status_code == 200
    assert client.get(f"/api/instances/{other.pk}/file/").status_code == 403


def test_outsider_cannot_see_images(make_user, api_for, cases):
    instance = Instance.objects.first()
    assert api_for(make_user("eve")).get(f"/api/instances/{instance.pk}/file/").status_code == 404


def test_quarantined_image_hidden_from_annotators_until_a_lead_clears_it(
    project, member, api_for, synthetic_dir, lead
):
    manifest_file = sorted(synthetic_dir.glob("*.dcm"))[0]
    dataset = pydicom.dcmread(manifest_file)
    dataset.BurnedInAnnotation = "YES"
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    instance = ingest.ingest_dicom_bytes(project=project, data=buffer.getvalue()).instance
    assert instance.quarantined and "Burned" in instance.quarantine_reason
    reader = member("ann", "annotator")
    client = api_for(reader)
    # A case whose only image is held is not handed out (it would open on an empty viewer).
    assert queue.lease_next_case(project=project, annotator=reader) is None
    assert client.get(f"/api/instances/{instance.pk}/file/").status_code == 403
    listed = lead.get(f"/api/projects/{project.pk}/quarantine/").json()
    assert [i["id"] for i in listed] == [instance.pk]
    assert client.post(f"/api/instances/{instance.pk}/clear-quarantine/").status_code == 403
    cleared = lead.post(f"/api/instances/{instance.pk}/clear-quarantine/")
    assert cleared.status_code == 200
    case = queue.lease_next_case(project=project, annotator=reader)
    assert case is not None
    detail = client.get(f"/api/cases/{case.pk}/").json()
    assert [i["id"] for s in detail["series"] for i in s["instances"]] == [instance.pk]
    assert client.get(f"/api/instances/{instance.pk}/file/").status_code == 200
    assert AuditEvent.objects.filter(action="instance.clear_quarantine").exists()
