"""The locked test set of a project (issue 16): held out at ingest, labelled as a reference
standard, frozen under a content hash.

- :func:`set_plan`: a lead sets the share of cases to hold out; the cases already in the
  project are drawn at once, later ones when they are ingested (:func:`draw`, run by the
  ``active_learning.rerank_project`` task that every ingest sends).
- :func:`draw`: a **stratified** draw of the cases not yet decided, apart from the validation
  set. Strata are ``sex|age band|findings`` (findings where a label already tells them, e.g.
  imported labels); within a stratum the cases are taken in the order of a keyed hash of their
  study UID (stable, not guessable), as many as make the stratum's held-out share reach the
  plan's fraction (rounded up or down by a keyed draw per stratum, so that small strata are held
  out in proportion on average). A decision is made once per case and never revisited.
- Held-out cases are never trained on, never evaluated for promotion and never used to set an
  operating threshold (:func:`active_learning.services.case_inputs.training_annotations`
  leaves them out); with ``double_read`` (the default) a held-out case not yet read needs two
  reads, adjudicated when they disagree.
- :func:`lock`: freezes the members and their reference labels (per case the adjudicated
  label, else the latest that counts) in a :class:`~active_learning.models.LockedTestSet` under
  the SHA-256 of their canonical JSON. Locking again with nothing changed returns the same
  version; any change of a member or a label makes a new version that names the one before and
  the cases that changed, audited as ``test_set.lock``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pydicom
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.db.models import Count, Q

from active_learning.ml.verification import subgroups
from active_learning.models import LockedTestSet, TestSetDraw, TestSetPlan
from active_learning.services.case_inputs import CaseNotReadable, case_labels, first_instance
from annotations.dicom.deidentify import keyed_digest
from annotations.models import Annotation, Case, Project
from annotations.services import audit
from annotations.services.errors import InvalidInput
from annotations.services.ingest import storage_path

Actor = User | AnonymousUser
MAX_FRACTION = 0.5


def _unit(secret: str, kind: str, value: str) -> float:
    """A stable number in [0, 1) keyed by the project's secret."""
    return int.from_bytes(keyed_digest(secret, kind, value)[:8], "big") / 2**64


