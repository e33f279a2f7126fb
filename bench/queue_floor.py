"""The floor for bench/queue_load.py: a bare Django app (no middleware, no DRF, no ORM) that does
MedLoop's hand-out and submit as raw SQL on MedLoop's own tables, served by the same gunicorn
settings on the same database. What MedLoop spends beyond it is framework and bookkeeping, not
the work itself.

Never part of the product: it is configured here (``settings.configure``), mounted only by
``python -m gunicorn queue_floor:application`` with ``--chdir bench`` from bench/queue_load.py,
and checks nothing MedLoop's API checks beyond what the bench's clients need (a valid, unexpired
token; the annotator role; the lease; If-Match). The statements, one transaction per request:

POST /api/projects/{id}/next-case/  (same address and answer keys as MedLoop's)
    token + user (1 read), role (1 read); then in one transaction: the cases the annotator holds
    (1 read), their unfinished drafts and returned reads (1 read), the next case in queue order
    with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (1 read; SQLite: IMMEDIATE transaction), the
    lease (1 write), the case with study and patient, its labs, its series and images (3 reads),
    the working copy (1 read, 1 write), two audit events (case.lease, annotation.create: 1 write).

POST /api/cases/{id}/annotation/submit/  (If-Match)
    token + user (1 read), the case (1 read), role (1 read); then in one transaction: the
    working copy (1 read), the case's images (1 read), the case row locked (1 read), the
    compare-and-swap on the version (1 write), boxes replaced (2 writes), the revision (1
    write), the lease freed (1 write), reads done counted (1 read) and the state (1 write),
    audit events (case.annotate, annotation.submit: 1 write); after commit the returned reads
    waiting (1 read).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import dj_database_url
from django.conf import settings

if not settings.configured:
    _db: dict[str, Any] = dict(dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60))
    if _db["ENGINE"] == "django.db.backends.sqlite3":
        # As MedLoop's settings: IMMEDIATE takes the write lock before the first read.
        _db["CONN_MAX_AGE"] = 60
        _db["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-floor-only",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        DATABASES={"default": _db},
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        USE_TZ=True,
        TIME_ZONE="UTC",
    )

from django.core.wsgi import get_wsgi_application
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

LEASE_SECONDS = 900
TOKEN_MAX_AGE = dt.timedelta(days=30)
AUDIT_SQL = (
    "INSERT INTO annotations_auditevent (created_at, actor_id, actor_username, action, "
    "project_id, object_type, object_id, ip_address, user_agent, detail) VALUES "
)
AUDIT_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _db_time(value: dt.datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _user(request: HttpRequest) -> tuple[int, str] | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Token "):
        return None
    # The expiry is checked in SQL: the two databases return the token's time differently
    # (SQLite's driver, converted by Django's backend, as a naive datetime).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT u.id, u.username FROM authtoken_token t "
            "JOIN auth_user u ON u.id = t.user_id WHERE t.key = %s AND u.is_active "
            "AND t.created > %s",
            [header[6:], _db_time(_now() - TOKEN_MAX_AGE)],
        )
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1])


def _is_annotator(cursor: Any, project_id: int, user_id: int) -> bool:
    cursor.execute(
        "SELECT role FROM annotations_membership WHERE project_id = %s AND user_id = %s",
        [project_id, user_id],
    )
    return "annotator" in {r[0] for r in cursor.fetchall()}


def _audit(cursor: Any, rows: list[tuple[Any, ...]]) -> None:
    cursor.execute(AUDIT_SQL + ", ".join([AUDIT_ROW] * len(rows)), [v for r in rows for v in r])


NEXT_CASE_SQL = (
    "SELECT c.id FROM annotations_case c WHERE c.project_id = %s AND c.state = 'open' "
    "AND (c.leased_to_id IS NULL OR c.lease_expires_at <= %s OR c.leased_to_id = %s) "
    "AND EXISTS (SELECT 1 FROM annotations_instance i JOIN annotations_series s "
    "ON s.id = i.series_id WHERE s.study_id = c.study_id AND NOT i.quarantined) "
    "AND NOT EXISTS (SELECT 1 FROM annotations_annotation a WHERE a.case_id = c.id "
    "AND a.annotator_id = %s AND a.status IN ('submitted', 'accepted')) "
    "AND NOT EXISTS (SELECT 1 FROM annotations_caseskip k WHERE k.case_id = c.id "
    "AND k.annotator_id = %s) "
    "AND (SELECT COUNT(*) FROM annotations_annotation a WHERE a.case_id = c.id "
    "AND a.annotator_id <> %s AND a.status IN ('submitted', 'accepted', 'returned')) "
    "< c.required_reads "
    "ORDER BY c.priority DESC, c.id LIMIT 1"
)


def _next_case_sql(skip_locked: bool) -> str:
    return f"{NEXT_CASE_SQL} FOR UPDATE OF c SKIP LOCKED" if skip_locked else NEXT_CASE_SQL


def next_case(request: HttpRequest, project_id: int) -> HttpResponse:
    if request.method != "POST":
        return _error(405, "POST")
    who = _user(request)
    if who is None:
        return _error(401, "token")
    user_id, username = who
    ip = request.META.get("REMOTE_ADDR")
    agent = request.META.get("HTTP_USER_AGENT", "")[:300]
    now = _now()
    db_now = _db_time(now)
    with transaction.atomic(), connection.cursor() as cursor:
        if not _is_annotator(cursor, project_id, user_id):
            return _error(403, "annotator")
        cursor.execute(
            "SELECT id FROM annotations_case WHERE project_id = %s AND state = 'open' "
            "AND leased_to_id = %s AND lease_expires_at > %s ORDER BY id",
            [project_id, user_id, db_now],
        )
        held = [r[0] for r in cursor.fetchall()]
        cursor.execute(
            "SELECT a.case_id, a.status FROM annotations_annotation a JOIN annotations_case c "
            "ON c.id = a.case_id WHERE a.annotator_id = %s AND c.project_id = %s "
            "AND a.status IN ('draft', 'returned')",
            [user_id, project_id],
        )
        unfinished = cursor.fetchall()
        if held or unfinished:
            return _error(409, "the floor serves only annotators with nothing open")
        cursor.execute(
            _next_case_sql(connection.features.has_select_for_update_skip_locked),
            [project_id, db_now, user_id, user_id, user_id, user_id],
        )
        row = cursor.fetchone()
        if row is None:
            return HttpResponse(status=204)
        case_id = row[0]
        cursor.execute(
            "UPDATE annotations_case SET leased_to_id = %s, lease_expires_at = %s WHERE id = %s",
            [user_id, _db_time(now + dt.timedelta(seconds=LEASE_SECONDS)), case_id],
        )
        cursor.execute(
            "SELECT c.indication, c.history, c.priority, c.required_reads, st.id, "
            "st.study_instance_uid, st.study_date, st.description, p.pseudonym "
            "FROM annotations_case c JOIN annotations_study st ON st.id = c.study_id "
            "JOIN annotations_patient p ON p.id = st.patient_id WHERE c.id = %s",
            [case_id],
        )
        case = cursor.fetchone()
        cursor.execute(
            "SELECT code, name, value, value_text, unit FROM annotations_labresult "
            "WHERE case_id = %s ORDER BY id",
            [case_id],
        )
        labs = [dict(zip(("code", "name", "value", "value_text", "unit"), r, strict=True))
                for r in cursor.fetchall()]  # fmt: skip
        cursor.execute(
            "SELECT s.id, s.series_instance_uid, s.modality, i.id, i.sop_instance_uid, i.rows, "
            "i.columns, i.number_of_frames, i.sha256 FROM annotations_series s "
            "JOIN annotations_instance i ON i.series_id = s.id "
            "WHERE s.study_id = %s AND NOT i.quarantined ORDER BY s.series_number, s.id, "
            "i.instance_number, i.id",
            [case[4]],
        )
        series: dict[int, dict[str, Any]] = {}
        for s_id, s_uid, modality, i_id, i_uid, rows, columns, frames, sha in cursor.fetchall():
            entry = series.setdefault(
                s_id, {"id": s_id, "series_instance_uid": s_uid, "modality": modality,
                       "instances": []}
            )  # fmt: skip
            entry["instances"].append(
                {"id": i_id, "sop_instance_uid": i_uid, "rows": rows, "columns": columns,
                 "number_of_frames": frames, "sha256": sha}
            )  # fmt: skip
        cursor.execute(
            "SELECT id, version FROM annotations_annotation WHERE case_id = %s "
            "AND annotator_id = %s",
            [case_id, user_id],
        )
        annotation = cursor.fetchone()
        audit = [(db_now, user_id, username, "case.lease", project_id, "annotations.Case",
                  str(case_id), ip, agent, "{}")]  # fmt: skip
        if annotation is None:
            cursor.execute(
                "INSERT INTO annotations_annotation (case_id, annotator_id, status, version, "
                "findings, report, rejected_suggestion_boxes, review_comment, is_adjudication, "
                "created_at, updated_at) VALUES (%s, %s, 'draft', 1, '{}', '{}', '[]', '', "
                "%s, %s, %s) RETURNING id, version",
                [case_id, user_id, False, db_now, db_now],
            )
            annotation = cursor.fetchone()
            audit.append((db_now, user_id, username, "annotation.create", project_id,
                          "annotations.Annotation", str(annotation[0]), None, "",
                          "{}"))  # fmt: skip
        _audit(cursor, audit)
    return JsonResponse(
        {
            "id": case_id,
            "project": project_id,
            "patient": case[8],
            "study_instance_uid": case[5],
            "study_date": case[6].isoformat() if hasattr(case[6], "isoformat") else case[6],
            "study_description": case[7],
            "indication": case[0],
            "history": case[1],
            "lab_results": labs,
            "series": list(series.values()),
            "annotation": {
                "id": annotation[0],
                "version": annotation[1],
                "etag": f'"annotation-{annotation[0]}-v{annotation[1]}"',
                "findings": {},
                "report": {},
                "boxes": [],
            },
        }
    )


def submit(request: HttpRequest, case_id: int) -> HttpResponse:
    if request.method != "POST":
        return _error(405, "POST")
    who = _user(request)
    if who is None:
        return _error(401, "token")
    user_id, username = who
    body = json.loads(request.body)
    ip = request.META.get("REMOTE_ADDR")
    agent = request.META.get("HTTP_USER_AGENT", "")[:300]
    now = _now()
    db_now = _db_time(now)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT project_id, study_id, required_reads FROM annotations_case WHERE id = %s",
            [case_id],
        )
        case = cursor.fetchone()
        if case is None or not _is_annotator(cursor, case[0], user_id):
            return _error(404, "case")
        project_id, study_id, required_reads = case
        cursor.execute(
            "SELECT id, version, status FROM annotations_annotation WHERE case_id = %s "
            "AND annotator_id = %s",
            [case_id, user_id],
        )
        annotation = cursor.fetchone()
        if annotation is None or annotation[2] not in ("draft", "returned"):
            return _error(409, "no working copy")
        cursor.execute(
            "SELECT i.id, i.rows, i.columns FROM annotations_instance i JOIN annotations_series s "
            "ON s.id = i.series_id WHERE s.study_id = %s AND NOT i.quarantined",
            [study_id],
        )
        images = {r[0]: r for r in cursor.fetchall()}
        boxes = body.get("boxes") or []
        if any(b["instance_id"] not in images for b in boxes):
            return _error(400, "image")
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        cursor.execute(
            "SELECT leased_to_id, lease_expires_at FROM annotations_case WHERE id = %s"  # noqa: S608
            + lock,
            [case_id],
        )
        cursor.fetchone()
        expected = request.META.get("HTTP_IF_MATCH", "")
        if expected != f'"annotation-{annotation[0]}-v{annotation[1]}"':
            return _error(412, "If-Match")
        findings = json.dumps(body.get("findings") or {})
        report = json.dumps(body.get("report") or {})
        cursor.execute(
            "UPDATE annotations_annotation SET version = version + 1, status = 'submitted', "
            "submitted_at = %s, updated_at = %s, findings = %s, report = %s "
            "WHERE id = %s AND version = %s",
            [db_now, db_now, findings, report, annotation[0], annotation[1]],
        )
        if cursor.rowcount != 1:
            return _error(412, "If-Match")
        version = annotation[1] + 1
        cursor.execute("DELETE FROM annotations_box WHERE annotation_id = %s", [annotation[0]])
        if boxes:
            cursor.execute(
                "INSERT INTO annotations_box (annotation_id, instance_id, frame, x, y, width, "  # noqa: S608
                "height, finding, origin, suggestion_box_id) VALUES "
                + ", ".join(["(%s, %s, 1, %s, %s, %s, %s, %s, 'drawn', '')"] * len(boxes)),
                [v for b in boxes for v in (annotation[0], b["instance_id"], b["x"], b["y"],
                                            b["width"], b["height"], b["finding"])],
            )  # fmt: skip
        content = json.dumps({"findings": body.get("findings") or {},
                              "report": body.get("report") or {}, "boxes": boxes})  # fmt: skip
        cursor.execute(
            "INSERT INTO annotations_annotationrevision (annotation_id, version, content, "
            "submitted_by_id, submitted_at) VALUES (%s, %s, %s, %s, %s)",
            [annotation[0], version, content, user_id, db_now],
        )
        cursor.execute(
            "UPDATE annotations_case SET leased_to_id = NULL, lease_expires_at = NULL "
            "WHERE id = %s AND leased_to_id = %s",
            [case_id, user_id],
        )
        cursor.execute(
            "SELECT COUNT(*) FROM annotations_annotation WHERE case_id = %s "
            "AND status IN ('submitted', 'accepted')",
            [case_id],
        )
        if cursor.fetchone()[0] >= required_reads:
            cursor.execute(
                "UPDATE annotations_case SET state = 'complete' WHERE id = %s", [case_id]
            )
        _audit(
            cursor,
            [
                (db_now, user_id, username, "case.annotate", project_id, "annotations.Case",
                 str(case_id), ip, agent, "{}"),
                (db_now, user_id, username, "annotation.submit", project_id,
                 "annotations.Annotation", str(annotation[0]), None, "",
                 json.dumps({"version": version})),
            ],
        )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.case_id FROM annotations_annotation a JOIN annotations_case c "
            "ON c.id = a.case_id WHERE a.annotator_id = %s AND a.status = 'returned' "
            "AND c.project_id = %s AND c.state = 'open' LIMIT 10",
            [user_id, project_id],
        )
        waiting = [r[0] for r in cursor.fetchall()]
    response = JsonResponse(
        {"id": annotation[0], "case": case_id, "status": "submitted", "version": version,
         "returned_waiting": waiting}
    )  # fmt: skip
    response["ETag"] = f'"annotation-{annotation[0]}-v{version}"'
    return response


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [
    path("health/", health),
    path("api/projects/<int:project_id>/next-case/", next_case),
    path("api/cases/<int:case_id>/annotation/submit/", submit),
]

application = get_wsgi_application()
