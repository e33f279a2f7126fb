"""The CT detector's explanation through the platform (issue 21): a chest CT ingested through the
real DICOM path, a trained 3D detector registered as version 1, and the explanation endpoint
serving its Grad-CAM slice by slice in the viewer's order (the hottest slice, on the nodule, by
default). A request never computes it: the first that finds it missing answers 202 and queues
``active_learning.explain_case`` once (on the test settings' in-memory broker, run here as the
worker runs it); scoring a case queues its top finding's. Refused by name for a slice outside
the series, and deleted with the patient's data on a purge."""

from __future__ import annotations

import dataclasses
import io
import shutil

import pytest
from django.test import override_settings
from PIL import Image

from active_learning.ml import synthetic_ct
from active_learning.ml.ct_detector import CTDetector
from active_learning.models import ModelVersion
from active_learning.services import cycles, explanations, suggestions, versions
from annotations.models import AuditEvent, Case, Patient, Series
from annotations.series_stacks import stack_of
from annotations.services import consent, ingest, projects
from tests.support import queued_tasks
from tests.support.ct_labels import labelled_ct_project
from tests.support.ct_volumes import SIZE, SLICES, TINY_CT, whole_nodule_series
from tests.support.training import run_whole_cycle

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
def inference_queue():
    """The broker's inference queue, emptied of what earlier tests left on it."""
    queued_tasks.take("inference")
    return "inference"


@pytest.fixture
def scene(ct_project, make_user, api_for, detector, chosen, tmp_path, inference_queue):
    """A CT project with two ingested series (two cases), version 1 the trained detector
    (promoted: what the endpoint explains by when no version is named), and a lead's API
    client."""
    project = ct_project
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


def _explain_tasks() -> list[tuple[str, list]]:
    taken = queued_tasks.take("inference")
    assert {name for name, _ in taken} <= {"active_learning.explain_case"}, taken
    return taken


def _computed(client, case: Case, capture, **params: object):
    """The explanation's answer once its task ran: the first ask is a 202 that queued it."""
    with capture(execute=True):
        first = client.get(_url(case, **params))
    assert first.status_code == 202, first.content
    assert queued_tasks.run(_explain_tasks()) == [True]
    return client.get(_url(case, **params))


def _png_size(content: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(content))
    assert image.mode == "RGBA"
    return image.size


def test_an_uncomputed_ct_explanation_is_a_202_that_queues_one_task(
    scene, django_capture_on_commit_callbacks
):
    client, case, version = scene["client"], scene["cases"][0], scene["version"]
    folder = explanations.volume_folder(version, case, "nodule")
    with django_capture_on_commit_callbacks(execute=True):
        first = client.get(_url(case, version=1))
    assert first.status_code == 202, first.content
    assert first.json() == {
        "status": "computing",
        "message": "The explanation is being computed; ask again in 5 seconds.",
        "retry_after": 5,
    }
    assert first["Retry-After"] == "5" and first["Cache-Control"] == "no-store"
    assert not folder.exists()  # the request computed nothing
    # Asked again (another slice too) while the task waits: nothing more is queued.
    with django_capture_on_commit_callbacks(execute=True):
        again = client.get(_url(case, slice=2))
        other = client.get(_url(case))
    assert again.status_code == other.status_code == 202
    queued = _explain_tasks()
    assert queued == [("active_learning.explain_case", [version.pk, case.pk, "nodule"])]

    assert queued_tasks.run(queued) == [True]  # what the worker does
    assert (folder / "volume.json").is_file()
    assert not explanations.pending_path(version, case, "nodule").exists()
    done = client.get(_url(case, slice=2))
    assert done.status_code == 200 and done["Content-Type"] == "image/png"
    assert done["X-MedLoop-Slice"] == "2" and _png_size(done.content) == (SIZE, SIZE)
    # Redelivered, the task finds the overlays done and keeps them.
    written = (folder / "volume.json").stat().st_mtime_ns
    assert queued_tasks.run(queued) == [False]
    assert (folder / "volume.json").stat().st_mtime_ns == written
    assert _explain_tasks() == []


def test_the_ct_explanation_is_served_slice_by_slice_in_the_viewers_order(
    scene, chosen, django_capture_on_commit_callbacks
):
    client, case = scene["client"], scene["cases"][0]
    series = Series.objects.get(study__case=case, modality="CT")
    order = stack_of(series).instance_ids
    assert len(order) == SLICES

    hottest = _computed(client, case, django_capture_on_commit_callbacks, version=1)
    assert hottest.status_code == 200, hottest.content
    assert hottest["Content-Type"] == "image/png" and _png_size(hottest.content) == (SIZE, SIZE)
    assert hottest["Cache-Control"] == "private, max-age=3600"
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
    folder = explanations.volume_folder(scene["version"], case, "nodule")
    assert sorted(p.name for p in folder.iterdir()) == [
        *(f"slice-{n:04d}.png" for n in range(SLICES)),
        "volume.json",
    ]
    written = (folder / "volume.json").stat().st_mtime_ns
    assert client.get(_url(case, slice=3)).status_code == 200
    assert (folder / "volume.json").stat().st_mtime_ns == written
    assert _explain_tasks() == []
    assert (
        AuditEvent.objects.filter(action="case.view_explanation", object_id=str(case.pk)).count()
        == 6
    )


