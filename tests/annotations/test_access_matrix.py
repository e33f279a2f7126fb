"""Every API endpoint and every page, with real objects behind the ids, as each role of the
project, as a member of another project and anonymously. The table must name every route the
URL configuration has (a new endpoint without a row fails the completeness test), and a member
of another project never gets anything but 404 for this project's objects: no case data across
projects, ever.

Rows run in ROLES order against one scenario, so a write by an earlier role is seen by a later
one (the lead deletes the spare membership: the admin then finds it gone)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from active_learning.models import (
    LockedTestSet,
    ModelVersion,
    RetrainingCycle,
    ValidationReport,
    VersionComparison,
)
from annotations.models import Case, DoubleRead, IngestBatch, Membership
from annotations.services import annotate, ethics, projects, queue
from tests.annotations.test_double_reading import _disagreeing_reads

pytestmark = pytest.mark.django_db

ROLES = ("annotator", "reviewer", "lead", "model_owner", "admin", "dpo", "outsider", "anonymous")
PASSWORD = "correct horse battery"


@dataclass
class Ids:
    p: int  # the project
    c: int  # a case leased to the annotator, with their draft
    o: int  # another case of the project, not the annotator's
    i: int  # the image of case c
    a: int  # the annotator's draft on case c
    s: int  # a submitted read (by another annotator) on a double-read case
    d: int  # the double read awaiting adjudication
    b: int  # an ingest batch
    y: int  # a retraining cycle (failed)
    m: int  # a spare membership, deleted during the run
    e: int  # an ethics approval with its document
    z: int  # the series of case c's image
    v: int  # a queued validation report of version 99 on locked test set 1
    k: int  # a queued comparison of report v with itself


# (route name, method, path template, body, expected status per role in ROLES order)
A, R, L, M, D, DPO, OUT, ANON = range(8)
TABLE: list[tuple[str, str, str, object, tuple[int, ...]]] = [
    ("project-list", "get", "/api/projects/", None, (200, 200, 200, 200, 200, 200, 200, 401)),
    ("project-list", "post", "/api/projects/", {"name": "New"}, (403,) * 7 + (401,)),
    ("project-detail", "get", "/api/projects/{p}/", None, (200, 200, 200, 200, 200, 200, 404, 401)),
    ("project-detail", "patch", "/api/projects/{p}/", {"description": "x"},
     (403, 403, 200, 403, 200, 403, 404, 401)),
    # The loop's settings are the model owner's part of the settings, not the lead's.
    ("loop-settings", "patch", "/api/projects/{p}/loop-settings/",
     {"acquisition_strategy": "hybrid"},
     (403, 403, 403, 200, 200, 403, 404, 401)),
    ("membership-list", "get", "/api/projects/{p}/members/", None,
     (403, 403, 200, 403, 200, 403, 404, 401)),
    ("membership-list", "post", "/api/projects/{p}/members/", {"username": "nobody", "role": "x"},
     (403, 403, 400, 403, 400, 403, 404, 401)),
    ("membership-detail", "delete", "/api/projects/{p}/members/{m}/", None,
     (403, 403, 204, 403, 404, 403, 404, 401)),
    ("next-case", "post", "/api/projects/{p}/next-case/", None,
     (200, 403, 403, 403, 403, 403, 404, 401)),
    ("case-list", "get", "/api/projects/{p}/cases/", None,
     (403, 200, 200, 200, 200, 403, 404, 401)),
    ("review-queue", "get", "/api/projects/{p}/review-queue/", None,
     (403, 200, 200, 403, 200, 403, 404, 401)),
    ("audit-event-list", "get", "/api/projects/{p}/audit-events/", None,
     (403, 403, 200, 403, 200, 403, 404, 401)),
    ("audit-event-csv", "get", "/api/projects/{p}/audit-events.csv", None,
     (403, 403, 200, 403, 200, 403, 404, 401)),
    ("global-audit-event-list", "get", "/api/audit-events/", None, (403,) * 7 + (401,)),
    ("global-audit-event-csv", "get", "/api/audit-events.csv", None, (403,) * 7 + (401,)),
    ("project-export", "get", "/api/projects/{p}/exports/coco/", None,
     (403, 403, 200, 200, 200, 403, 404, 401)),
    ("project-import-coco", "post", "/api/projects/{p}/imports/coco/", None,
     (403, 403, 400, 403, 400, 403, 404, 401)),
    ("dashboard-queue", "get", "/api/projects/{p}/dashboard/queue/", None,
     (403, 403, 200, 403, 200, 403, 404, 401)),
    ("dashboard-throughput", "get", "/api/projects/{p}/dashboard/throughput/", None,
     (403, 403, 200, 403, 200, 403, 404, 401)),
    ("dashboard-review", "get", "/api/projects/{p}/dashboard/review/", None,
     (403, 200, 200, 403, 200, 403, 404, 401)),
    ("project-agreement", "get", "/api/projects/{p}/agreement/", None,
     (403, 200, 200, 403, 200, 403, 404, 401)),
    ("adjudication-list", "get", "/api/projects/{p}/adjudications/", None,
     (403, 200, 200, 403, 200, 403, 404, 401)),
    ("adjudication-detail", "get", "/api/adjudications/{d}/", None,
     (403, 200, 200, 403, 200, 403, 404, 401)),
    # A body that names no read: 400 for whoever may adjudicate.
    ("adjudication-resolve", "post", "/api/adjudications/{d}/resolve/", {"use": 0},
     (403, 400, 400, 403, 400, 403, 404, 401)),
    ("case-detail", "get", "/api/cases/{c}/", None, (200, 200, 200, 200, 200, 403, 404, 401)),
    ("case-detail", "get", "/api/cases/{o}/", None, (403, 200, 200, 200, 200, 403, 404, 401)),
    ("case-lease", "put", "/api/cases/{c}/lease/", None, (200, 403, 403, 403, 403, 403, 404, 401)),
    ("case-lease", "put", "/api/cases/{o}/lease/", None, (403, 403, 403, 403, 403, 403, 404, 401)),
    ("case-skip", "post", "/api/cases/{o}/skip/", {"reason": "x"},
     (403, 403, 403, 403, 403, 403, 404, 401)),
    ("my-annotation", "get", "/api/cases/{c}/annotation/", None,
     (200, 403, 403, 403, 403, 403, 404, 401)),
    ("my-annotation", "put", "/api/cases/{c}/annotation/", {"findings": {}},
     (428, 403, 403, 403, 403, 403, 404, 401)),
    ("annotation-submit", "post", "/api/cases/{o}/annotation/submit/", None,
     (403, 403, 403, 403, 403, 403, 404, 401)),
    ("annotation-detail", "get", "/api/annotations/{a}/", None,
     (200, 200, 200, 200, 200, 403, 404, 401)),
    ("annotation-detail", "get", "/api/annotations/{s}/", None,
     (403, 200, 200, 200, 200, 403, 404, 401)),
    ("annotation-review", "post", "/api/annotations/{s}/review/", {"decision": "accept"},
     (403, 428, 428, 403, 428, 403, 404, 401)),
    ("upload", "post", "/api/projects/{p}/uploads/", None,
     (403, 403, 400, 403, 400, 403, 404, 401)),
    ("clinical-import", "post", "/api/projects/{p}/clinical-imports/", None,
     (403, 403, 400, 403, 400, 403, 404, 401)),
    ("fhir-import", "post", "/api/projects/{p}/fhir-imports/", None,
     (403, 403, 400, 403, 400, 403, 404, 401)),
    ("ingest-batch-list", "get", "/api/projects/{p}/ingest-batches/", None,
     (403, 403, 200, 403, 200, 403, 404, 401)),
    ("ingest-batch-detail", "get", "/api/ingest-batches/{b}/", None,
     (403, 403, 200, 403, 200, 403, 404, 401)),
    ("quarantine-list", "get", "/api/projects/{p}/quarantine/", None,
     (403, 403, 200, 403, 200, 403, 404, 401)),
    # No image is held: a decision is refused (400), after the role check.
    ("quarantine-decision", "post", "/api/projects/{p}/quarantine/decisions/",
     {"instances": [1], "decision": "release", "comment": "no text"},
     (403, 403, 400, 403, 400, 403, 404, 401)),
    ("instance-file", "get", "/api/instances/{i}/file/", None,
     (200, 200, 200, 200, 200, 403, 404, 401)),
    ("instance-render", "get", "/api/instances/{i}/render.png", None,
     (200, 200, 200, 200, 200, 403, 404, 401)),
    ("instance-thumbnail", "get", "/api/instances/{i}/thumbnail.png", None,
     (200, 200, 200, 200, 200, 403, 404, 401)),
    # Not quarantined: clearing it again changes nothing (idempotent).
    ("instance-clear-quarantine", "post", "/api/instances/{i}/clear-quarantine/", None,
     (403, 403, 200, 403, 200, 403, 404, 401)),
    ("pacs-pull", "post", "/api/projects/{p}/pacs-pull/", {},
     (403, 403, 400, 403, 400, 403, 404, 401)),
    # Consent and the data-use report: leads and admins record consent; they and the data
    # protection officer see every patient's consent and ask for a report (naming no patient
    # is a 400). The officer sees nothing else of the patients' data.
    ("patient-consent", "get", "/api/projects/{p}/consent/", None,
     (403, 403, 200, 403, 200, 200, 404, 401)),
    ("patient-consent", "post", "/api/projects/{p}/consent/", {"status": "consented"},
     (403, 403, 400, 403, 400, 403, 404, 401)),
    ("data-use-report", "post", "/api/projects/{p}/data-use-report/", {},
     (403, 403, 400, 403, 400, 400, 404, 401)),
    ("held-out-case-list", "get", "/api/projects/{p}/held-out-cases/", None,
     (403, 403, 200, 403, 200, 403, 404, 401)),
    # No case is held out: a decision is refused (400), after the role check.
    ("held-out-decision", "post", "/api/projects/{p}/held-out-cases/decisions/",
     {"cases": [1], "decision": "include", "comment": "adult"},
     (403, 403, 400, 403, 400, 403, 404, 401)),
    # Ethics approvals: every member sees the status; leads and admins record and revoke (an
    # empty body: 400 after the role check); only admins switch the rule.
    ("project-ethics", "get", "/api/projects/{p}/ethics/", None,
     (200, 200, 200, 200, 200, 200, 404, 401)),
    ("project-ethics", "patch", "/api/projects/{p}/ethics/", {"requires_ethics_approval": False},
     (403, 403, 403, 403, 200, 403, 404, 401)),
    ("ethics-approval-list", "post", "/api/projects/{p}/ethics/approvals/", {},
     (403, 403, 400, 403, 400, 403, 404, 401)),
    ("ethics-approval-revoke", "post", "/api/ethics-approvals/{e}/revoke/", {},
     (403, 403, 400, 403, 400, 403, 404, 401)),
    ("ethics-approval-document", "get", "/api/ethics-approvals/{e}/document/", None,
     (200, 200, 200, 200, 200, 200, 404, 401)),
    ("case-suggestions", "get", "/api/cases/{c}/suggestions/", None,
     (200, 200, 200, 200, 200, 403, 404, 401)),
    ("case-served-suggestion", "get", "/api/cases/{c}/suggestion/", None,
     (200, 200, 200, 200, 200, 403, 404, 401)),
    ("case-explanation", "get", "/api/cases/{c}/explanation/?finding=nodule", None,
     (404, 404, 404, 404, 404, 403, 404, 401)),
    ("model-version-list", "get", "/api/projects/{p}/model-versions/", None,
     (403, 403, 200, 200, 200, 403, 404, 401)),
    ("model-version-promote", "post", "/api/projects/{p}/model-versions/1/promote/", None,
     (403, 403, 403, 404, 404, 403, 404, 401)),
    ("model-version-rollback", "post", "/api/projects/{p}/model-versions/rollback/", {},
     (403, 403, 403, 409, 409, 403, 404, 401)),
    ("cycle-list", "get", "/api/projects/{p}/cycles/", None,
     (403, 403, 200, 200, 200, 403, 404, 401)),
    ("cycle-detail", "get", "/api/cycles/{y}/", None, (403, 403, 200, 200, 200, 403, 404, 401)),
    ("cycle-cancel", "post", "/api/cycles/{y}/cancel/", None,
     (403, 403, 403, 409, 409, 403, 404, 401)),
    ("series-stack", "get", "/api/cases/{c}/series/{z}/stack/", None,
     (200, 200, 200, 200, 200, 403, 404, 401)),
    ("test-set", "get", "/api/projects/{p}/test-set/", None,
     (403, 403, 200, 200, 200, 403, 404, 401)),
    ("test-set", "put", "/api/projects/{p}/test-set/", {"fraction": 7},
     (403, 403, 400, 403, 400, 403, 404, 401)),
    ("version-validation-reports", "post",
     "/api/projects/{p}/model-versions/99/validation-reports/", {"resamples": 5},
     (403, 403, 403, 400, 400, 403, 404, 401)),
    ("project-validation-reports", "get", "/api/projects/{p}/validation-reports/", None,
     (403, 403, 200, 200, 200, 403, 404, 401)),
    ("validation-report", "get", "/api/validation-reports/{v}/", None,
     (403, 403, 200, 200, 200, 403, 404, 401)),
    # The report is still queued: no PDF, no model card; a report is not compared with itself.
    ("validation-report-pdf", "get", "/api/validation-reports/{v}/pdf/", None,
     (403, 403, 409, 409, 409, 403, 404, 401)),
    ("validation-report-model-card", "get", "/api/validation-reports/{v}/model-card/", None,
     (403, 403, 409, 409, 409, 403, 404, 401)),
    # The pair's comparison (k); a model owner asks again (the report is still queued: refused).
    ("validation-report-compare", "get", "/api/validation-reports/{v}/compare/{v}/", None,
     (403, 403, 200, 200, 200, 403, 404, 401)),
    ("validation-report-compare", "post", "/api/validation-reports/{v}/compare/{v}/", None,
     (403, 403, 403, 400, 400, 403, 404, 401)),
    ("version-comparison", "get", "/api/version-comparisons/{k}/", None,
     (403, 403, 200, 200, 200, 403, 404, 401)),
    # Version 99 has no weights to export.
    ("model-version-export", "get", "/api/projects/{p}/model-versions/99/export/", None,
     (403, 403, 403, 409, 409, 403, 404, 401)),
    # No plan, so nothing to lock.
    ("test-set-lock", "post", "/api/projects/{p}/test-set/lock/", None,
     (403, 403, 400, 403, 400, 403, 404, 401)),
    ("model-dashboard", "get", "/api/projects/{p}/model-dashboard/", None,
     (403, 403, 200, 200, 200, 403, 404, 401)),
    ("rerank", "post", "/api/projects/{p}/rerank/", None, (403, 403, 403, 202, 202, 403, 404, 401)),
    ("loop-settings", "get", "/api/projects/{p}/loop-settings/", None,
     (403, 403, 200, 200, 200, 403, 404, 401)),
    ("loop-settings", "patch", "/api/projects/{p}/loop-settings/", {"min_validation_labels": 20},
     (403, 403, 403, 200, 200, 403, 404, 401)),
    # Starting a cycle last: the model owner's starts one, the admin's finds it active.
    ("cycle-list", "post", "/api/projects/{p}/cycles/", None,
     (403, 403, 403, 202, 409, 403, 404, 401)),
    ("strategy-list", "get", "/api/strategies/", None, (200, 200, 200, 200, 200, 200, 200, 401)),
    ("api-token", "post", "/api/auth/token/", {"username": "ghost", "password": "x"}, (400,) * 8),
    # The API's description is public: it holds no data.
    ("api-schema", "get", "/api/schema/", None, (200, 200, 200, 200, 200, 200, 200, 200)),
    ("api-docs", "get", "/api/docs/", None, (200, 200, 200, 200, 200, 200, 200, 200)),
    ("health", "get", "/health/", None, (200, 200, 200, 200, 200, 200, 200, 200)),
    ("favicon", "get", "/favicon.ico", None, (302, 302, 302, 302, 302, 302, 302, 302)),
    # Pages: a session; anonymous visitors are sent to the login page.
    ("home", "get", "/", None, (200, 200, 200, 200, 200, 200, 200, 302)),
    ("login", "get", "/login/", None, (200, 200, 200, 200, 200, 200, 200, 200)),
    ("two-factor", "get", "/account/two-factor/", None, (200, 200, 200, 200, 200, 200, 200, 302)),
    ("project-upload", "get", "/projects/{p}/upload/", None,
     (403, 403, 200, 403, 200, 403, 404, 302)),
    ("project-label", "get", "/projects/{p}/label/", None,
     (200, 403, 403, 403, 403, 403, 404, 302)),
    ("project-review", "get", "/projects/{p}/review/", None,
     (403, 200, 200, 403, 200, 403, 404, 302)),
    ("project-models", "get", "/projects/{p}/models/", None,
     (403, 403, 200, 200, 200, 403, 404, 302)),
    ("project-dashboard", "get", "/projects/{p}/dashboard/", None,
     (403, 403, 200, 403, 200, 403, 404, 302)),
    ("project-adjudication", "get", "/projects/{p}/adjudication/", None,
     (403, 200, 200, 403, 200, 403, 404, 302)),
    ("project-quarantine", "get", "/projects/{p}/quarantine/", None,
     (403, 403, 200, 403, 200, 403, 404, 302)),
    ("project-audit", "get", "/projects/{p}/audit/", None,
     (403, 403, 200, 403, 200, 403, 404, 302)),
    # The data protection officer's page, with leads and admins.
    ("project-data-use", "get", "/projects/{p}/data-use/", None,
     (403, 403, 200, 403, 200, 200, 404, 302)),
    ("project-ethics-page", "get", "/projects/{p}/ethics/", None,
     (200, 200, 200, 200, 200, 200, 404, 302)),
    ("project-verification", "get", "/projects/{p}/verification/", None,
     (403, 403, 200, 200, 200, 403, 404, 302)),
    ("project-validation-report", "get", "/projects/{p}/verification/reports/{v}/", None,
     (403, 403, 200, 200, 200, 403, 404, 302)),
    ("project-start-comparison", "post", "/projects/{p}/verification/reports/{v}/compare/{v}/",
     None, (403, 403, 403, 400, 400, 403, 404, 302)),
    ("project-version-comparison", "get", "/projects/{p}/verification/comparisons/{k}/", None,
     (403, 403, 200, 200, 200, 403, 404, 302)),
    ("project-settings", "get", "/projects/{p}/settings/", None,
     (403, 403, 200, 200, 200, 403, 404, 302)),
    # Every project's trail: staff only (none of these users is staff).
    ("audit-trail", "get", "/audit/", None, (403, 403, 403, 403, 403, 403, 403, 302)),
    ("logout", "post", "/logout/", None, (302, 302, 302, 302, 302, 302, 302, 302)),
]  # fmt: skip
PAGES = {
    "home", "login", "logout", "two-factor", "project-upload", "project-label", "project-review",
    "project-models", "project-dashboard", "project-adjudication", "project-quarantine",
    "project-audit", "project-settings", "audit-trail", "project-ethics-page",
    "project-verification", "project-validation-report", "project-start-comparison",
    "project-data-use",
    "project-version-comparison",
}  # fmt: skip


def _routes(patterns: list[URLPattern | URLResolver], prefix: str = "") -> set[str]:
    names = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if str(pattern.pattern).startswith("admin/"):
                continue  # Django's admin: staff only, its own permissions
            names |= _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif pattern.name:
            names.add(pattern.name)
    return names


def test_the_table_names_every_route():
    assert _routes(get_resolver().url_patterns) - {row[0] for row in TABLE} == set()


@pytest.fixture
def scenario(project, cases, member, make_user) -> tuple[Ids, dict[str, APIClient]]:
    clients: dict[str, APIClient] = {}
    users = {role: member(role, role) for role in ROLES[:6]}
    outsider = make_user("outsider")
    other = projects.create_project(name="Other", created_by=outsider)
    for role in ("annotator", "reviewer", "lead", "model_owner", "admin", "dpo"):
        projects.add_member(project=other, user=outsider, role=role, added_by=None)
    users["outsider"] = outsider
    for role, user in users.items():
        client = APIClient()
        assert client.login(username=user.username, password=PASSWORD)
        clients[role] = client
    clients["anonymous"] = APIClient()

    annotator = users["annotator"]
    leased = queue.lease_next_case(project=project, annotator=annotator)
    draft = annotate.start_annotation(case=leased, annotator=annotator)
    double = next(c for c in cases if c.pk != leased.pk)
    Case.objects.filter(pk=double.pk).update(required_reads=2)
    double.refresh_from_db()
    read_a, _ = _disagreeing_reads(double, member("r1", "annotator"), member("r2", "annotator"))
    spare = member("spare", "annotator")
    ids = Ids(
        p=project.pk,
        c=leased.pk,
        o=double.pk,
        i=leased.study.series.first().instances.first().pk,
        a=draft.pk,
        s=read_a.pk,
        d=DoubleRead.objects.get(case=double).pk,
        b=IngestBatch.objects.create(project=project, source="command").pk,
        y=RetrainingCycle.objects.create(project=project, status="failed").pk,
        m=Membership.objects.get(project=project, user=spare).pk,
        e=ethics.record_approval(
            project=project,
            committee="Ethics committee",
            reference="EC-1",
            approved_on="2026-01-01",
            expires_on="2099-12-31",
            scope="retrospective chest radiographs",
            actor=None,
            document=b"approved",
            document_name="letter.txt",
        ).pk,
        z=leased.study.series.first().pk,
        v=(report := _queued_report(project)).pk,
        k=VersionComparison.objects.create(project=project, report_a=report, report_b=report).pk,
    )
    return ids, clients


def _queued_report(project) -> ValidationReport:
    test_set = LockedTestSet.objects.create(
        project=project, version=1, content_hash="0" * 64, content={}, case_count=0,
        labelled_count=0, reason="access test",
    )  # fmt: skip
    version = ModelVersion.objects.create(project=project, number=99)
    return ValidationReport.objects.create(
        project=project, model_version=version, test_set=test_set
    )


def _call(client: APIClient, method: str, path: str, body: object):
    if method in ("get", "delete"):
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, format="json")


def test_every_route_answers_each_role_as_the_policy_says(scenario):
    ids, clients = scenario
    failures = []
    for name, method, template, body, expected in TABLE:
        path = template.format(**vars(ids))
        got = tuple(_call(clients[role], method, path, body).status_code for role in ROLES)
        if got != expected:
            failures.append(f"{method.upper()} {template} ({name}): expected {expected}, got {got}")
    assert failures == [], "\n".join(failures)


def test_another_projects_member_never_gets_this_projects_data(scenario):
    ids, clients = scenario
    outsider = clients["outsider"]
    for name, method, template, body, _ in TABLE:
        if "{" not in template:
            continue
        response = _call(outsider, method, template.format(**vars(ids)), body)
        assert response.status_code == 404, f"{method} {template} ({name})"
        if name not in PAGES:
            assert response["Content-Type"].startswith("application/json"), name
