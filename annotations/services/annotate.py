"""Annotating a case: the annotator's working copy (draft), submission, and review.

Every write is a compare-and-swap on ``Annotation.version`` (the ETag): a write that names an
older version is refused with PreconditionFailed, so nothing is ever silently overwritten."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotations.models import Annotation, AnnotationRevision, Box, Case, Instance
from annotations.services import (
    audit,
    consent,
    double_reading,
    ethics,
    loop_signals,
    queue,
    shown_suggestions,
    volume_boxes,
)
from annotations.services.errors import (
    Conflict,
    InvalidInput,
    NotAllowed,
    PreconditionFailed,
    PreconditionRequired,
)
from medloop.compiled_queries import CompiledInsert, CompiledQuery, prime_related

FINDING_STATES = ("present", "absent", "uncertain")
MAX_REPORT_SECTION_CHARS = 20_000
MAX_BOXES = 500


@dataclass(frozen=True)
class BoxInput:
    instance_id: int
    x: float
    y: float
    width: float
    height: float
    finding: str
    frame: int = 1
    origin: str = Box.Origin.DRAWN
    suggestion_box_id: str = ""
    # A 3D box: [first, last] slices of the instance's series (1-based, position order).
    slices: tuple[int, int] | list[int] | None = None


# The working copy with the suggestion it was shown, and a case's visible images: read on every
# hand-out and submit, compiled once (medloop.compiled_queries).
_WORKING_COPY_WITH_SUGGESTION = CompiledQuery(
    lambda *, case_id, annotator_id: Annotation.objects.filter(
        case_id=case_id, annotator_id=annotator_id
    ).select_related("shown_suggestion")[:1]
)
# A submission's boxes: one INSERT ... VALUES (bulk_create's UNNEST costs more for a few rows).
_INSERT_BOXES = CompiledInsert(Box)
_INSERT_WORKING_COPY = CompiledInsert(Annotation, ignore_conflicts=True)
_VISIBLE_IMAGES = CompiledQuery(
    lambda *, study_id: Instance.objects.filter(series__study_id=study_id, quarantined=False)
)


def start_annotation(*, case: Case, annotator: User, with_suggestion: bool = False) -> Annotation:
    """The annotator's working copy for ``case``, created empty on first use.

    ``with_suggestion``: the caller reads the annotation's boxes and the model's suggestion it
    was shown right away (an API answer, a submission): the suggestion is read in the same query
    as the annotation, and a working copy created here is known to have neither (no query)."""
    if with_suggestion:
        found = _WORKING_COPY_WITH_SUGGESTION.fetch(case_id=case.pk, annotator_id=annotator.pk)
        annotation = found[0] if found else None
    else:
        annotation = Annotation.objects.filter(case=case, annotator=annotator).first()
    if annotation is not None:
        annotation.case = case
        annotation.annotator = annotator
        return annotation
    # INSERT ... ON CONFLICT DO NOTHING: when two tabs race to create it, the other one's is
    # used; no savepoint needed (a unique-constraint error would abort the transaction).
    annotation = Annotation(case=case, annotator=annotator)
    created = _INSERT_WORKING_COPY.insert([annotation]) == 1
    if not created:
        annotation = Annotation.objects.get(case=case, annotator=annotator)
    annotation.case = case
    annotation.annotator = annotator
    if created and with_suggestion:
        # Nothing hangs off a new working copy yet: no boxes, no suggestion shown.
        cache_boxes(annotation, [])
        annotation._state.fields_cache["shown_suggestion"] = None
    if created:
        audit.record(
            action="annotation.create",
            actor=annotator,
            target=annotation,
            project_id=case.project_id,
        )
    return annotation


def cache_boxes(annotation: Annotation, boxes: list[Box]) -> None:
    """Let ``annotation.boxes.all()`` answer ``boxes`` (what the database now holds for it)
    without a query, as ``prefetch_related`` would."""
    prime_related(annotation, "boxes", boxes)


def _validate_findings(case: Case, findings: dict[str, Any]) -> dict[str, str]:
    allowed = set(case.project.finding_keys)
    clean = {}
    for key, state in findings.items():
        if key not in allowed:
            raise InvalidInput(f"Unknown finding {key!r}; this project has {sorted(allowed)}.")
        if state not in FINDING_STATES:
            raise InvalidInput(
                f"Finding {key!r} must be one of {list(FINDING_STATES)}, got {state!r}."
            )
        clean[key] = state
    return clean


def _validate_report(case: Case, report: dict[str, Any]) -> dict[str, str]:
    allowed = set(case.project.report_section_keys)
    clean = {}
    for key, text in report.items():
        if key not in allowed:
            raise InvalidInput(f"Unknown report section {key!r}; expected {sorted(allowed)}.")
        if not isinstance(text, str):
            raise InvalidInput(f"Report section {key!r} must be text.")
        if len(text) > MAX_REPORT_SECTION_CHARS:
            raise InvalidInput(
                f"Report section {key!r} is longer than {MAX_REPORT_SECTION_CHARS} characters."
            )
        clean[key] = text
    return clean


def _validate_boxes(case: Case, boxes: list[BoxInput]) -> list[Box]:
    if len(boxes) > MAX_BOXES:
        raise InvalidInput(f"At most {MAX_BOXES} boxes per annotation.")
    instances = {i.pk: i for i in _VISIBLE_IMAGES.fetch(study_id=case.study_id)}
    allowed = set(case.project.finding_keys)
    built = []
    volumes: dict[int, volume_boxes.SeriesVolume] = {}
    for n, box in enumerate(boxes):
        where = f"boxes[{n}]"
        instance = instances.get(box.instance_id)
        if instance is None:
            raise InvalidInput(f"{where}: image {box.instance_id} is not part of this case.")
        if box.finding not in allowed:
            raise InvalidInput(f"{where}: unknown finding {box.finding!r}.")
        if not 1 <= box.frame <= instance.number_of_frames:
            raise InvalidInput(
                f"{where}: frame {box.frame} outside 1..{instance.number_of_frames}."
            )
        if box.width <= 0 or box.height <= 0:
            raise InvalidInput(f"{where}: width and height must be positive.")
        if (
            box.x < 0
            or box.y < 0
            or box.x + box.width > instance.columns
            or box.y + box.height > instance.rows
        ):
            raise InvalidInput(
                f"{where}: box lies outside the {instance.columns}x{instance.rows} image."
            )
        if box.origin not in Box.Origin.values:
            raise InvalidInput(f"{where}: origin must be one of {Box.Origin.values}.")
        row = Box(
            instance=instance,
            frame=box.frame,
            x=box.x,
            y=box.y,
            width=box.width,
            height=box.height,
            finding=box.finding,
            origin=box.origin,
            suggestion_box_id=box.suggestion_box_id,
        )
        if box.slices is not None:
            volume_boxes.place_volume_box(
                row, instance=instance, slices=box.slices, where=where, volumes=volumes
            )
        built.append(row)
    return built


def _compare_and_bump(annotation: Annotation, expected_version: int | None, **fields: Any) -> None:
    """Bump the version if it still is ``expected_version``; refuse otherwise."""
    if expected_version is None:
        raise PreconditionRequired(
            "Send If-Match with the annotation's ETag; writes without it are refused."
        )
    now = timezone.now()
    updated = Annotation.objects.filter(pk=annotation.pk, version=expected_version).update(
        version=F("version") + 1, updated_at=now, **fields
    )
    if updated == 0:
        current = Annotation.objects.filter(pk=annotation.pk).values_list("version", flat=True)
        raise PreconditionFailed(
            "This annotation was changed elsewhere since you loaded it; reload and merge.",
            current_version=next(iter(current), None),
        )
    annotation.version = expected_version + 1
    annotation.updated_at = now
    for field, value in fields.items():
        setattr(annotation, field, value)


def _check_editable(annotation: Annotation, actor: User) -> None:
    """Only the owner changes or submits an annotation, only while draft or returned, and only
    while the project's ethics approval is current."""
    if annotation.annotator_id != actor.pk:
        raise NotAllowed("Only the annotator who owns this annotation can change or submit it.")
    if annotation.status not in (Annotation.Status.DRAFT, Annotation.Status.RETURNED):
        raise Conflict(f"This annotation is {annotation.status}; it can no longer be changed.")
    ethics.require_current_approval(
        project=annotation.case.project, actor=actor, activity="annotation"
    )
    consent.check_case_open(annotation.case)


