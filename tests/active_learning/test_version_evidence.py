"""What the Models page shows of each version (issue 18, item 5): every figure with why it is
missing, the validation labels it rests on, and the promotion decision with its inputs."""

from __future__ import annotations

import pytest
from django.test import override_settings

from active_learning.models import ModelVersion
from active_learning.services import cycles, versions
from active_learning.services.loop_settings import loop_settings, update_loop_settings
from tests.support.training import run_whole_cycle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def models_dir(tmp_path):
    with override_settings(MODELS_DIR=tmp_path / "models", MEDLOOP_SCORING_CHUNK=10):
        versions.clear_cache()
        yield tmp_path / "models"
        versions.clear_cache()


def _evidence(api, project) -> dict[int, dict]:
    response = api.get(f"/api/projects/{project.pk}/model-versions/")
    assert response.status_code == 200, response.content
    return {v["number"]: v["evidence"] for v in response.json()}


def test_a_missing_figure_says_why(project, member, api_for):
    ModelVersion.objects.create(
        project=project,
        number=1,
        metrics={
            "validation_labels": 2,
            "validation_positives": {"nodule": 0, "effusion": 2},
            "validation": {
                "boxes": {"map_50": -1.0},
                "findings": {"auroc_macro": None, "auroc": {"nodule": None}},
                "reports": {"bleu_4": 0.25, "finding_f1_micro": 0.5},
            },
        },
    )
    ModelVersion.objects.create(project=project, number=2, metrics={"validation_labels": 0})
    evidence = _evidence(api_for(member("owner1", "model_owner")), project)

    first = evidence[1]
    assert first["validation_labels"] == 2
    auroc = first["figures"]["findings.auroc_macro"]
    assert auroc["value"] is None
    assert "both a present and an absent label" in auroc["missing"]
    assert "2 validation labels" in auroc["missing"] and "effusion 2" in auroc["missing"]
    assert "no lesion box" in first["figures"]["boxes.map_50"]["missing"]
    assert first["figures"]["reports.bleu_4"] == {"value": 0.25, "missing": ""}
    # combined: the mean of the defined parts (report finding F1 alone here).
    assert first["figures"]["combined"]["value"] == 0.5
    assert first["decision"] == {
        "checked": False,
        "verdict": "no promotion check: made outside a cycle",
    }

    second = evidence[2]["figures"]["findings.auroc_macro"]
    assert second["value"] is None and "no labelled validation case" in second["missing"]


def test_the_decision_comes_with_both_versions_figures_on_the_same_labels(
    loop_project, member, api_for
):
    run_whole_cycle(cycles.trigger_cycle(project=loop_project))
    update_loop_settings(project=loop_project, auto_promote=False)
    second = run_whole_cycle(cycles.trigger_cycle(project=loop_project))
    evidence = _evidence(api_for(member("owner1", "model_owner")), loop_project)

    first = evidence[1]["decision"]
    assert first["checked"] and first["verdict"] == "promoted by its cycle"
    assert first["compared_with"] is None  # nothing served before it

    decision = evidence[2]["decision"]
    assert decision["checked"] and not decision["verdict"].startswith("promoted")
    assert decision["metric"] == loop_settings(loop_project).promotion_metric
    assert decision["validation_labels"] == 3
    assert decision["min_validation_labels"] == loop_settings(loop_project).min_validation_labels
    # The inputs the reason speaks of: both versions measured by the cycle on its labels.
    assert decision["compared_with"] == 1
    assert decision["candidate_value"] == second.outcome["candidate"]
    assert decision["serving_value"] == second.outcome["serving"]
    assert decision["reason"] == second.model_version.promotion_check["reason"]
    # With a version serving, the interval of the paired bootstrap on those labels.
    assert decision["bootstrap"]["cases"] == 3
    assert decision["bootstrap"]["low"] <= decision["bootstrap"]["high"]
    assert evidence[2]["validation_labels"] == 3
