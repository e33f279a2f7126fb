"""The model in the platform: train a version on annotators' submitted labels, register it,
score cases into stored suggestions, serve a Grad-CAM overlay to the viewer, refuse altered
files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.test import override_settings
from PIL import Image

from active_learning.ml.interface import CheckpointError
from active_learning.models import ModelVersion, RetrainingCycle, Suggestion
from active_learning.services import (
    case_inputs,
    cycles,
    explanations,
    loop_settings,
    suggestions,
    versions,
)
from active_learning.services.explanations import overlay_png
from annotations.models import AuditEvent
from tests.support.labels import TINY_MODEL, submit_ground_truth
from tests.support.training import OWNER, train_version

pytestmark = pytest.mark.django_db

TINY = TINY_MODEL


@pytest.fixture(autouse=True)
def models_dir(tmp_path):
    with override_settings(MODELS_DIR=tmp_path / "models"):
        versions.clear_cache()
        yield tmp_path / "models"
        versions.clear_cache()


@pytest.fixture
def labelled(project, cases, member, synthetic_dir):
    """Eight cases read and submitted by an annotator through the queue, from the synthetic
    ground truth; the other four stay unread."""
    submit_ground_truth(
        project=project,
        cases=cases,
        synthetic_dir=synthetic_dir,
        annotator=member("reader", "annotator"),
        count=8,
    )
    return cases


def test_labelled_source_streams_the_submitted_annotations(project, labelled):
    ids = list(case_inputs.training_annotations(project).values_list("pk", flat=True))
    assert len(ids) == 8
    stream = list(case_inputs.labelled_source(ids)())
    assert len(stream) == 8
    first = stream[0]
    assert first.image.shape == (128, 128)
    assert set(first.findings) == set(project.finding_keys)
    assert first.report["findings"]
    assert first.labs and first.indication


def test_train_register_score_and_explain(project, labelled, member, api_for, models_dir):
    version = train_version(project, model_config=TINY, auto_promote=False)
    assert version.number == 1 and version.status == ModelVersion.Status.CANDIDATE
    assert version.label_count == 8 and version.metrics["training_labels"] == 8
    assert (models_dir / f"project-{project.pk}" / "v0001" / "manifest.json").is_file()

    unread = [c.pk for c in labelled if not c.annotations.exists()]
    result = suggestions.score_cases(version=version, case_ids=unread)
    assert result.stored == 4 and not result.skipped
    stored = Suggestion.objects.filter(model_version=version)
    assert stored.count() == 4
    one = stored.first()
    assert set(one.finding_probabilities) == set(project.finding_keys)
    assert set(one.report_draft) == {"findings", "impression"}
    assert 0.0 <= one.acquisition_score <= 1.0
    assert "case_score" in one.uncertainty and "report_links" in one.uncertainty
    # Scoring again replaces, never duplicates.
    suggestions.score_cases(version=version, case_ids=unread)
    assert Suggestion.objects.filter(model_version=version).count() == 4

    lead = api_for(member("lead1", "lead"))
    response = lead.get(f"/api/cases/{one.case_id}/explanation/?finding=effusion")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "image/png"
    overlay = Image.open(io.BytesIO(response.content))
    assert overlay.mode == "RGBA" and overlay.size == (128, 128)
    assert response["X-MedLoop-Instance"] == str(case_inputs.first_instance(one.case).pk)
    empty = overlay.getchannel("A").getextrema()[1] == 0
    assert response["X-MedLoop-Heatmap-Empty"] == ("true" if empty else "false")
    again = lead.get(f"/api/cases/{one.case_id}/explanation/?finding=effusion")  # cached
    assert again.content == response.content
    assert again["X-MedLoop-Heatmap-Empty"] == response["X-MedLoop-Heatmap-Empty"]
    assert AuditEvent.objects.filter(
        action="case.view_explanation", object_id=str(one.case_id)
    ).exists()
    bad = lead.get(f"/api/cases/{one.case_id}/explanation/?finding=fracture")
    assert bad.status_code == 400 and "finding must be one of" in bad.json()["message"]
    missing = lead.get(f"/api/cases/{one.case_id}/explanation/?finding=mass&version=9")
    assert missing.status_code == 404

    versions.promote(version)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.PROMOTED
    assert versions.promoted_version(project) == version


def test_altered_version_files_are_refused(project, labelled):
    version = train_version(project, model_config=TINY, auto_promote=False)
    versions.clear_cache()
    config = versions.version_directory(project, version.number) / "config.json"
    config.write_text(config.read_text().replace('"temperature"', '"temperature" '))
    with pytest.raises(CheckpointError, match=r"config\.json does not match"):
        versions.load_version(version)


def test_training_without_labels_says_so(project, cases):
    loop_settings.update_loop_settings(project=project, model_config=TINY)
    cycle = cycles.trigger_cycle(project=project)
    assert cycles.run_training(cycle.pk, owner=OWNER) is False
    cycle.refresh_from_db()
    assert cycle.status == RetrainingCycle.Status.FAILED
    assert "no submitted or accepted labels to learn from" in cycle.error
    assert not ModelVersion.objects.filter(project=project).exists()


def test_overlay_png_is_transparent_where_there_is_no_heat():
    heat = np.zeros((4, 6), dtype=np.float32)
    heat[1, 2] = 1.0
    image = np.asarray(Image.open(io.BytesIO(overlay_png(heat))))
    assert image.shape == (4, 6, 4)
    assert image[0, 0, 3] == 0
    assert not explanations._is_transparent(overlay_png(heat))
    assert explanations._is_transparent(overlay_png(np.zeros((4, 6), dtype=np.float32)))
    hot = image[1, 2]
    assert hot[3] > 100 and hot[0] > 100 and hot[1] == 0 and hot[2] == 0  # red, visible