def validated_changes(
    case: Case,
    findings: dict[str, Any] | None,
    report: dict[str, Any] | None,
    boxes: list[BoxInput] | None,
    rejected_suggestion_boxes: list[str] | None = None,
) -> tuple[dict[str, Any], list[Box] | None]:
    changes: dict[str, Any] = {}
    if rejected_suggestion_boxes is not None:
        if len(rejected_suggestion_boxes) > MAX_BOXES:
            raise InvalidInput(f"At most {MAX_BOXES} rejected suggestion boxes.")
        changes["rejected_suggestion_boxes"] = sorted(
            {str(box_id)[:64] for box_id in rejected_suggestion_boxes}
        )
    if findings is not None:
        changes["findings"] = _validate_findings(case, findings)
    if report is not None:
        changes["report"] = _validate_report(case, report)
    return changes, (_validate_boxes(case, boxes) if boxes is not None else None)


def _replace_boxes(annotation: Annotation, new_boxes: list[Box] | None) -> None:
    if new_boxes is None:
        return
    Box.objects.filter(annotation=annotation).delete()
    for box in new_boxes:
        box.annotation = annotation
    _INSERT_BOXES.insert(new_boxes)
    cache_boxes(annotation, new_boxes)


def save_draft(
    *,
    annotation: Annotation,
    actor: User,
    expected_version: int | None,
    findings: dict[str, Any] | None = None,
    report: dict[str, Any] | None = None,
    boxes: list[BoxInput] | None = None,
    rejected_suggestion_boxes: list[str] | None = None,
) -> Annotation:
    """Replace the working copy's findings, report, boxes and/or rejected suggestion boxes
    (None leaves a part as it is).

    Renews the annotator's lease. Raises NotAllowed for someone else's annotation, Conflict
    when it is submitted or the case is leased to another annotator."""
    _check_editable(annotation, actor)
    case = annotation.case
    changes, new_boxes = validated_changes(case, findings, report, boxes, rejected_suggestion_boxes)
    with transaction.atomic():
        queue.renew_lease(case=case, annotator=actor)
        _compare_and_bump(annotation, expected_version, **changes)
        _replace_boxes(annotation, new_boxes)
        audit.record(
            action="annotation.save",
            actor=actor,
            target=annotation,
            project_id=case.project_id,
            detail={
                "version": annotation.version,
                "parts": sorted(changes) + (["boxes"] if new_boxes is not None else []),
            },
        )
    return annotation