def set_plan(
    *,
    project: Project,
    fraction: Any,
    actor: Actor | None,
    double_read: Any = True,
    min_subgroup_cases: Any = 30,
) -> TestSetPlan:
    """Create or change the project's test set plan, then draw the undecided cases. A changed
    fraction applies to cases not yet decided; decided cases keep their decision."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise InvalidInput("fraction must be a number.", field="fraction")
    if not 0 < float(fraction) <= MAX_FRACTION:
        raise InvalidInput(
            f"fraction must lie in (0, {MAX_FRACTION}], got {fraction}.", field="fraction"
        )
    if not isinstance(double_read, bool):
        raise InvalidInput("double_read must be true or false.", field="double_read")
    if (
        isinstance(min_subgroup_cases, bool)
        or not isinstance(min_subgroup_cases, int)
        or not 1 <= min_subgroup_cases <= 10_000
    ):
        raise InvalidInput(
            "min_subgroup_cases must be a whole number from 1 to 10000.", field="min_subgroup_cases"
        )
    with transaction.atomic():
        plan, created = TestSetPlan.objects.update_or_create(
            project=project,
            defaults={
                "fraction": float(fraction),
                "double_read": double_read,
                "min_subgroup_cases": min_subgroup_cases,
            },
            create_defaults={
                "fraction": float(fraction),
                "double_read": double_read,
                "min_subgroup_cases": min_subgroup_cases,
                "created_by": actor if actor is not None and actor.is_authenticated else None,
            },
        )
        audit.record(
            action="test_set.plan",
            actor=actor,
            target=project,
            project_id=project.pk,
            detail={
                "created": created,
                "fraction": plan.fraction,
                "double_read": plan.double_read,
                "min_subgroup_cases": plan.min_subgroup_cases,
            },
        )
    draw(project)
    return plan


def _age_band(case: Case) -> str | None:
    """The report's age band from the case's first image header (de-identified: Patient's Age
    is kept, capped at 90, under option 113108); ``None`` when unknown."""
    try:
        instance = first_instance(case)
    except CaseNotReadable:
        return None
    try:
        header = pydicom.dcmread(storage_path(instance.file_path), stop_before_pixels=True)
    except (OSError, pydicom.errors.InvalidDicomError):
        return None
    return subgroups.age_band(header.get("PatientAge"))


def _known_findings(cases: list[Case]) -> dict[int, list[str]]:
    """The findings present per case, for cases that already have a label."""
    labels = case_labels(Case.objects.filter(pk__in=[c.pk for c in cases]))
    return {
        a.case_id: sorted(k for k, v in a.findings.items() if v == "present")
        for a in labels.only("case_id", "findings")
    }


@dataclass(frozen=True)
class DrawResult:
    """Cases decided by one draw and how many of them were held out."""

    decided: int
    held_out: int


def draw(project: Project) -> DrawResult:
    """Decide every undecided non-validation case of ``project`` (module docstring); nothing
    without a plan. Safe to run again and concurrently (the plan row is locked)."""
    with transaction.atomic():
        plan = TestSetPlan.objects.select_for_update().filter(project=project).first()
        if plan is None:
            return DrawResult(decided=0, held_out=0)
        undecided = list(
            Case.objects.filter(project=project, is_validation=False, test_set_draw__isnull=True)
            .select_related("study__patient")
            .order_by("pk")
        )
        if not undecided:
            return DrawResult(decided=0, held_out=0)
        secret = project.pseudonym_secret
        findings = _known_findings(undecided)
        strata: dict[str, list[Case]] = defaultdict(list)
        for case in undecided:
            key = subgroups.stratum(
                subgroups.sex(case.study.patient.sex), _age_band(case), findings.get(case.pk)
            )
            strata[key].append(case)
        earlier = {
            row["stratum"]: (row["total"], row["held"])
            for row in TestSetDraw.objects.filter(project=project)
            .values("stratum")
            .annotate(total=Count("pk"), held=Count("pk", filter=Q(held_out=True)))
        }
        rows: list[TestSetDraw] = []
        held_cases: list[int] = []
        for key, members in sorted(strata.items()):
            total, held = earlier.get(key, (0, 0))
            target = math.floor(
                plan.fraction * (total + len(members)) + _unit(secret, "test-set-stratum", key)
            )
            take = min(max(target - held, 0), len(members))
            members.sort(key=lambda c: keyed_digest(secret, "test-set", c.study.study_instance_uid))
            for index, case in enumerate(members):
                rows.append(
                    TestSetDraw(project=project, case=case, held_out=index < take, stratum=key)
                )
                if index < take:
                    held_cases.append(case.pk)
        TestSetDraw.objects.bulk_create(rows)
        if plan.double_read and held_cases:
            # The reference standard: two independent reads, adjudicated when they disagree;
            # only for cases nobody has started reading.
            Case.objects.filter(pk__in=held_cases, required_reads__lt=2).exclude(
                annotations__isnull=False
            ).update(required_reads=2)
        audit.record(
            action="test_set.draw",
            target=project,
            project_id=project.pk,
            detail={"decided": len(rows), "held_out": len(held_cases), "strata": len(strata)},
        )
    return DrawResult(decided=len(rows), held_out=len(held_cases))


def in_test_set(case: Case) -> bool:
    """Whether ``case`` is held out in its project's test set: its readers label it as the
    reference standard, so no model output is shown to them (a suggestion would bias the label
    the model is then measured against)."""
    return TestSetDraw.objects.filter(case_id=case.pk, held_out=True).exists()


def held_out_cases(project: Project) -> list[Case]:
    """The project's test set members, by case id."""
    return list(
        Case.objects.filter(project=project, test_set_draw__held_out=True)
        .select_related("study")
        .order_by("pk")
    )


