"""The promotion guard and lineage: automatic promotion needs enough validation labels and a
gain beyond noise (paired bootstrap); otherwise a version waits for a model owner with the
numbers shown; a cycle builds on the latest trained version and records why."""

from __future__ import annotations

import numpy as np
import pytest
from django.test import override_settings

from active_learning.ml import paired_bootstrap as pb
from active_learning.models import LoopSettings, ModelVersion, RetrainingCycle
from active_learning.selectors import model_dashboard
from active_learning.services import cycles, loop_settings, promotion, versions
from annotations.services.errors import InvalidInput
from tests.support.training import run_whole_cycle

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def models_dir(tmp_path):
    with override_settings(MODELS_DIR=tmp_path / "models", MEDLOOP_SCORING_CHUNK=3):
        versions.clear_cache()
        yield tmp_path / "models"
        versions.clear_cache()


def _evidence(candidate: np.ndarray, serving: np.ndarray, loop: LoopSettings) -> promotion.Evidence:
    result = pb.paired_bootstrap(
        pb.outcomes_from_values(candidate),
        pb.outcomes_from_values(serving),
        metric_name="mean",
        resamples=loop.bootstrap_resamples,
        seed=loop.bootstrap_seed,
        confidence=loop.bootstrap_confidence,
    )
    return promotion.Evidence(
        metric="mean",
        validation_labels=len(candidate),
        positives={"nodule": 3, "effusion": 0},
        bootstrap=result.as_dict(),
    )


def _decide(evidence: promotion.Evidence, loop: LoopSettings) -> promotion.Decision:
    b = evidence.bootstrap or {}
    return promotion.decide(
        evidence=evidence,
        candidate_value=b.get("candidate"),
        serving_value=b.get("serving"),
        has_serving=True,
        loop=loop,
    )


def test_promotion_is_refused_with_too_few_validation_labels():
    loop = LoopSettings()  # the defaults: 20 validation labels
    serving = np.linspace(0.2, 0.5, 12)
    decision = _decide(_evidence(serving + 0.3, serving, loop), loop)  # a huge gain...
    assert not decision.promote  # ...on 12 labels is not enough
    assert "12 validation labels, fewer than the 20" in decision.reason
    assert "nodule 3, effusion 0" in decision.reason
    first = promotion.decide(
        evidence=promotion.Evidence("combined", 1, {"nodule": 1}),
        candidate_value=0.9,
        serving_value=None,
        has_serving=False,
        loop=loop,
    )
    assert not first.promote  # the first version on one validation label waits too


def test_promotion_is_refused_within_noise_and_granted_with_a_clear_gain():
    loop = LoopSettings()
    serving = np.linspace(0.3, 0.6, 30)
    swings = np.where(np.arange(30) % 2 == 0, 0.32, -0.28)  # +0.02 on average, +-0.3 per case
    noisy = _decide(_evidence(serving + swings, serving, loop), loop)
    assert not noisy.promote and "no gain beyond noise" in noisy.reason
    assert "95% interval [-" in noisy.reason
    clear = _decide(_evidence(serving + 0.08 + swings / 10, serving, loop), loop)
    assert clear.promote and "gain beyond noise" in clear.reason


def test_loop_settings_through_the_api(project, member, api_for):
    owner = api_for(member("owner1", "model_owner"))
    url = f"/api/projects/{project.pk}/loop-settings/"
    assert owner.get(url).json()["min_validation_labels"] == 20
    bad = owner.patch(url, {"bootstrap_resamples": 10}, format="json")
    assert bad.status_code == 400 and "at least 1000" in bad.json()["message"]
    bad = owner.patch(url, {"min_validation_labels": "many"}, format="json")
    assert bad.status_code == 400 and "whole number" in bad.json()["message"]
    good = owner.patch(url, {"min_validation_labels": 50, "warm_start": "serving"}, format="json")
    assert good.status_code == 200, good.content
    assert good.json()["min_validation_labels"] == 50 and good.json()["warm_start"] == "serving"
    annotator = api_for(member("someone", "annotator"))
    assert annotator.patch(url, {"min_validation_labels": 1}, format="json").status_code == 403
    assert loop_settings.loop_settings(project).min_validation_labels == 50


