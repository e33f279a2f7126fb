"""Ranking reads what scoring stored: the box score comes from every stored candidate against
the version's operating thresholds (a likely miss outranks a clean case), and the
class-balanced strategy brings the rare finding into the batch, counting the project's
labelled positives per finding."""

from __future__ import annotations

import pytest

from active_learning.models import ModelVersion, Suggestion
from active_learning.services import loop_settings, ranking, versions
from annotations.models import Case
from tests.support.labels import submit_ground_truth

pytestmark = pytest.mark.django_db

OPERATING = {
    "boxes": {
        "nodule": {"threshold": 0.5, "reliable": True},
        "pneumothorax": {"threshold": None, "reliable": False},
    }
}


def _candidate(finding: str, score: float, instability: float = 0.2) -> dict:
    return {
        "finding": finding, "x": 10, "y": 10, "width": 8, "height": 8, "score": score,
        "uncertainty": {"localization_instability": instability, "class_entropy": 0.1},
    }  # fmt: skip


def test_a_stored_likely_miss_scores_above_a_clean_case_from_its_candidates():
    thresholds = {"nodule": 0.5}
    missed = {
        "acquisition_score": 0.5,
        "boxes": [],
        "finding_probabilities": {"nodule": 0.7, "pneumothorax": 0.01},
        "uncertainty": {"candidates": [_candidate("nodule", 0.35)]},
    }
    clean = {
        "acquisition_score": 0.5,
        "boxes": [],
        "finding_probabilities": {"nodule": 0.03, "pneumothorax": 0.01},
        "uncertainty": {"candidates": [_candidate("nodule", 0.02, 1.0)]},
    }
    old_style = {  # stored before candidates were kept: the shown box stands in
        "acquisition_score": None,
        "boxes": [_candidate("nodule", 0.9, 0.05)],
        "finding_probabilities": {"nodule": 0.9},
        "uncertainty": {},
    }
    missed_scores = ranking.suggestion_scores(missed, thresholds)
    clean_scores = ranking.suggestion_scores(clean, thresholds)
    assert missed_scores["boxes"] > 0.8 > 0.3 > clean_scores["boxes"]
    assert missed_scores["p:nodule"] == 0.7 and missed_scores["case_score"] == 0.5
    assert 0 < ranking.suggestion_scores(old_style, thresholds)["boxes"] < 0.6


def test_class_balanced_ranking_brings_the_rare_finding_into_the_batch(
    project, cases, member, synthetic_dir
):
    lead = member("boss", "lead")
    loop_settings.update_loop_settings(
        project=project,
        changed_by=lead,
        acquisition_strategy="class-balanced",
        auto_retrain_threshold=4,
    )
    submit_ground_truth(
        project=project, cases=cases, synthetic_dir=synthetic_dir,
        annotator=member("reader", "annotator"), count=2,
    )  # fmt: skip
    version = ModelVersion.objects.create(
        project=project,
        number=1,
        status=ModelVersion.Status.PROMOTED,
        metrics={"validation": {"operating_points": OPERATING}},
    )
    positives = ranking.labelled_positives(project)
    assert set(positives) == set(project.finding_keys) and sum(positives.values()) > 0
    # The finding with the fewest labelled positives (ties by name, as the strategy breaks them).
    rare_finding = min(project.finding_keys, key=lambda key: (positives[key], key))
    open_cases = list(Case.objects.filter(project=project, state=Case.State.OPEN).order_by("pk"))
    rare = open_cases[-1]
    for index, case in enumerate(open_cases):
        is_rare = case == rare
        probabilities = {key: 0.3 for key in project.finding_keys}
        probabilities[rare_finding] = 0.6 if is_rare else 0.01
        Suggestion.objects.create(
            case=case,
            model_version=version,
            finding_probabilities=probabilities,
            # The rare case is the one the model is surest of.
            acquisition_score=0.1 if is_rare else 0.5 + index / 100,
            uncertainty={"candidates": [_candidate("nodule", 0.4)]},
        )
    assert versions.promoted_version(project) == version

    ranking.rerank_project(project, strategy="uncertainty")
    top = [c.pk for c in Case.objects.filter(pk__in=[c.pk for c in open_cases])
           .order_by("-priority")[:4]]  # fmt: skip
    assert rare.pk not in top
    ranking.rerank_project(project)  # the project's strategy: class-balanced
    top = [c.pk for c in Case.objects.filter(pk__in=[c.pk for c in open_cases])
           .order_by("-priority")[:4]]  # fmt: skip
    assert rare.pk in top


def test_validation_cases_are_served_at_their_share_whatever_the_model_thinks(project, cases):
    open_cases = list(Case.objects.filter(project=project, state=Case.State.OPEN).order_by("pk"))
    assert len(open_cases) >= 6
    held = open_cases[:2]
    Case.objects.filter(pk__in=[c.pk for c in held]).update(is_validation=True)
    project.validation_fraction = 0.25
    project.save(update_fields=["validation_fraction"])
    version = ModelVersion.objects.create(
        project=project, number=1, status=ModelVersion.Status.PROMOTED,
        metrics={"validation": {"operating_points": OPERATING}},
    )  # fmt: skip
    for index, case in enumerate(open_cases):
        Suggestion.objects.create(
            case=case,
            model_version=version,
            finding_probabilities={key: 0.3 for key in project.finding_keys},
            # The model finds the validation cases the most worth labelling.
            acquisition_score=0.99 if case in held else 0.1 + index / 100,
            uncertainty={"candidates": [_candidate("nodule", 0.4)]},
        )

    ranking.rerank_project(project, strategy="uncertainty")
    served = list(
        Case.objects.filter(pk__in=[c.pk for c in open_cases])
        .order_by("-priority").values_list("pk", flat=True)
    )  # fmt: skip
    # Not first for being uncertain: the 4th and the 8th of the queue (a quarter of the labels).
    positions = sorted(served.index(c.pk) for c in held)
    assert positions == [3, 7] if len(served) >= 8 else positions[0] == 3
    # The training cases keep the strategy's order: most uncertain (highest score) first.
    training = [pk for pk in served if pk not in {c.pk for c in held}]
    assert training == sorted(training, reverse=True)
