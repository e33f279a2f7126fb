"""A CT project with synthetic nodule series ingested through the real DICOM path and some of
them labelled through the annotation API with their 3D box, as the CT loop tests need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from active_learning.ml import synthetic_ct
from active_learning.services import loop_settings
from annotations.models import Case, Series
from annotations.series_stacks import stack_of
from annotations.services import ingest, projects
from tests.support.ct_volumes import whole_nodule_series


def label_nodule(client: Any, case: Case, series: Series, nodule_box: Any) -> None:
    """An annotator's 3D box over the nodule's slices, drawn on its middle slice, submitted."""
    order = stack_of(series).instance_ids
    first = max(1, round(nodule_box.z) + 1)
    last = min(len(order), max(first, round(nodule_box.z + nodule_box.depth)))
    box = {
        "instance_id": order[(first + last) // 2 - 1],
        "x": round(nodule_box.x, 2),
        "y": round(nodule_box.y, 2),
        "width": round(nodule_box.width, 2),
        "height": round(nodule_box.height, 2),
        "finding": "nodule",
        "slices": [first, last],
    }
    url = f"/api/cases/{case.pk}/annotation/"
    opened = client.get(url)
    saved = client.put(url, {"boxes": [box]}, format="json", HTTP_IF_MATCH=opened["ETag"])
    assert saved.status_code == 200, saved.content
    submitted = client.post(f"{url}submit/", {}, format="json", HTTP_IF_MATCH=saved["ETag"])
    assert submitted.status_code == 200, submitted.content


def labelled_ct_project(project: Any, make_user: Any, api_for: Any, tmp_path: Path) -> list[int]:
    """Six synthetic nodule series ingested into ``project``; the first four cases the queue
    hands an annotator labelled with their nodule's 3D box, the last two of those made
    validation cases; the loop set to train 4 steps with no validation-label floor. Returns the
    labelled cases' ids in labelling order."""
    annotator = make_user("alice")
    projects.add_member(project=project, user=annotator, role="annotator", added_by=None)
    client = api_for(annotator)
    chosen = whole_nodule_series(6, start=0)
    for n, series in enumerate(chosen):
        for path in synthetic_ct.write_series(
            synthetic_ct.slice_datasets(series), tmp_path / str(n)
        ):
            ingest.ingest_dicom_path(project=project, path=path)
    cases = list(Case.objects.filter(project=project).order_by("pk"))  # in ingest order
    labelled = []
    for _ in range(4):
        leased = client.post(f"/api/projects/{project.pk}/next-case/")
        assert leased.status_code == 200, leased.content
        case = Case.objects.get(pk=leased.json()["id"])
        ct_series = Series.objects.get(study__case=case, modality="CT")
        (nodule,) = synthetic_ct.nodule_boxes(chosen[cases.index(case)])
        label_nodule(client, case, ct_series, nodule)
        labelled.append(case.pk)
    # Two of the labelled cases are the project's validation cases (the keyed draw at ingest
    # holds none out at validation_fraction 0).
    Case.objects.filter(pk__in=labelled[2:]).update(is_validation=True)
    loop_settings.update_loop_settings(
        project=project, model_config={"train_steps": 4}, min_validation_labels=0
    )
    return labelled
