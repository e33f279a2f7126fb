"""Labels as an annotator gives them: cases read through the queue and submitted with the
synthetic ground truth (boxes, findings, report), for tests that train a model version."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth.models import AbstractUser

from active_learning.ml import synthetic
from active_learning.services import case_inputs
from annotations.models import Case, Project
from annotations.services import annotate, queue

# A model small enough to train in seconds on the CPU (128-pixel synthetic cases).
# train_steps: cycles count optimisation steps now; 4 is what one epoch of these few labels gave.
TINY_MODEL = {
    "input_size": 128,
    "vocab_size": 500,
    "report_max_tokens": 100,
    "batch_size": 4,
    "train_steps": 4,
}


def submit_ground_truth(
    *,
    project: Project,
    cases: list[Case],
    synthetic_dir: Path,
    annotator: AbstractUser,
    count: int,
) -> list[Case]:
    """``count`` cases leased by ``annotator`` and submitted with their ground truth; returns
    the cases submitted."""
    manifest = synthetic.load_manifest(synthetic_dir)
    truth = {case.pk: item for case, item in zip(cases, manifest, strict=True)}
    done = []
    for _ in range(count):
        case = queue.lease_next_case(project=project, annotator=annotator)
        assert case is not None
        item = truth[case.pk]
        annotation = annotate.start_annotation(case=case, annotator=annotator)
        instance = case_inputs.first_instance(case)
        annotate.submit(
            annotation=annotation,
            actor=annotator,
            expected_version=annotation.version,
            findings={k: "present" if v else "absent" for k, v in item["findings"].items()},
            report=item["report"],
            boxes=[
                annotate.BoxInput(
                    instance_id=instance.pk,
                    x=b["x"],
                    y=b["y"],
                    width=b["width"],
                    height=b["height"],
                    finding=b["finding"],
                )
                for b in item["boxes"]
            ],
        )
        done.append(case)
    return done


def make_loop_project(
    *,
    project: Project,
    cases: list[Case],
    synthetic_dir: Path,
    lead: AbstractUser,
    annotator: AbstractUser,
    **settings: object,
) -> Project:
    """``project`` set up for retraining cycles: the tiny model, one epoch, the hybrid strategy
    (``settings`` override), its first three cases held out for validation (and accepted as
    enough for automatic promotion), and nine cases
    submitted with their ground truth (the three validation cases, then six training labels)."""
    Case.objects.filter(pk__in=[c.pk for c in cases[:3]]).update(is_validation=True)
    # Its owner accepts its three validation labels as enough for automatic promotion (the
    # default is 20; tests of the promotion guard raise it again).
    from active_learning.services.loop_settings import update_loop_settings

    update_loop_settings(
        project=project,
        changed_by=lead,
        **{
            "model_config": TINY_MODEL,
            "training_epochs": 1,
            "acquisition_strategy": "hybrid",
            "auto_retrain_threshold": 0,
            "min_validation_labels": 3,
            **settings,
        },
    )
    # The validation cases come first in the queue (first in, first out).
    submit_ground_truth(
        project=project, cases=cases, synthetic_dir=synthetic_dir, annotator=annotator, count=9
    )
    project.refresh_from_db()
    return project
