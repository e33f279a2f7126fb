"""Double reading: two annotators read a case independently (``Case.required_reads == 2``, chosen
at ingest by ``Project.double_read_fraction``); when both reads are in, they are compared and the
case either counts as agreed or goes to the adjudication queue, where a reviewer makes the final
label. Until then the case is neither trained on nor exported.

The figures come from :mod:`annotations.agreement` (box F1 at IoU 0.5 with one-to-one matching,
Cohen's kappa per finding, ROUGE-L and word edit distance of the reports), the same code that
reads the VinDr-CXR multi-reader set."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from annotations import agreement
from annotations.models import Annotation, AnnotationRevision, Box, Case, DoubleRead, Project
from annotations.services import annotate, audit, ethics, loop_signals, volume_boxes
from annotations.services.errors import Conflict, InvalidInput, NotAllowed
from medloop.metrics.summaries import mean_of_known

READ_STATUSES = (Annotation.Status.SUBMITTED, Annotation.Status.ACCEPTED)
IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class Comparison:
    box: agreement.BoxAgreement
    findings_differing: list[str]
    report: agreement.ReportSimilarity


def reads_of(case: Case) -> QuerySet[Annotation]:
    """The case's independent reads that are in (submitted or accepted), first submitted first;
    an adjudicator's final label is not a read."""
    return (
        Annotation.objects.filter(case=case, status__in=READ_STATUSES, is_adjudication=False)
        .select_related("annotator")
        .prefetch_related("boxes")
        .order_by(F("submitted_at").asc(nulls_last=True), "id")
    )


def _boxes_by_image(
    annotation: Annotation,
) -> dict[tuple[str, int, int], list[agreement.Box | agreement.Box3D]]:
    """The read's boxes by image and frame; 3D boxes by series, in voxels (z: the slices from
    the first, 0-based, depth: how many), so that they are matched by 3D IoU."""
    images: dict[tuple[str, int, int], list[agreement.Box | agreement.Box3D]] = defaultdict(list)
    for box in annotation.boxes.all():
        if box.series_id is not None and box.slice_first is not None and box.slice_last:
            depth = box.slice_last - box.slice_first + 1
            images[("series", box.series_id, 0)].append(
                (box.finding, box.x, box.y, box.slice_first - 1, box.width, box.height, depth)
            )
            continue
        images[("image", box.instance_id, box.frame)].append(
            (box.finding, box.x, box.y, box.width, box.height)
        )
    return images


def report_text(project: Project, annotation: Annotation) -> str:
    """The report's sections in the schema's order, as one text."""
    keys = project.report_section_keys or sorted(annotation.report)
    return "\n".join(str(annotation.report.get(key, "")) for key in keys).strip()


def compare(project: Project, a: Annotation, b: Annotation) -> Comparison:
    """Agreement of two reads of one case: boxes matched per image and finding class, the
    findings called differently (a missing call differs from any call), report similarity."""
    boxes_a, boxes_b = _boxes_by_image(a), _boxes_by_image(b)
    per_image = [
        agreement.box_f1(boxes_a.get(image, []), boxes_b.get(image, []), IOU_THRESHOLD)
        for image in sorted(set(boxes_a) | set(boxes_b))
    ]
    keys = list(project.finding_keys) or sorted(set(a.findings) | set(b.findings))
    differing = [key for key in keys if a.findings.get(key) != b.findings.get(key)]
    return Comparison(
        box=agreement.aggregate_box_agreement(per_image),
        findings_differing=differing,
        report=agreement.report_similarity(report_text(project, a), report_text(project, b)),
    )


def _reasons(project: Project, comparison: Comparison) -> list[str]:
    reasons = []
    if comparison.findings_differing:
        reasons.append("findings differ: " + ", ".join(comparison.findings_differing))
    if comparison.box.f1 < project.adjudication_box_f1:
        reasons.append(
            f"box F1 {comparison.box.f1:.2f} below {project.adjudication_box_f1:.2f}"
            f" ({comparison.box.matched} matched of {comparison.box.boxes_a}"
            f" and {comparison.box.boxes_b})"
        )
    if comparison.report.rouge_l_f1 < project.adjudication_report_rouge:
        reasons.append(
            f"report ROUGE-L {comparison.report.rouge_l_f1:.2f}"
            f" below {project.adjudication_report_rouge:.2f}"
        )
    return reasons