def test_loop_settings_are_checked(project, member):
    lead = member("boss", "lead")
    with pytest.raises(InvalidInput, match="at least 1000"):
        loop_settings.update_loop_settings(project=project, changed_by=lead, bootstrap_resamples=99)
    with pytest.raises(InvalidInput, match="latest, serving"):
        loop_settings.update_loop_settings(project=project, changed_by=lead, warm_start="best")
    with pytest.raises(InvalidInput, match="unknown loop settings: magic"):
        loop_settings.update_loop_settings(project=project, changed_by=lead, magic=1)
    assert loop_settings.loop_settings(project).min_validation_labels == 20
    loop_settings.update_loop_settings(project=project, changed_by=lead, min_validation_labels=5)
    assert loop_settings.loop_settings(project).min_validation_labels == 5


def test_a_thinly_validated_version_waits_and_the_next_cycle_builds_on_it(
    loop_project, member, api_for
):
    # Three validation labels, the default floor of 20: version 1 is not promoted.
    loop_settings.update_loop_settings(project=loop_project, min_validation_labels=20)
    first = run_whole_cycle(cycles.trigger_cycle(project=loop_project))
    assert first.status == RetrainingCycle.Status.SUCCEEDED, first.error
    v1 = first.model_version
    assert v1.status == ModelVersion.Status.CANDIDATE
    assert versions.promoted_version(loop_project) is None
    log = " ".join(first.log)
    assert "3 validation labels, fewer than the 20" in log and "waiting for a model owner" in log
    check = first.outcome["promotion_check"]
    assert check["validation_labels"] == 3 and check["min_validation_labels"] == 20
    assert check["waiting_for_owner"] and not check["passed"]
    assert sum(check["positives"].values()) > 0 and set(check["positives"]) == set(
        loop_project.finding_keys
    )
    v1.refresh_from_db()
    assert v1.promotion_check == check

    # The next cycle starts from that candidate (it saw every label), and says so.
    second = run_whole_cycle(cycles.trigger_cycle(project=loop_project))
    v2 = second.model_version
    assert v2.parent == v1 and "latest version 1" in v2.parent_reason
    assert "warm start from version 1" in " ".join(second.log)
    assert second.outcome["parent_version"] == 1
    # The Models page data shows the lineage and the numbers the owner decides on.
    lineage = {entry.number: entry for entry in model_dashboard.lineage(loop_project)}
    assert lineage[2].parent == 1 and "latest version 1" in lineage[2].parent_reason
    assert lineage[1].promotion_check["reason"].startswith("3 validation labels")

    # A model owner can still promote by hand.
    owner = api_for(member("owner1", "model_owner"))
    response = owner.post(f"/api/projects/{loop_project.pk}/model-versions/1/promote/")
    assert response.status_code == 200, response.content
    assert versions.promoted_version(loop_project) == v1


def test_warm_start_prefers_the_latest_version_only_when_it_saw_the_serving_labels(loop_project):
    def version(number: int, labels: list[int], status: str = "candidate", **extra):
        return ModelVersion.objects.create(
            project=loop_project,
            number=number,
            status=status,
            label_snapshot=[[pk, 1] for pk in labels],
            label_count=len(labels),
            **extra,
        )

    serving = version(1, [1, 2, 3], status="promoted")
    version(2, [1, 2])  # trained before label 3 came back, say
    start = versions.choose_warm_start(project=loop_project, serving=serving, mode="latest")
    assert start.version == serving and "did not see every label" in start.reason
    worse = version(3, [1, 2, 3, 4], promotion_check={"bootstrap": {"high": -0.05}})
    start = versions.choose_warm_start(project=loop_project, serving=serving, mode="latest")
    assert start.version == serving and "worse than the serving version" in start.reason
    worse.promotion_check = {"bootstrap": {"low": -0.02, "high": 0.04}}
    worse.save()
    start = versions.choose_warm_start(project=loop_project, serving=serving, mode="latest")
    assert start.version == worse and "every label of serving version 1" in start.reason
    start = versions.choose_warm_start(project=loop_project, serving=serving, mode="serving")
    assert start.version == serving
    worse.status = ModelVersion.Status.RETIRED  # promoted, then rolled back from
    worse.save()
    start = versions.choose_warm_start(project=loop_project, serving=serving, mode="latest")
    assert start.version == serving and "rolled back" in start.reason
