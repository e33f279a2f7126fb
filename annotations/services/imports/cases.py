"""Writing imported labels, whatever file they came from: one submitted annotation per case by
the importing user, through the annotate service as a human submission (a frozen revision,
the queue state refreshed, the loop told), and the report of what was done or skipped.

Findings: ``present`` for every finding with a box, ``absent`` for every other finding of
the schema (a box file says nothing more; an image listed without boxes is a negative).

Skipped, with the reason in the report: cases that already carry a human label (submitted,
accepted, or returned to its annotator for correction), cases another annotator is reading
now (leased), and cases with a matched image in quarantine."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest
from django.utils import timezone

from annotations.models import Annotation, Case, Project
from annotations.services import annotate, audit
from annotations.services.errors import InvalidInput
from annotations.services.imports.matching import Unmatched

# Labels a human gave: a case with one of these is never given an imported label.
HUMAN_LABEL_STATUSES = (
    Annotation.Status.SUBMITTED,
    Annotation.Status.ACCEPTED,
    Annotation.Status.RETURNED,
)


@dataclass
class CasePlan:
    """What one case would get: boxes in pixels of its stored images, from these files."""

    case: Case
    file_names: list[str] = field(default_factory=list)
    boxes: list[annotate.BoxInput] = field(default_factory=list)
    quarantined: str = ""  # the file name of a matched image in quarantine


@dataclass(frozen=True)
class SkippedCase:
    case_id: int
    reason: str
    file_names: list[str]
    boxes: int


@dataclass
class ImportReport:
    """What an import did (or, for a dry run, would do). ``matched_by`` counts images per
    matching rule; ``scaled_images`` those whose size differs from the stored image's."""

    format: str
    dry_run: bool
    images: int
    matched: int
    matched_by: dict[str, int]
    scaled_images: int
    categories: dict[str, str]
    imported_cases: list[int] = field(default_factory=list)
    annotation_ids: list[int] = field(default_factory=list)
    boxes: int = 0
    cases_without_boxes: int = 0
    boxes_not_imported: int = 0
    skipped: list[SkippedCase] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def lock_cases(project: Project, case_ids: Iterable[int]) -> dict[int, Case]:
    """The cases, locked until the transaction ends so the queue cannot hand one out (or an
    annotator submit it) while its label is being imported."""
    locked = {c.pk: c for c in Case.objects.select_for_update().filter(pk__in=sorted(case_ids))}
    for case in locked.values():
        case.project = project
    return locked


def skip_reasons(plans: dict[int, CasePlan], actor: User) -> dict[int, str]:
    """{case id: why it is not imported}. Raises InvalidInput for a case that would get more
    boxes than an annotation holds."""
    reasons: dict[int, str] = {}
    labelled = (
        Annotation.objects.filter(case_id__in=plans, status__in=HUMAN_LABEL_STATUSES)
        .order_by("case_id", "id")
        .values_list("case_id", "status", "annotator__username")
    )
    for case_id, status, username in labelled:
        verb = "returned to" if status == Annotation.Status.RETURNED else f"{status} by"
        reasons.setdefault(case_id, f"already labelled ({verb} {username})")
    now = timezone.now()
    holders = dict(User.objects.filter(leased_cases__in=plans).values_list("pk", "username"))
    for case_id, plan in plans.items():
        case = plan.case
        if case_id in reasons:
            continue
        if (
            case.leased_to_id is not None
            and case.leased_to_id != actor.pk
            and case.lease_expires_at is not None
            and case.lease_expires_at > now
        ):
            holder = holders.get(case.leased_to_id, "another annotator")
            reasons[case_id] = f"{holder} is reading it now (leased)"
        elif plan.quarantined:
            reasons[case_id] = (
                f"image {plan.quarantined} is in quarantine; a lead must clear it first"
            )
        elif len(plan.boxes) > annotate.MAX_BOXES:
            raise InvalidInput(
                f"Case {case_id} ({', '.join(plan.file_names)}) would get {len(plan.boxes)} "
                f"boxes; an annotation holds at most {annotate.MAX_BOXES}."
            )
    return reasons


def _submit(plan: CasePlan, actor: User, finding_keys: list[str]) -> int:
    present = {box.finding for box in plan.boxes}
    annotation = annotate.start_annotation(case=plan.case, annotator=actor)
    annotate.submit(
        annotation=annotation,
        actor=actor,
        expected_version=annotation.version,
        findings={key: "present" if key in present else "absent" for key in finding_keys},
        boxes=plan.boxes,
    )
    return annotation.pk


def write_labels(
    *,
    project: Project,
    plans: dict[int, CasePlan],
    report: ImportReport,
    actor: User,
    request: HttpRequest | None = None,
) -> None:
    """Submit each plan not skipped (unless ``report.dry_run``) and fill in ``report``; a real
    import is audited once as ``labels.import`` with its counts. Call inside the transaction
    that locked the plans' cases."""
    reasons = skip_reasons(plans, actor)
    for case_id, plan in sorted(plans.items()):
        if case_id in reasons:
            report.skipped.append(
                SkippedCase(case_id, reasons[case_id], plan.file_names, len(plan.boxes))
            )
            report.boxes_not_imported += len(plan.boxes)
            continue
        report.imported_cases.append(case_id)
        report.boxes += len(plan.boxes)
        report.cases_without_boxes += int(not plan.boxes)
        if not report.dry_run:
            report.annotation_ids.append(_submit(plan, actor, project.finding_keys))
    if not report.dry_run:
        audit.record(
            action="labels.import",
            actor=actor,
            target=project,
            project_id=project.pk,
            request=request,
            detail=_audit_detail(report),
        )


def _audit_detail(report: ImportReport) -> dict[str, Any]:
    """Counts and ids only: file names may carry identifiers, the audit trail never does."""
    return {
        "format": report.format,
        "images": report.images,
        "matched": report.matched,
        "matched_by": report.matched_by,
        "unmatched": len(report.unmatched),
        "cases": len(report.imported_cases),
        "boxes": report.boxes,
        "cases_without_boxes": report.cases_without_boxes,
        "skipped": len(report.skipped),
        "categories": report.categories,
        "annotation_ids": report.annotation_ids,
    }
