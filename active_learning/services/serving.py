"""What the workspace may show of a case's suggestion, and why the rest is held back.

A version's suggestion is stored whole (every box the model kept, every probability, its
draft). Serving cuts it to what the version's validation evidence supports, read from
``ModelVersion.metrics["validation"]["operating_points"]`` (fitted by the model on the cycle's
validation labels):

- boxes only of classes whose box operating point is reliable, at or above its threshold;
- findings (probability and prefill) only of classes whose findings operating point is
  reliable; "present" prefilled at or above its ``prefill_threshold``, "absent" at or below its
  ``absent_threshold`` when the version has one;
- the report draft only when the report operating point is reliable and the draft passes
  :func:`~active_learning.ml.draft_guard.is_degenerate`.

A version without operating points (trained before they existed) shows nothing: nothing of it
was checked. Each class held back comes with a sentence for the annotator ("The model is still
learning nodule: 2 of 5 validation examples labelled ..."). When the caller is the annotator of
the case, what is served is recorded on their annotation
(:func:`annotations.services.shown_suggestions.record_shown`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from active_learning.ml.draft_guard import draft_text, is_degenerate
from active_learning.ml.metrics.findings import prefill
from active_learning.models import ModelVersion, Suggestion
from active_learning.services.test_sets import in_test_set
from active_learning.services.versions import promoted_version
from annotations.models import Annotation, Case
from annotations.services import shown_suggestions


@dataclass(frozen=True)
class Withheld:
    """Something of the suggestion not shown, and why, in words for the annotator. ``kinds``:
    which parts ("boxes", "findings", "report", "model"); ``finding``: the class key, or None."""

    kinds: tuple[str, ...]
    finding: str | None
    message: str


@dataclass
class ServedSuggestion:
    """The suggestion as the workspace shows it.

    ``state``: "shown" (the version has reliable parts; what passes them is here, which may be
    nothing for a clean case), "learning" (nothing of the version is reliable yet, or there is
    no version at all), "none" (a version serves, but has not scored this case), "blinded"
    (the case is in the locked test set: its readers see no model output)."""

    state: str
    message: str
    version: ModelVersion | None = None
    suggestion: Suggestion | None = None
    boxes: list[dict[str, Any]] = field(default_factory=list)
    finding_probabilities: dict[str, float] = field(default_factory=dict)
    findings_prefilled: dict[str, str] = field(default_factory=dict)
    report_draft: dict[str, str] = field(default_factory=dict)
    report_links: list[dict[str, Any]] = field(default_factory=list)
    withheld: list[Withheld] = field(default_factory=list)


#: What a reader of a locked test set case is told instead of a suggestion.
BLINDED_MESSAGE = (
    "No model suggestions for this case: it belongs to the locked test set, whose labels are "
    "the reference standard the model is measured against, so it is read without the model."
)


def suggestion_to_serve(case: Case) -> Suggestion | None:
    """The serving (promoted) version's suggestion for ``case``, else the newest version's."""
    serving = promoted_version(case.project)
    items = Suggestion.objects.filter(case=case).select_related("model_version")
    if serving is not None:
        chosen = items.filter(model_version=serving).first()
        if chosen is not None:
            return chosen
    return items.order_by("-model_version__number", "-created_at").first()


def operating_points(version: ModelVersion) -> dict[str, Any] | None:
    """The version's operating points, or None when it has none (or they are malformed)."""
    metrics = version.metrics if isinstance(version.metrics, dict) else {}
    validation = metrics.get("validation")
    points = validation.get("operating_points") if isinstance(validation, dict) else None
    return points if isinstance(points, dict) else None


def _point(points: dict[str, Any], kind: str, finding: str) -> dict[str, Any]:
    per_class = points.get(kind)
    point = per_class.get(finding) if isinstance(per_class, dict) else None
    return point if isinstance(point, dict) else {"reliable": False, "reason": ""}


def _number(value: Any) -> float | None:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if is_number else None


def _why(point: dict[str, Any]) -> str:
    reason = str(point.get("reason") or "no validation evidence yet")
    # The model's own wording starts "still learning: ..."; the sentence around it says so.
    return reason.removeprefix("still learning:").strip()


_PART = {"boxes": "boxes", "findings": "prefilled findings"}


def _learning(name: str, reasons: dict[str, str]) -> str:
    parts = " or ".join(_PART[kind] for kind in reasons)
    distinct = list(dict.fromkeys(reasons.values()))
    why = (
        "; ".join(distinct)
        if len(distinct) == 1
        else "; ".join(f"{_PART[kind]}: {reason}" for kind, reason in reasons.items())
    )
    return f"The model is still learning {name}: {why}. No {parts} for it yet."


