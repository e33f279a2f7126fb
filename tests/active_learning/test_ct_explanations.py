"""The CT detector's explanation through the platform (issue 21): a chest CT ingested through the
real DICOM path, a trained 3D detector registered as version 1, and the explanation endpoint
serving its Grad-CAM slice by slice in the viewer's order (the hottest slice, on the nodule, by
default), computed once and kept, refused by name for a slice outside the series, and deleted
with the patient's data on a purge."""

from __future__ import annotations

import dataclasses
import io

import pytest
from django.test import override_settings
from PIL import Image

from active_learning.ml import synthetic_ct
from active_learning.ml.ct_detector import CTDetector
from active_learning.models import ModelVersion
from active_learning.services import explanations, versions
from annotations.models import AuditEvent, Case, Patient, Series
from annotations.series_stacks import stack_of
from annotations.services import consent, ingest, projects
from tests.support.ct_volumes import SIZE, SLICES, TINY_CT, whole_nodule_series

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def chosen() -> list[synthetic_ct.SyntheticSeries]:
    return whole_nodule_series(4, start=0)


@pytest.fixture(scope="module")
def detector(chosen) -> CTDetector:
    model = CTDetector(dataclasses.replace(TINY_CT))
    model.train(lambda: iter([synthetic_ct.labelled_volume(s) for s in chosen]))
    return model


@pytest.fixture
def scene(make_user, api_for, detector, chosen, tmp_path):
    """A CT project with two ingested series (two cases), version 1 the trained detector
    (promoted: what the endpoint explains by when no version is named), and a lead's API
    client."""
    owner = make_user("ct-owner", is_staff=True)
    project = projects.create_project(
        name="Chest CT", created_by=owner, modality="CT", validation_fraction=0.0
    )
    for n, series in enumerate(chosen[:2]):
        for path in synthetic_ct.write_series(
            synthetic_ct.slice_datasets(series), tmp_path / "dicom" / str(n)
        ):
            ingest.ingest_dicom_path(project=project, path=path)
    lead = make_user("lead")
    projects.add_member(project=project, user=lead, role="lead", added_by=None)
    with override_settings(MODELS_DIR=tmp_path / "models"):
        versions.clear_cache()
        directory = versions.version_directory(project, 1)
        detector.save(directory)
        version = versions.promote(
            versions.register_version(project=project, number=1, directory=directory)
        )
        cases = list(Case.objects.filter(project=project).order_by("pk"))  # ingest order
        yield {"project": project, "version": version, "cases": cases, "client": api_for(lead)}
        versions.clear_cache()


def _url(case: Case, **params: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"finding": "nodule", **params}.items())
    return f"/api/cases/{case.pk}/explanation/?{query}"


def _png_size(content: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(content))
    assert image.mode == "RGBA"
    return image.size


def test_the_ct_explanation_is_served_slice_by_slice_in_the_viewers_order(scene, chosen):
    client, case = scene["client"], scene["cases"][0]
    series = Series.objects.get(study__case=case, modality="CT")
    order = stack_of(series).instance_ids
    assert len(order) == SLICES

    hottest = client.get(_url(case, version=1))
    assert hottest.status_code == 200, hottest.content
    assert hottest["Content-Type"] == "image/png" and _png_size(hottest.content) == (SIZE, SIZE)
    assert hottest["X-MedLoop-Series"] == str(series.pk)
    assert hottest["X-MedLoop-Slices"] == str(SLICES)
    k = int(hottest["X-MedLoop-Slice"])
    assert hottest["X-MedLoop-Hottest-Slice"] == str(k)
    assert hottest["X-MedLoop-Instance"] == str(order[k])
    assert hottest["X-MedLoop-Heatmap-Empty"] == "false"
    # The hottest slice lies on the nodule (slices in the stack's order, 0-based).
    (nodule,) = synthetic_ct.nodule_boxes(chosen[0])
    assert nodule.z - 1 <= k <= nodule.z + nodule.depth, (k, nodule)

    for index in (0, SLICES - 1):
        one = client.get(_url(case, slice=index))
        assert one.status_code == 200, one.content
        assert one["X-MedLoop-Instance"] == str(order[index])
        assert one["X-MedLoop-Slice"] == str(index) and _png_size(one.content) == (SIZE, SIZE)
    assert client.get(_url(case, slice=k)).content == hottest.content

    # Computed once: one overlay per slice and the volume's description, kept.
    folder = explanations._volume_folder(scene["version"], case, "nodule")
    assert sorted(p.name for p in folder.iterdir()) == [
        *(f"slice-{n:04d}.png" for n in range(SLICES)),
        "volume.json",
    ]
    written = (folder / "volume.json").stat().st_mtime_ns
    assert client.get(_url(case, slice=3)).status_code == 200
    assert (folder / "volume.json").stat().st_mtime_ns == written
    assert (
        AuditEvent.objects.filter(action="case.view_explanation", object_id=str(case.pk)).count()
        == 5
    )


def test_a_slice_outside_the_series_or_malformed_is_a_400_naming_it(scene):
    client, case = scene["client"], scene["cases"][0]
    series = Series.objects.get(study__case=case, modality="CT")
    outside = client.get(_url(case, slice=SLICES))
    assert outside.status_code == 400
    assert outside.json()["message"] == (
        f"slice {SLICES} is outside series {series.pk}'s slices 0..{SLICES - 1} "
        "(0-based, in the viewer's order)"
    )
    # Refused before anything was computed.
    assert not explanations._volume_folder(scene["version"], case, "nodule").exists()
    for bad in ("-1", "abc", "%C2%B2", "%D9%A3", "1.5", "9999999"):
        response = client.get(_url(case, slice=bad))
        assert response.status_code == 400, (bad, response.content)
        assert "slice must be a slice number" in response.json()["message"]
    unknown = client.get(_url(case).replace("nodule", "fracture"))
    assert unknown.status_code == 400 and "finding must be one of" in unknown.json()["message"]
    # A version that explains one image takes no slice (refused before its files are read).
    ModelVersion.objects.create(project=scene["project"], number=2, model_kind="builtin")
    flat = client.get(_url(case, version=2, slice=0))
    assert flat.status_code == 400
    assert "slice applies to a model that reads volumes" in flat.json()["message"]


def test_the_purge_deletes_the_cached_ct_explanation(scene, settings):
    client, (case, other) = scene["client"], scene["cases"]
    assert client.get(_url(case)).status_code == 200
    assert client.get(_url(other)).status_code == 200
    version = scene["version"]
    folder = explanations._volume_folder(version, case, "nodule")
    kept = explanations._volume_folder(version, other, "nodule")
    assert folder.is_dir() and kept.is_dir()
    # A 2D overlay of the same case by another version goes too.
    flat = explanations._cache_path(version, case, "nodule").with_name(f"case-{case.pk}-x.png")
    flat.write_bytes(b"png")

    settings.MEDLOOP_WITHDRAWAL_RETENTION_DAYS = 0
    patient = Patient.objects.get(studies__case=case)
    consent.withdraw(patient=patient, source="lead")
    assert consent.purge_due() == [patient.pk]

    assert not folder.exists() and not flat.exists()
    assert not list(folder.parent.glob(f"case-{case.pk}-*"))
    assert len(list(kept.glob("slice-*.png"))) == SLICES  # another patient's case keeps its own
