"""Reads shared by the API and the pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.expressions import OrderBy
from django.db.models.functions import Coalesce

from annotations.models import (
    Annotation,
    AuditEvent,
    Case,
    Instance,
    LabResult,
    Patient,
    Project,
    Series,
    ShownSuggestion,
)
from medloop.compiled_queries import CompiledQuery, prime_related
from medloop.metrics.summaries import mean_of_known


def projects_for(user: User | AnonymousUser) -> QuerySet[Project]:
    """Projects the user is a member of (all of them for a superuser)."""
    if not isinstance(user, User):
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user).distinct()


def _count_per_project(rows: QuerySet[Any], project_field: str) -> Coalesce:
    """The number of ``rows`` whose ``project_field`` is the outer project, as a subquery: one
    count per project whatever else the outer query joins (a user's several memberships)."""
    counted = (
        rows.filter(**{project_field: OuterRef("pk")})
        .order_by()
        .values(project_field)
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def held_images(project_id: int) -> QuerySet[Instance]:
    """Images of the project held for a lead's review (possibly burned-in identifiers) and not
    yet decided: a released image is no longer quarantined, a rejected one stays hidden."""
    return Instance.objects.filter(
        series__study__project_id=project_id, quarantined=True, quarantine_rejected_at=None
    )


def held_out_cases(project_id: int) -> QuerySet[Case]:
    """Cases of the project held out at ingest by its eligibility rules and not yet decided:
    an included case is no longer held out, an excluded one stays held out for good."""
    return Case.objects.filter(project_id=project_id, held_out=True, held_out_excluded_at=None)


def patient_consents(project: Project, *, status: str = "") -> QuerySet[Patient]:
    """The project's patients by pseudonym with their consent, each with its number of cases
    (``case_count``), optionally only those whose consent is ``status``."""
    patients = Patient.objects.filter(project=project)
    if status:
        patients = patients.filter(consent_status=status)
    return patients.annotate(case_count=Count("studies__case")).order_by("pseudonym")


def projects_with_counts(user: User | AnonymousUser) -> QuerySet[Project]:
    """``projects_for(user)`` with ``open_cases``, ``complete_cases`` and ``held_images`` (see
    ``held_images``), each counted once however many roles the user holds."""
    held = Instance.objects.filter(quarantined=True, quarantine_rejected_at=None)
    return projects_for(user).annotate(
        open_cases=_count_per_project(Case.objects.filter(state=Case.State.OPEN), "project"),
        complete_cases=_count_per_project(
            Case.objects.filter(state=Case.State.COMPLETE), "project"
        ),
        held_images=_count_per_project(held, "series__study__project"),
    )


# The four reads of case_with_context, compiled once (medloop.compiled_queries): it is read on
# every hand-out and every case page.
_CASE = CompiledQuery(
    lambda *, case_pk: (
        Case.objects.select_related("project", "study__patient", "leased_to")
        .filter(pk=case_pk)
        .order_by("pk")[:1]
    )
)
_LABS = CompiledQuery(lambda *, case_pk: LabResult.objects.filter(case_id=case_pk))
_SERIES = CompiledQuery(
    lambda *, study_id: Series.objects.filter(study_id=study_id).order_by("series_number", "id")
)
_INSTANCES = CompiledQuery(
    lambda *, study_id: Instance.objects.filter(series__study_id=study_id).order_by(
        "instance_number", "id"
    )
)


def case_with_context(case_pk: int) -> Case | None:
    """A case with everything its detail page shows (project, study, patient, lease holder, lab
    results, series in order with their images in order), in four queries: what
    ``select_related`` of the first three and ``prefetch_related`` of the rest give."""
    found: list[Case] = _CASE.fetch(case_pk=case_pk)
    if not found:
        return None
    case = found[0]
    prime_related(case, "lab_results", _LABS.fetch(case_pk=case.pk))
    series: list[Series] = _SERIES.fetch(study_id=case.study_id)
    images: dict[int, list[Instance]] = {s.pk: [] for s in series}
    for image in _INSTANCES.fetch(study_id=case.study_id):
        images[image.series_id].append(image)
    for item in series:
        prime_related(item, "instances", images[item.pk])
    prime_related(case.study, "series", series)
    return case


def cases_of(project: Project, *, state: str | None = None) -> QuerySet[Case]:
    cases = Case.objects.filter(project=project).select_related("leased_to")
    if state:
        cases = cases.filter(state=state)
    return cases.order_by("-priority", "id")


# Review-queue orderings: name -> order_by fields. Annotations without a recorded suggestion
# (or without that figure) come last either way.
REVIEW_ORDERINGS: dict[str, list[str | OrderBy]] = {
    "submitted": [F("submitted_at").asc(), "id"],
    "-submitted": [F("submitted_at").desc(), "-id"],
    "confidence": [F("shown_suggestion__confidence").asc(nulls_last=True), "submitted_at", "id"],
    "-confidence": [F("shown_suggestion__confidence").desc(nulls_last=True), "submitted_at", "id"],
    "change": [F("shown_suggestion__change").asc(nulls_last=True), "submitted_at", "id"],
    "-change": [F("shown_suggestion__change").desc(nulls_last=True), "submitted_at", "id"],
}


def annotations_to_review(
    project: Project,
    *,
    ordering: str = "submitted",
    confidence_min: float | None = None,
    confidence_max: float | None = None,
    change_min: float | None = None,
    change_max: float | None = None,
    model_version: int | None = None,
) -> QuerySet[Annotation]:
    """Submitted annotations of ``project`` in ``ordering`` (a key of :data:`REVIEW_ORDERINGS`:
    by submission, by the model's confidence in what it showed, or by how much the annotator
    changed it), keeping only those whose recorded figures lie in the given closed ranges and,
    with ``model_version``, those shown that version's suggestion. A range filter drops the
    annotations that have no such figure."""
    annotations = (
        Annotation.objects.filter(case__project=project, status=Annotation.Status.SUBMITTED)
        .select_related("annotator", "reviewed_by", "shown_suggestion")
        .prefetch_related("boxes")
    )
    ranges = {
        "shown_suggestion__confidence__gte": confidence_min,
        "shown_suggestion__confidence__lte": confidence_max,
        "shown_suggestion__change__gte": change_min,
        "shown_suggestion__change__lte": change_max,
        "shown_suggestion__model_version_number": model_version,
    }
    annotations = annotations.filter(**{k: v for k, v in ranges.items() if v is not None})
    return annotations.order_by(*REVIEW_ORDERINGS[ordering])


def audit_events(
    *,
    project_id: int | None,
    action: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
) -> QuerySet[AuditEvent]:
    """Audit events, newest first, filtered by each argument given: ``project_id`` (None: every
    project and none), ``action`` (exact, or a prefix ending in ``.*`` such as ``auth.*``),
    ``actor`` (username), ``since`` (inclusive) and ``until`` (exclusive), the object's type
    (``annotations.Case``) and id."""
    events = AuditEvent.objects.all()
    if project_id is not None:
        events = events.filter(project_id=project_id)
    if action and action.endswith(".*"):
        events = events.filter(action__startswith=action[:-1])
    elif action:
        events = events.filter(action=action)
    if actor:
        events = events.filter(actor_username=actor)
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    if object_type:
        events = events.filter(object_type=object_type)
    if object_id:
        events = events.filter(object_id=object_id)
    return events


def shown_suggestion_outcomes(project: Project) -> list[dict[str, Any]]:
    """Per model version, exactly how its suggestions fared with the annotators who were shown
    them (the recorded showings of submitted or accepted annotations, not the version that
    happened to be serving): ``model_version``, ``annotations``, ``boxes_shown``, ``boxes_kept``
    (IoU >= 0.5), ``drafts_shown``, mean ``draft_edit_distance``, mean ``change`` (None where
    nothing of that kind was shown), oldest version first."""
    rows = ShownSuggestion.objects.filter(
        annotation__case__project=project,
        annotation__status__in=[Annotation.Status.SUBMITTED, Annotation.Status.ACCEPTED],
        summarised_at__isnull=False,
    ).values_list("model_version_number", "boxes", "boxes_kept_fraction", "draft_edit_distance",
                  "change")  # fmt: skip
    grouped: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)

    out = []
    for number, items in sorted(grouped.items()):
        shown = [len(boxes or []) for _, boxes, _, _, _ in items]
        kept = [round(n * (k or 0.0)) for n, (_, _, k, _, _) in zip(shown, items, strict=True)]
        out.append(
            {
                "model_version": number,
                "annotations": len(items),
                "boxes_shown": sum(shown),
                "boxes_kept": sum(kept),
                "drafts_shown": sum(1 for item in items if item[3] is not None),
                "draft_edit_distance": mean_of_known([item[3] for item in items]),
                "change": mean_of_known([item[4] for item in items]),
            }
        )
    return out


def audit_actions(project_id: int | None) -> list[str]:
    """The distinct actions recorded (in one project, or anywhere for None), sorted: the choices
    an audit trail filter offers."""
    events = AuditEvent.objects.all()
    if project_id is not None:
        events = events.filter(project_id=project_id)
    return sorted(set(events.order_by().values_list("action", flat=True).distinct()))
