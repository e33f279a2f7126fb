"""The record of what a model showed an annotator, and how much the annotator changed it.

The loop serves a case's suggestion to the annotator's workspace and calls :func:`record_shown`
with exactly what it served (the model version by id and number, the boxes, the findings to
prefill, the draft). The record is kept on the server at serving time rather than sent back by
the workspace with the annotation: the server knows what it sent, whereas a client's account
could be missing (an API script, an old cached page) or wrong. The workspace shows the served
payload as it is, so what was served is what was shown.

At submission :func:`summarise` compares the submitted annotation with the record: the share of
shown boxes the annotator kept (a submitted box of the same finding on the same image at IoU >=
0.5), the share of prefilled findings they changed, the word edit distance of the report from
the draft, the model's confidence in what it showed, and one ``change`` figure, so reviewers can
sort and filter by them and acceptance per version is exact."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from annotations.agreement import box_f1, report_similarity
from annotations.models import Annotation, ShownSuggestion
from medloop.metrics.summaries import mean_of_known

KEPT_IOU = 0.5
EDITABLE = (Annotation.Status.DRAFT, Annotation.Status.RETURNED)


def record_shown(
    *,
    annotation: Annotation,
    model_version_pk: int,
    model_version_number: int,
    suggestion_pk: int | None,
    boxes: Sequence[Mapping[str, Any]],
    findings_prefilled: Mapping[str, str],
    finding_probabilities: Mapping[str, float],
    report_draft: Mapping[str, str],
    withheld: Sequence[Mapping[str, Any]] = (),
) -> ShownSuggestion | None:
    """Record (or replace) what the annotator of ``annotation`` is being shown now. Only while
    the annotation is a draft or returned: once submitted, the record is what they were shown
    when they submitted, and a later look at the case does not rewrite it. Returns the record,
    or None when the annotation can no longer change. Does not touch the annotation itself, so
    its ETag stays valid."""
    shown = {
        "model_version_pk": model_version_pk,
        "model_version_number": model_version_number,
        "suggestion_pk": suggestion_pk,
        "boxes": [dict(box) for box in boxes],
        "findings_prefilled": dict(findings_prefilled),
        "finding_probabilities": dict(finding_probabilities),
        "report_draft": {k: v for k, v in report_draft.items() if v},
        "withheld": [dict(item) for item in withheld],
        "served_at": timezone.now(),
        # A new showing voids an earlier summary (a returned annotation is submitted again).
        "confidence": None,
        "boxes_kept_fraction": None,
        "findings_changed_fraction": None,
        "draft_edit_distance": None,
        "change": None,
        "summarised_at": None,
    }
    with transaction.atomic():
        # Lock the annotation row so a submission running now sees the record before or after
        # this write, never half of it.
        status = (
            Annotation.objects.select_for_update()
            .filter(pk=annotation.pk)
            .values_list("status", flat=True)
            .first()
        )
        if status not in EDITABLE:
            return None
        record, _ = ShownSuggestion.objects.update_or_create(annotation=annotation, defaults=shown)
    return record


def _kept_fraction(shown: Sequence[Mapping[str, Any]], annotation: Annotation) -> float | None:
    """Share of shown boxes matched one-to-one by a submitted box of the same finding on the
    same image and frame at IoU >= 0.5 (edited boxes count when they still overlap that much);
    a 3D suggestion (``series_id`` and ``slices``) by a 3D box of its series at 3D IoU >= 0.5."""
    if not shown:
        return None
    images: dict[tuple[Any, ...], tuple[list[Any], list[Any]]] = {}
    for box in shown:
        slices = box.get("slices")
        if box.get("series_id") is not None and slices:
            first, last = int(slices[0]), int(slices[1])
            key: tuple[Any, ...] = ("series", int(box["series_id"]))
            row: tuple[Any, ...] = (box["finding"], box["x"], box["y"], first - 1, box["width"],
                                    box["height"], last - first + 1)  # fmt: skip
        else:
            key = (int(box.get("instance_id") or 0), int(box.get("frame") or 1))
            row = (box["finding"], box["x"], box["y"], box["width"], box["height"])
        images.setdefault(key, ([], []))[0].append(row)
    for b in annotation.boxes.all():
        if b.series_id is not None and b.slice_first is not None and b.slice_last is not None:
            key = ("series", b.series_id)
            row = (b.finding, b.x, b.y, b.slice_first - 1, b.width, b.height,
                   b.slice_last - b.slice_first + 1)  # fmt: skip
        else:
            key = (b.instance_id, b.frame)
            row = (b.finding, b.x, b.y, b.width, b.height)
        if key in images:
            images[key][1].append(row)
    kept = sum(box_f1(a, b, iou_threshold=KEPT_IOU).matched for a, b in images.values())
    return kept / len(shown)


def _confidence(record: ShownSuggestion) -> float | None:
    """The model's mean confidence in what it showed: each shown box's score, and for each
    prefilled finding the probability of the state it prefilled (p, or 1 - p for absent)."""
    values: list[float | None] = [float(box.get("score", 0.0)) for box in record.boxes]
    for key, state in record.findings_prefilled.items():
        p = record.finding_probabilities.get(key)
        if isinstance(p, int | float):
            values.append(float(p) if state == "present" else 1.0 - float(p))
    return mean_of_known(values)


def summarise(annotation: Annotation) -> ShownSuggestion | None:
    """Fill the record's comparison with ``annotation`` as it is now (called in the submitting
    transaction); None when nothing was recorded for it."""
    if "shown_suggestion" in annotation._state.fields_cache:  # read with the annotation
        record = annotation._state.fields_cache["shown_suggestion"]
    else:
        record = ShownSuggestion.objects.filter(annotation=annotation).first()
    if record is None:
        return None
    record.boxes_kept_fraction = _kept_fraction(record.boxes, annotation)
    prefilled = record.findings_prefilled
    record.findings_changed_fraction = (
        sum(annotation.findings.get(k) != state for k, state in prefilled.items()) / len(prefilled)
        if prefilled
        else None
    )
    if record.report_draft:
        sections = list(record.report_draft)
        draft = " ".join(record.report_draft[k] for k in sections)
        final = " ".join(str(annotation.report.get(k, "")) for k in sections)
        record.draft_edit_distance = report_similarity(draft, final).word_edit_distance
    else:
        record.draft_edit_distance = None
    record.confidence = _confidence(record)
    kept = record.boxes_kept_fraction
    record.change = mean_of_known(
        [
            None if kept is None else 1.0 - kept,
            record.findings_changed_fraction,
            record.draft_edit_distance,
        ]
    )
    record.summarised_at = timezone.now()
    record.save()
    return record