def snapshot(annotation: Annotation) -> dict[str, Any]:
    """The annotation's content as plain JSON: findings, report and boxes."""
    return {
        "findings": annotation.findings,
        "report": annotation.report,
        "rejected_suggestion_boxes": annotation.rejected_suggestion_boxes,
        "boxes": [
            {
                "instance_id": b.instance_id,
                "frame": b.frame,
                "x": b.x,
                "y": b.y,
                "width": b.width,
                "height": b.height,
                "finding": b.finding,
                "origin": b.origin,
                "suggestion_box_id": b.suggestion_box_id,
                **volume_boxes.snapshot_fields(b),
            }
            for b in annotation.boxes.all()
        ],
    }


def submit(
    *,
    annotation: Annotation,
    actor: User,
    expected_version: int | None,
    findings: dict[str, Any] | None = None,
    report: dict[str, Any] | None = None,
    boxes: list[BoxInput] | None = None,
    rejected_suggestion_boxes: list[str] | None = None,
) -> Annotation:
    """Freeze the working copy as a revision, mark it submitted, free the lease.

    Final ``findings``, ``report`` or ``boxes`` may come with the submission; they are saved
    in the same transaction, under the same If-Match, as one version."""
    _check_editable(annotation, actor)
    case = annotation.case
    changes, new_boxes = validated_changes(case, findings, report, boxes, rejected_suggestion_boxes)
    # Inside the caller's transaction when there is one (the submit view's), without a savepoint
    # of its own: the refusals (leased to another, If-Match missing or stale) come before
    # anything is written and are raised once the block has ended, so a caller that handles
    # them keeps a usable transaction.
    refusal: Conflict | PreconditionRequired | PreconditionFailed | None = None
    with transaction.atomic(savepoint=False):
        try:
            # Lock the case: two reads of a double-read case submitted at once must see each
            # other. Its lease is read under the lock.
            lease = (
                Case.objects.select_for_update()
                .filter(pk=case.pk)
                .values_list("leased_to_id", "lease_expires_at")
                .first()
            )
            if (
                lease is not None
                and lease[1] is not None
                and lease[1] > timezone.now()
                and lease[0] != actor.pk
            ):
                raise Conflict("This case is leased to another annotator; it cannot be submitted.")
            _compare_and_bump(
                annotation,
                expected_version,
                status=Annotation.Status.SUBMITTED,
                submitted_at=timezone.now(),
                **changes,
            )
        except (Conflict, PreconditionRequired, PreconditionFailed) as refused:
            refusal = refused
        else:
            _submit_after_bump(annotation, actor, case, new_boxes)
    if refusal is not None:
        raise refusal
    return annotation