def record_reads(case: Case) -> DoubleRead | None:
    """Compare the first two reads of a double-read case once both are in; call inside the
    transaction that changed a read, with the case row locked. An adjudicated case keeps its
    final label; a pending one is compared again (a returned read may come back agreeing)."""
    if case.required_reads < 2:
        return None
    existing = DoubleRead.objects.filter(case=case).first()
    if existing is not None and existing.status == DoubleRead.Status.ADJUDICATED:
        return existing
    reads = list(reads_of(case)[:2])
    if len(reads) < 2:
        if existing is not None:  # a read was returned: the case waits for it again
            existing.delete()
        return None
    project = case.project
    comparison = compare(project, reads[0], reads[1])
    reasons = _reasons(project, comparison)
    fields: dict[str, Any] = {
        "read_a": reads[0],
        "read_b": reads[1],
        "status": DoubleRead.Status.PENDING if reasons else DoubleRead.Status.AGREED,
        "box_f1": comparison.box.f1,
        "report_rouge_l": comparison.report.rouge_l_f1,
        "report_edit_distance": comparison.report.word_edit_distance,
        "findings_differing": comparison.findings_differing,
        "reasons": reasons,
        "detail": {
            "per_class": {
                finding: {"matched": c.matched, "boxes_a": c.boxes_a, "boxes_b": c.boxes_b}
                for finding, c in comparison.box.per_class.items()
            }
        },
    }
    double_read, _ = DoubleRead.objects.update_or_create(case=case, defaults=fields)
    audit.record(
        action="case.double_read",
        target=case,
        project_id=case.project_id,
        detail={"status": double_read.status, "reasons": reasons},
    )
    return double_read