def _boxes(suggestion: Suggestion, points: dict[str, Any]) -> list[dict[str, Any]]:
    shown = []
    for box in suggestion.boxes or []:
        point = _point(points, "boxes", str(box.get("finding")))
        threshold = _number(point.get("threshold"))
        score = _number(box.get("score"))
        reliable = point.get("reliable") is True and threshold is not None
        if reliable and score is not None and threshold is not None and score >= threshold:
            shown.append(box)
    return shown


def _findings(
    suggestion: Suggestion, points: dict[str, Any], keys: list[str]
) -> tuple[dict[str, float], dict[str, str]]:
    probabilities: dict[str, float] = {}
    prefilled: dict[str, str] = {}
    for key in keys:
        point = _point(points, "findings", key)
        p = _number((suggestion.finding_probabilities or {}).get(key))
        if point.get("reliable") is not True or p is None:
            continue
        probabilities[key] = p
        decided = prefill(p, point)
        if decided is not None:
            prefilled[key] = decided
    return probabilities, prefilled


def _report(
    suggestion: Suggestion, points: dict[str, Any], shown_box_ids: set[str]
) -> tuple[dict[str, str], list[dict[str, Any]], Withheld | None]:
    draft = {k: v for k, v in (suggestion.report_draft or {}).items() if isinstance(v, str) and v}
    if not draft:
        return {}, [], None
    found = points.get("report")
    report: dict[str, Any] = found if isinstance(found, dict) else {}
    if report.get("reliable") is not True:
        reports, needed = report.get("reports"), report.get("min_reports")
        if isinstance(reports, int) and isinstance(needed, int) and reports < needed:
            message = (
                "No report draft: the model is still learning to write reports "
                f"({reports} of {needed} validation reports labelled to judge its drafts on)."
            )
        else:
            why = str(report.get("reason") or "its drafts have not passed the report floor yet")
            message = f"No report draft: the model's drafts are not good enough yet ({why})."
        return {}, [], Withheld(("report",), None, message)
    refused = is_degenerate(draft_text(draft))
    if refused is not None:
        return {}, [], Withheld(("report",), None, f"No report draft: {refused}.")
    links = []
    uncertainty = suggestion.uncertainty if isinstance(suggestion.uncertainty, dict) else {}
    for link in uncertainty.get("report_links") or []:
        if not isinstance(link, dict):
            continue
        index = link.get("box_index")
        # A sentence whose box is not shown no longer leads to it.
        visible = isinstance(index, int) and f"s{index}" in shown_box_ids
        links.append({**link, "box_index": index if visible else None})
    return draft, links, None


def serve(case: Case) -> ServedSuggestion:
    """What the workspace shows of ``case``'s suggestion (:class:`ServedSuggestion`). A case of
    the locked test set is "blinded": nothing of any version, so that its reference labels are
    made without the model's influence."""
    if in_test_set(case):
        return ServedSuggestion("blinded", BLINDED_MESSAGE)
    suggestion = suggestion_to_serve(case)
    if suggestion is None:
        if not ModelVersion.objects.filter(project=case.project_id).exists():
            return ServedSuggestion(
                "learning",
                "The model is still learning: no version has been trained yet. Suggestions "
                "appear once a retraining cycle has produced a version with reliable ones.",
            )
        if promoted_version(case.project) is None:
            return _waiting(case)
        return ServedSuggestion("none", "No model suggestion for this case yet.")
    version = suggestion.model_version
    names = _names(case)
    served = ServedSuggestion("learning", "", version=version, suggestion=suggestion)
    points = operating_points(version)
    if points is None:
        served.message = (
            f"The model is still learning: version {version.number} has not been checked "
            "against validation labels, so none of its suggestions are shown."
        )
        served.withheld = [
            Withheld(("boxes", "findings"), key, f"The model is still learning {name.lower()}: "
                     "no reliable version yet.")
            for key, name in names.items()
        ]  # fmt: skip
        return served
    served.boxes = _boxes(suggestion, points)
    served.withheld = _per_class_withheld(points, names)
    served.finding_probabilities, served.findings_prefilled = _findings(
        suggestion, points, list(names)
    )
    shown_ids = {str(box.get("id")) for box in served.boxes}
    served.report_draft, served.report_links, report_withheld = _report(
        suggestion, points, shown_ids
    )
    reliable_any = _reliable_any(points, names)
    if report_withheld is not None:
        served.withheld.append(report_withheld)
    if reliable_any:
        served.state = "shown"
        served.message = f"Suggestions of model version {version.number}."
    else:
        served.message = (
            f"The model is still learning: version {version.number} has no class with enough "
            "validation evidence yet, so none of its suggestions are shown."
        )
    return served