def test_a_failed_ct_explanation_task_is_a_409_naming_why_and_not_queued_again(
    scene, django_capture_on_commit_callbacks
):
    client, case = scene["client"], scene["cases"][0]
    # Version 2 of the CT kind, whose files are missing: the worker cannot load it.
    ModelVersion.objects.create(project=scene["project"], number=2, model_kind="ct_retinanet3d")
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(_url(case, version=2)).status_code == 202
    assert queued_tasks.run(_explain_tasks()) == [False]
    with django_capture_on_commit_callbacks(execute=True):
        failed = client.get(_url(case, version=2))
    assert failed.status_code == 409, failed.content
    assert failed.json()["message"].startswith("Model version 2 cannot be loaded: ")
    assert _explain_tasks() == []


def test_scoring_a_ct_case_leaves_its_top_findings_explanation_waiting(
    ct_project, make_user, api_for, tmp_path, inference_queue, django_capture_on_commit_callbacks
):
    labelled_ct_project(ct_project, make_user, api_for, tmp_path)
    with override_settings(MODELS_DIR=tmp_path / "models"):
        versions.clear_cache()
        with django_capture_on_commit_callbacks(execute=True):
            cycle = run_whole_cycle(cycles.trigger_cycle(project=ct_project))
        version = cycle.model_version
        assert version is not None and version.status == ModelVersion.Status.PROMOTED
        open_cases = Case.objects.filter(project=ct_project, state=Case.State.OPEN)
        assert open_cases.count() == 2
        # The scoring chunk queued one explanation per scored case: its top finding's.
        queued = [
            t for t in queued_tasks.take("inference") if t[0] != "active_learning.score_chunk"
        ]
        assert sorted(queued) == sorted(
            ("active_learning.explain_case", [version.pk, case.pk, "nodule"]) for case in open_cases
        )
        assert queued_tasks.run(queued) == [True, True]
        lead = make_user("lead")
        projects.add_member(project=ct_project, user=lead, role="lead", added_by=None)
        client = api_for(lead)
        for case in open_cases:
            with django_capture_on_commit_callbacks(execute=True):
                waiting = client.get(_url(case))
            assert waiting.status_code == 200, waiting.content  # computed before it was opened
            assert waiting["X-MedLoop-Slices"] == str(SLICES)
        assert _explain_tasks() == []

        # Scored again: the overlays are there, nothing is queued; without them and with
        # MEDLOOP_EXPLAIN_ON_SCORING=0 neither; at 1 again, the top finding's.
        ids = [case.pk for case in open_cases]
        with django_capture_on_commit_callbacks(execute=True):
            suggestions.score_cases(version=version, case_ids=ids)
        assert _explain_tasks() == []
        for case in open_cases:
            shutil.rmtree(explanations.volume_folder(version, case, "nodule"))
        with (
            override_settings(MEDLOOP_EXPLAIN_ON_SCORING=0),
            django_capture_on_commit_callbacks(execute=True),
        ):
            suggestions.score_cases(version=version, case_ids=ids)
        assert _explain_tasks() == []
        with django_capture_on_commit_callbacks(execute=True):
            suggestions.score_cases(version=version, case_ids=ids)
        assert len(_explain_tasks()) == 2
        versions.clear_cache()


def test_a_slice_outside_the_series_or_malformed_is_a_400_naming_it(scene):
    client, case = scene["client"], scene["cases"][0]
    series = Series.objects.get(study__case=case, modality="CT")
    outside = client.get(_url(case, slice=SLICES))
    assert outside.status_code == 400
    assert outside.json()["message"] == (
        f"slice {SLICES} is outside series {series.pk}'s slices 0..{SLICES - 1} "
        "(0-based, in the viewer's order)"
    )
    # Refused before anything was computed or queued.
    assert not explanations.volume_folder(scene["version"], case, "nodule").exists()
    assert not explanations.pending_path(scene["version"], case, "nodule").exists()
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


def test_the_purge_deletes_the_cached_ct_explanation(
    scene, settings, django_capture_on_commit_callbacks
):
    client, (case, other) = scene["client"], scene["cases"]
    assert _computed(client, case, django_capture_on_commit_callbacks).status_code == 200
    assert _computed(client, other, django_capture_on_commit_callbacks).status_code == 200
    version = scene["version"]
    # One still queued (by another version) goes too.
    later = ModelVersion.objects.create(
        project=scene["project"], number=2, model_kind="ct_retinanet3d"
    )
    assert explanations.queue_volume_explanation(version=later, case=case, finding="nodule")
    pending = explanations.pending_path(later, case, "nodule")
    assert pending.is_file()
    folder = explanations.volume_folder(version, case, "nodule")
    kept = explanations.volume_folder(version, other, "nodule")
    assert folder.is_dir() and kept.is_dir()
    # A 2D overlay of the same case by another version goes too.
    flat = explanations._cache_path(version, case, "nodule").with_name(f"case-{case.pk}-x.png")
    flat.write_bytes(b"png")

    settings.MEDLOOP_WITHDRAWAL_RETENTION_DAYS = 0
    patient = Patient.objects.get(studies__case=case)
    consent.withdraw(patient=patient, source="lead")
    assert consent.purge_due() == [patient.pk]

    assert not folder.exists() and not flat.exists() and not pending.exists()
    assert not list(folder.parent.glob(f"case-{case.pk}-*"))
    assert len(list(kept.glob("slice-*.png"))) == SLICES  # another patient's case keeps its own