def adjudicate(
    *,
    double_read: DoubleRead,
    adjudicator: User,
    use: int | None = None,
    findings: dict[str, Any] | None = None,
    report: dict[str, Any] | None = None,
    boxes: list[annotate.BoxInput] | None = None,
) -> Annotation:
    """Make the final label of a double-read case in disagreement: either adopt one read
    (``use``: its annotation id) or give the content (findings, report and boxes, each
    required). The label is an accepted annotation by the adjudicator, flagged
    ``is_adjudication``, with a revision; the case then trains and exports with it."""
    case = double_read.case
    ethics.require_current_approval(project=case.project, actor=adjudicator, activity="annotation")
    readers = {double_read.read_a.annotator_id, double_read.read_b.annotator_id}
    if adjudicator.pk in readers:
        raise NotAllowed("A reader of this case cannot adjudicate it; ask another reviewer.")
    if use is not None:
        source = {
            double_read.read_a_id: double_read.read_a,
            double_read.read_b_id: double_read.read_b,
        }
        chosen = source.get(use)
        if chosen is None:
            raise InvalidInput(
                f"'use' must name one of the two reads ({sorted(source)}), got {use}."
            )
        findings, report = dict(chosen.findings), dict(chosen.report)
        boxes = [
            annotate.BoxInput(
                b.instance_id,
                b.x,
                b.y,
                b.width,
                b.height,
                b.finding,
                b.frame,
                slices=volume_boxes.slice_range(b),
            )
            for b in chosen.boxes.all()
        ]
    missing = [
        name
        for name, part in (("findings", findings), ("report", report), ("boxes", boxes))
        if part is None
    ]
    if missing:
        raise InvalidInput(
            "An adjudication needs 'use' (one read's id) or the whole final label;"
            f" missing: {', '.join(missing)}."
        )
    changes, new_boxes = annotate.validated_changes(case, findings, report, boxes)
    with transaction.atomic():
        locked = DoubleRead.objects.select_for_update().get(pk=double_read.pk)
        if locked.status != DoubleRead.Status.PENDING:
            raise Conflict(
                f"This case is not awaiting adjudication ({locked.get_status_display().lower()})."
            )
        annotation, created = Annotation.objects.get_or_create(
            case=case, annotator=adjudicator, defaults={"is_adjudication": True}
        )
        if not created and not annotation.is_adjudication:
            raise NotAllowed("You have your own read of this case; another reviewer adjudicates.")
        now = timezone.now()
        for field, value in changes.items():
            setattr(annotation, field, value)
        annotation.status = Annotation.Status.ACCEPTED
        annotation.reviewed_by = adjudicator
        annotation.submitted_at = now
        annotation.version = annotation.version + (0 if created else 1)
        annotation.rejected_suggestion_boxes = []
        annotation.save()
        annotation.boxes.all().delete()
        for box in new_boxes or []:
            box.annotation = annotation
            box.origin = Box.Origin.DRAWN
            box.suggestion_box_id = ""
        Box.objects.bulk_create(new_boxes or [])
        content = annotate.snapshot(annotation)
        content["adjudication"] = {
            "double_read": locked.pk,
            "reads": [locked.read_a_id, locked.read_b_id],
            "adopted": use,
        }
        AnnotationRevision.objects.create(
            annotation=annotation,
            version=annotation.version,
            content=content,
            submitted_by=adjudicator,
        )
        locked.status = DoubleRead.Status.ADJUDICATED
        locked.final_annotation = annotation
        locked.adjudicated_by = adjudicator
        locked.adjudicated_at = now
        locked.save()
        audit.record(
            action="case.adjudicate",
            actor=adjudicator,
            target=case,
            project_id=case.project_id,
            detail={"double_read": locked.pk, "annotation": annotation.pk, "adopted": use},
        )
        loop_signals.labels_submitted(case.project_id)
    double_read.refresh_from_db()
    return annotation


# --------------------------------------------------------------------------- project agreement
def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


def project_agreement(project: Project) -> dict[str, Any]:
    """Agreement between readers over the project's double-read cases: counts by status, box F1
    (micro over cases, overall and per class), Cohen's kappa per finding, report similarity."""
    rows = list(DoubleRead.objects.filter(case__project=project).select_related("read_a", "read_b"))
    status_counts = {status: 0 for status in DoubleRead.Status.values}
    per_class: dict[str, agreement.BoxCounts] = {}
    total = agreement.BoxCounts()
    pairs: dict[str, list[tuple[agreement.Read, agreement.Read]]] = {
        key: [] for key in project.finding_keys
    }
    for row in rows:
        status_counts[row.status] += 1
        for finding, c in row.detail.get("per_class", {}).items():
            counts = agreement.BoxCounts(c["matched"], c["boxes_a"], c["boxes_b"])
            per_class[finding] = per_class.get(finding, agreement.BoxCounts()) + counts
            total += counts
        for key in pairs:
            pairs[key].append((row.read_a.findings.get(key), row.read_b.findings.get(key)))
    kappas = agreement.finding_kappa(pairs)
    return {
        "cases": len(rows),
        "double_read_cases": Case.objects.filter(project=project, required_reads__gte=2).count(),
        "status_counts": status_counts,
        "box_f1": total.f1 if rows else None,
        "box_f1_per_class": {
            finding: {"f1": c.f1, "matched": c.matched, "boxes": c.boxes_a + c.boxes_b}
            for finding, c in sorted(per_class.items())
        },
        "kappa_per_finding": {
            key: {
                "kappa": _finite(k.kappa),
                "cases": k.cases,
                "excluded": k.excluded,
                "observed_agreement": _finite(k.observed_agreement),
                "undefined": k.undefined,
            }
            for key, k in kappas.items()
        },
        "report_rouge_l": mean_of_known(r.report_rouge_l for r in rows),
        "report_edit_distance": mean_of_known(r.report_edit_distance for r in rows),
    }