def _names(case: Case) -> dict[str, str]:
    return {f["key"]: f.get("name", f["key"]) for f in case.project.label_schema["findings"]}


def _per_class_withheld(points: dict[str, Any], names: dict[str, str]) -> list[Withheld]:
    """A sentence per class with a part (boxes, prefilled findings) not reliable yet."""
    withheld = []
    for key, name in names.items():
        reasons = {
            kind: _why(point)
            for kind in ("boxes", "findings")
            if (point := _point(points, kind, key)).get("reliable") is not True
        }
        if reasons:
            withheld.append(Withheld(tuple(reasons), key, _learning(name.lower(), reasons)))
    return withheld


def _reliable_any(points: dict[str, Any], names: dict[str, str]) -> bool:
    report = points.get("report")
    return any(
        _point(points, kind, key).get("reliable") is True
        for key in names
        for kind in ("boxes", "findings")
    ) or (isinstance(report, dict) and report.get("reliable") is True)


def _waiting(case: Case) -> ServedSuggestion:
    """No version serves yet, but some were trained: the newest one's state in words (why it
    does not serve, what its validation evidence lacks per class). Its suggestions are not
    computed for the workspace: a version nobody promoted does not suggest."""
    newest = (
        ModelVersion.objects.filter(project=case.project_id)
        .exclude(status=ModelVersion.Status.FAILED)
        .order_by("-number")
        .first()
    )
    if newest is None:
        return ServedSuggestion(
            "learning",
            "The model is still learning: no version has been trained successfully yet.",
        )
    check = newest.promotion_check if isinstance(newest.promotion_check, dict) else {}
    labels, needed = check.get("validation_labels"), check.get("min_validation_labels")
    if isinstance(labels, int) and isinstance(needed, int) and labels < needed:
        why = (
            f"it was checked on {labels} validation label{'s' if labels != 1 else ''}, and "
            f"{needed} are needed before a version may serve"
        )
    elif check.get("reason"):
        why = str(check["reason"])
    else:
        why = "no model owner has promoted it"
    owner = " It waits for a model owner." if check.get("waiting_for_owner") else ""
    points = operating_points(newest)
    names = _names(case)
    served = ServedSuggestion(
        "learning",
        f"The model is still learning: version {newest.number} does not serve yet ({why})."
        f"{owner} No suggestions are shown until a version serves.",
    )
    if points is not None:
        served.withheld = _per_class_withheld(points, names)
    return served


def serve_and_record(case: Case, viewer: AbstractBaseUser | AnonymousUser) -> ServedSuggestion:
    """:func:`serve`, recorded on ``viewer``'s annotation of the case when they are its
    annotator and the annotation is still open (a reviewer's or lead's look records nothing)."""
    served = serve(case)
    if served.version is None or served.suggestion is None or viewer.pk is None:
        return served
    annotation = Annotation.objects.filter(case=case, annotator_id=viewer.pk).first()
    if annotation is None:
        return served
    shown_suggestions.record_shown(
        annotation=annotation,
        model_version_pk=served.version.pk,
        model_version_number=served.version.number,
        suggestion_pk=served.suggestion.pk,
        boxes=served.boxes,
        findings_prefilled=served.findings_prefilled,
        finding_probabilities=served.finding_probabilities,
        report_draft=served.report_draft,
        withheld=[asdict(w) for w in served.withheld],
    )
    return served


def as_payload(served: ServedSuggestion) -> dict[str, Any]:
    """The JSON the workspace reads (``ServedSuggestionSerializer``)."""
    body = None
    if served.suggestion is not None and served.version is not None:
        body = {
            "id": served.suggestion.pk,
            "model_version": served.version.number,
            "serving": served.version.status == ModelVersion.Status.PROMOTED,
            "boxes": served.boxes,
            "finding_probabilities": served.finding_probabilities,
            "findings_prefilled": served.findings_prefilled,
            "report_draft": served.report_draft,
            "uncertainty": {"report_links": served.report_links},
            "created_at": served.suggestion.created_at,
        }
    return {
        "state": served.state,
        "message": served.message,
        "suggestion": body,
        "withheld": [asdict(w) for w in served.withheld],
    }