def _submit_after_bump(
    annotation: Annotation, actor: User, case: Case, new_boxes: list[Box] | None
) -> None:
    """The rest of ``submit``, in its transaction, once the new version is written."""
    _replace_boxes(annotation, new_boxes)
    # How far the submitted work is from what the model showed (for reviewers and for
    # acceptance per model version).
    shown_suggestions.summarise(annotation)
    AnnotationRevision.objects.create(
        annotation=annotation,
        version=annotation.version,
        content=snapshot(annotation),
        submitted_by=actor,
    )
    queue.free_lease(case=case, annotator=actor)
    queue.refresh_case_state(case)
    double_reading.record_reads(case)
    audit.record(
        action="annotation.submit",
        actor=actor,
        target=annotation,
        project_id=case.project_id,
        detail={"version": annotation.version},
    )
    loop_signals.labels_submitted(case.project_id)


def review(
    *,
    annotation: Annotation,
    reviewer: User,
    accept: bool,
    comment: str = "",
    expected_version: int | None,
) -> Annotation:
    """Accept a submitted annotation, or return it to its annotator with a comment."""
    ethics.require_current_approval(
        project=annotation.case.project, actor=reviewer, activity="annotation"
    )
    if annotation.annotator_id == reviewer.pk:
        raise NotAllowed("Reviewers cannot review their own annotations.")
    if annotation.status != Annotation.Status.SUBMITTED:
        raise Conflict(
            f"Only submitted annotations can be reviewed; this one is {annotation.status}."
        )
    if not accept and not comment.strip():
        raise InvalidInput("Returning an annotation needs a comment for its annotator.")
    status = Annotation.Status.ACCEPTED if accept else Annotation.Status.RETURNED
    with transaction.atomic():
        _compare_and_bump(
            annotation,
            expected_version,
            status=status,
            review_comment=comment.strip(),
            reviewed_by=reviewer,
        )
        queue.refresh_case_state(annotation.case)
        double_reading.record_reads(annotation.case)
        audit.record(
            action="annotation.accept" if accept else "annotation.return",
            actor=reviewer,
            target=annotation,
            project_id=annotation.case.project_id,
            detail={"comment": comment.strip()} if comment.strip() else {},
        )
    return annotation
