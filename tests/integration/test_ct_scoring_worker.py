"""CT suggestions through the real scoring path (issue 21, part 4): chest CT series ingested as
single-frame DICOM, a 3D detector version promoted, and a real Celery worker on Redis scoring
the open cases (``active_learning.refresh_serving``, the task a promotion queues): each case's
suggestion holds 3D boxes as annotators' are stored (series, slice range, pixels on the slices,
patient mm) around its nodule, with every candidate and an acquisition score; and the worker
then draws each case's explanation of its top finding (``active_learning.explain_case``, queued
by the scoring), so the overlay waits in the cache before the case is opened."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from active_learning import tasks
from active_learning.ml import synthetic_ct
from active_learning.ml.ct_detector import KIND, CTDetector
from active_learning.models import Suggestion
from active_learning.services import explanations, versions
from annotations.models import Case, Series
from annotations.series_stacks import stack_of
from annotations.services import ingest
from tests.integration.conftest import wait_for
from tests.integration.test_cycle_worker import on_redis  # noqa: F401 (fixture)
from tests.support.ct_volumes import SLICES, TINY_CT, whole_nodule_series

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _trained_version(project, training: list[synthetic_ct.SyntheticSeries]):
    # Shown from a low score: what is checked is how boxes are stored, not how good 70 steps are.
    model = CTDetector(dataclasses.replace(TINY_CT, suggestion_score_threshold=0.05))
    volumes = [synthetic_ct.labelled_volume(s) for s in training]
    model.train(lambda: iter(volumes))
    directory = versions.version_directory(project, 1)
    model.save(directory)
    version = versions.register_version(
        project=project, number=1, directory=directory, parent_reason="trained by the test"
    )
    return versions.promote(version)


def test_the_scoring_task_stores_3d_boxes_for_ct_cases(
    project,
    on_redis,  # noqa: F811
    start_worker,
    tmp_path,
):
    # The worker first: its start (importing torch and MONAI) is slow on a busy machine.
    worker = start_worker(on_redis, queues="default,training,inference", pool="prefork")
    chosen = whole_nodule_series(5, start=0)
    scored, training = chosen[:2], chosen[2:]
    for n, series in enumerate(scored):
        paths = synthetic_ct.write_series(synthetic_ct.slice_datasets(series), tmp_path / str(n))
        for path in paths:
            ingest.ingest_dicom_path(project=project, path=path)
    version = _trained_version(project, training)
    assert version.model_kind == KIND

    tasks.refresh_serving.delay(project.pk)
    cases = list(Case.objects.filter(project=project).order_by("pk"))
    wait_for(
        lambda: Suggestion.objects.filter(model_version=version).count() == len(cases),
        timeout=240,
        what="the worker to score the CT cases",
    )
    assert "active_learning.refresh_serving" in Path(worker.log_path).read_text()

    for case, series in zip(cases, scored, strict=True):  # cases were created in this order
        ct_series = Series.objects.get(study__case=case, modality="CT")
        suggestion = Suggestion.objects.get(case=case, model_version=version)
        assert 0.0 <= suggestion.acquisition_score <= 1.0
        candidates = suggestion.uncertainty["candidates"]
        assert candidates and all({"z", "depth"} <= set(c) for c in candidates)
        assert suggestion.boxes, suggestion.uncertainty
        order = stack_of(ct_series).instance_ids
        for box in suggestion.boxes:
            first, last = box["slices"]
            assert box["series_id"] == ct_series.pk and 1 <= first <= last <= SLICES
            assert box["instance_id"] == order[(first + last) // 2 - 1]
            assert set(box["patient_mm"]) == {"min", "max", "center", "size"}
        # A shown box holds the nodule's centre (patient mm, from the DICOM geometry).
        (nodule,) = series.nodules

        held = [
            all(a <= c <= b for a, c, b in zip(box["patient_mm"]["min"], nodule.center_mm,
                                               box["patient_mm"]["max"], strict=True))
            for box in suggestion.boxes
        ]  # fmt: skip
        assert any(held), suggestion.boxes

    for case in cases:
        folder = explanations.volume_folder(version, case, "nodule")
        pending = explanations.pending_path(version, case, "nodule")
        # Done: the overlays in place and the task's mark gone (it is removed after them).
        wait_for(
            lambda folder=folder, pending=pending: (
                (folder / "volume.json").is_file() and not pending.exists()
            ),
            timeout=240,
            what=f"the worker to draw case {case.pk}'s explanation",
        )
        assert len(list(folder.glob("slice-*.png"))) == SLICES
    assert "active_learning.explain_case" in Path(worker.log_path).read_text()