def _label(annotation: Annotation) -> dict[str, Any]:
    """The reference label as frozen: who made it and its content (not its edit counter, which a
    review bumps without changing the label)."""
    return {
        "annotation_id": annotation.pk,
        "annotator_id": annotation.annotator_id,
        "adjudicated": annotation.is_adjudication,
        "findings": dict(sorted(annotation.findings.items())),
        "boxes": [
            {
                "instance_id": b.instance_id,
                "frame": b.frame,
                "finding": b.finding,
                "x": b.x,
                "y": b.y,
                "width": b.width,
                "height": b.height,
            }
            for b in sorted(annotation.boxes.all(), key=lambda b: b.pk)
        ],
        "report": dict(sorted(annotation.report.items())),
    }


def current_content(project: Project) -> dict[str, Any]:
    """The members and their reference labels as they are now (what :func:`lock` freezes)."""
    members = held_out_cases(project)
    labels = {
        a.case_id: a
        for a in case_labels(Case.objects.filter(pk__in=[c.pk for c in members])).prefetch_related(
            "boxes"
        )
    }
    return {
        "cases": [
            {
                "case_id": case.pk,
                "study_uid": case.study.study_instance_uid,
                "label": _label(labels[case.pk]) if case.pk in labels else None,
            }
            for case in members
        ]
    }


def content_hash(content: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces) of a test set's content."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _changed_cases(before: dict[str, Any], after: dict[str, Any]) -> list[int]:
    old = {c["case_id"]: c for c in before["cases"]}
    new = {c["case_id"]: c for c in after["cases"]}
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def latest_lock(project: Project) -> LockedTestSet | None:
    return LockedTestSet.objects.filter(project=project).order_by("-version").first()


def lock(*, project: Project, actor: Actor | None, reason: str = "") -> tuple[LockedTestSet, bool]:
    """Freeze the test set as it is now: ``(version, created)``; the latest version when nothing
    changed since it was locked."""
    with transaction.atomic():
        # One lock at a time per project: the plan row serialises them.
        plan = TestSetPlan.objects.select_for_update().filter(project=project).first()
        if plan is None:
            raise InvalidInput("the project has no test set plan; set its fraction first.")
        content = current_content(project)
        digest = content_hash(content)
        previous = latest_lock(project)
        if previous is not None and previous.content_hash == digest:
            return previous, False
        if not content["cases"]:
            raise InvalidInput("the test set has no case yet: ingest cases or raise its fraction.")
        changed = _changed_cases(previous.content, content) if previous else []
        if not reason:
            reason = (
                f"{len(changed)} case(s) changed since version {previous.version}"
                if previous
                else "first lock"
            )
        labelled = sum(1 for c in content["cases"] if c["label"] is not None)
        locked = LockedTestSet.objects.create(
            project=project,
            version=(previous.version + 1) if previous else 1,
            content_hash=digest,
            content=content,
            case_count=len(content["cases"]),
            labelled_count=labelled,
            previous=previous,
            reason=reason[:200],
            locked_by=actor if actor is not None and actor.is_authenticated else None,
        )
        audit.record(
            action="test_set.lock",
            actor=actor,
            target=project,
            project_id=project.pk,
            detail={
                "version": locked.version,
                "content_hash": digest,
                "previous_hash": previous.content_hash if previous else None,
                "cases": locked.case_count,
                "labelled": labelled,
                "changed_cases": changed[:100],
                "reason": locked.reason,
            },
        )
    return locked, True


def status(project: Project) -> dict[str, Any]:
    """The plan, the members, the latest lock and whether the labels changed since it."""
    plan = TestSetPlan.objects.filter(project=project).first()
    if plan is None:
        return {"plan": None, "cases": 0, "labelled": 0, "locked": None, "changed_since_lock": None}
    content = current_content(project)
    latest = latest_lock(project)
    return {
        "plan": {
            "fraction": plan.fraction,
            "double_read": plan.double_read,
            "min_subgroup_cases": plan.min_subgroup_cases,
        },
        "cases": len(content["cases"]),
        "labelled": sum(1 for c in content["cases"] if c["label"] is not None),
        "locked": None
        if latest is None
        else {
            "version": latest.version,
            "content_hash": latest.content_hash,
            "cases": latest.case_count,
            "labelled": latest.labelled_count,
            "locked_at": latest.locked_at.isoformat(),
            "reason": latest.reason,
        },
        "changed_since_lock": None
        if latest is None
        else latest.content_hash != content_hash(content),
    }
