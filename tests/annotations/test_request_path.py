"""The annotator's hot path (issue 20): how many queries next-case and submit make, that the
answers built without DRF's serializers equal the serializers' (the API's schema), and that
every access is on the audit trail, written in the request's one transaction."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotations.api import representations
from annotations.api.annotation_views import SubmittedAnnotationSerializer
from annotations.api.serializers import NextCaseSerializer
from annotations.models import Annotation, AuditEvent, Box, Case, Instance, ShownSuggestion
from annotations.services import annotate, queue
from medloop.compiled_queries import CompiledQuery

# Statements per call as a token-authenticated annotator with nothing open makes them, counted
# by Django (BEGIN, SAVEPOINT and COMMIT included; the persistent connection's health check is
# not a Django query). Raise them only with a reason: each is a database round trip per case.
#   next-case: token (with the second-factor facts), project with roles, BEGIN, held cases,
#   open work, next case (FOR UPDATE SKIP LOCKED on PostgreSQL), lease, case with study and
#   patient, labs, series, images, working copy, its INSERT (ON CONFLICT DO NOTHING: no
#   savepoint around it), audit (one INSERT for case.lease and annotation.create), COMMIT.
NEXT_CASE_QUERIES = 15
#   submit: token, BEGIN, case, roles, working copy with its suggestion, images, case locked,
#   version compare-and-swap, boxes deleted, boxes inserted, revision, lease freed, reads
#   counted, case state, audit (case.annotate and annotation.submit in one INSERT), COMMIT,
#   returned reads waiting.
SUBMIT_QUERIES = 17


def _plain(data: Any) -> Any:
    return json.loads(json.dumps(data))


def _submit_body(case: dict[str, Any]) -> dict[str, Any]:
    instance = case["series"][0]["instances"][0]["id"]
    return {
        "findings": {"nodule": "present"},
        "boxes": [{"instance_id": instance, "x": 4, "y": 4, "width": 8, "height": 8,
                   "finding": "nodule"}],
        "report": {"impression": "Nodule."},
    }  # fmt: skip


def _statements(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"].split()[0].upper() for q in queries.captured_queries]


@pytest.mark.both_backends
@pytest.mark.django_db(transaction=True)
def test_next_case_and_submit_make_a_fixed_number_of_queries_in_one_transaction(
    project, member, cases, api_for
):
    api = api_for(member("reader", "annotator"))
    url = f"/api/projects/{project.pk}/next-case/"
    api.post(url)  # the first request of a process loads what it caches (content types, ...)
    first = api.post(url).json()
    submitted = api.post(
        f"/api/cases/{first['id']}/annotation/submit/",
        _submit_body(first),
        format="json",
        HTTP_IF_MATCH=first["annotation"]["etag"],
    )
    assert submitted.status_code == 200

    with CaptureQueriesContext(connection) as handing_out:
        answer = api.post(url)
    assert answer.status_code == 200
    case = answer.json()
    with CaptureQueriesContext(connection) as submitting:
        done = api.post(
            f"/api/cases/{case['id']}/annotation/submit/",
            _submit_body(case),
            format="json",
            HTTP_IF_MATCH=case["annotation"]["etag"],
        )
    assert done.status_code == 200, done.content

    assert len(handing_out) == NEXT_CASE_QUERIES, "\n".join(_statements(handing_out))
    assert len(submitting) == SUBMIT_QUERIES, "\n".join(_statements(submitting))
    for queries in (handing_out, submitting):
        sql = [q["sql"] for q in queries.captured_queries]
        # One commit per call, and the audit events are written before it, not after.
        commits = [i for i, s in enumerate(sql) if s.upper().startswith("COMMIT")]
        audits = [i for i, s in enumerate(sql) if "annotations_auditevent" in s]
        assert len(commits) == 1 and len(audits) == 1 and audits[0] < commits[0]
    if connection.vendor == "postgresql":
        assert any("SKIP LOCKED" in q["sql"] for q in handing_out.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_every_access_of_the_loop_is_audited_even_a_refused_submit(project, member, cases, api_for):
    reader = member("reader", "annotator")
    api = api_for(reader)
    case = api.post(f"/api/projects/{project.pk}/next-case/").json()
    annotation_id = case["annotation"]["id"]

    def actions() -> list[tuple[str, str]]:
        return list(
            AuditEvent.objects.filter(actor=reader)
            .order_by("id")
            .values_list("action", "object_id")
        )

    assert actions() == [("case.lease", str(case["id"])), ("annotation.create", str(annotation_id))]
    stale = api.post(
        f"/api/cases/{case['id']}/annotation/submit/",
        _submit_body(case),
        format="json",
        HTTP_IF_MATCH=f'"annotation-{annotation_id}-v7"',
    )
    assert stale.status_code == 412
    # Refused and rolled back, but the access is on the trail.
    assert actions()[2:] == [("case.annotate", str(case["id"]))]
    assert Annotation.objects.get(pk=annotation_id).status == Annotation.Status.DRAFT
    done = api.post(
        f"/api/cases/{case['id']}/annotation/submit/",
        _submit_body(case),
        format="json",
        HTTP_IF_MATCH=case["annotation"]["etag"],
    )
    assert done.status_code == 200
    assert actions()[3:] == [
        ("case.annotate", str(case["id"])),
        ("annotation.submit", str(annotation_id)),
    ]


@pytest.mark.django_db
def test_the_hot_answers_equal_the_serializers(project, member, cases, make_user):
    reader = member("reader", "annotator")
    case = queue.lease_next_case(project=project, annotator=reader)
    assert case is not None
    # A case with more than one image, one of them held in quarantine (not shown).
    first = Instance.objects.filter(series__study=case.study).first()
    assert first is not None
    Instance.objects.create(
        series=first.series, sop_instance_uid="2.25.1.2", sop_class_uid=first.sop_class_uid,
        instance_number=2, file_path=first.file_path, sha256=first.sha256,
        size_bytes=first.size_bytes, rows=first.rows, columns=first.columns,
    )  # fmt: skip
    Instance.objects.create(
        series=first.series, sop_instance_uid="2.25.1.3", sop_class_uid=first.sop_class_uid,
        instance_number=3, file_path=first.file_path, sha256=first.sha256,
        size_bytes=first.size_bytes, rows=first.rows, columns=first.columns, quarantined=True,
    )  # fmt: skip
    annotation = annotate.start_annotation(case=case, annotator=reader)
    ShownSuggestion.objects.create(
        annotation=annotation, model_version_pk=1, model_version_number=3,
        boxes=[{"instance_id": first.pk, "x": 1, "y": 2, "width": 3, "height": 4,
                "finding": "nodule", "score": 0.7, "id": "s1"}],
        findings_prefilled={"nodule": "present"}, finding_probabilities={"nodule": 0.8},
        report_draft={"impression": "Nodule."}, served_at=timezone.now(),
    )  # fmt: skip
    Box.objects.create(
        annotation=annotation, instance=first, x=1.5, y=2, width=3, height=4, finding="nodule",
        origin=Box.Origin.values[-1], suggestion_box_id="s1",
    )  # fmt: skip
    Annotation.objects.filter(pk=annotation.pk).update(
        reviewed_by=make_user("rita"), review_comment="Look again.", findings={"nodule": "present"}
    )
    from annotations.selectors import case_with_context

    loaded = case_with_context(case.pk)
    assert loaded is not None
    fresh = Annotation.objects.select_related("shown_suggestion").get(pk=annotation.pk)
    assert len(loaded.lab_results.all()) > 0 and fresh.shown_suggestion is not None
    expected = NextCaseSerializer(loaded, context={"annotation": fresh}).data
    assert _plain(representations.next_case(loaded, fresh)) == _plain(expected)
    assert list(representations.next_case(loaded, fresh)) == list(expected)
    waiting = [5, 7]
    expected_submit = SubmittedAnnotationSerializer(
        fresh, context={"returned_waiting": waiting}
    ).data
    assert _plain(representations.submitted(fresh, waiting)) == _plain(expected_submit)
    # And for a new working copy, with nothing hanging off it.
    other = queue.lease_next_case(project=project, annotator=member("ann", "annotator"))
    assert other is not None
    loaded = case_with_context(other.pk)
    assert loaded is not None and other.leased_to is not None
    new = annotate.start_annotation(case=loaded, annotator=other.leased_to, with_suggestion=True)
    expected = NextCaseSerializer(loaded, context={"annotation": new}).data
    assert _plain(representations.next_case(loaded, new)) == _plain(expected)


@pytest.mark.both_backends
@pytest.mark.django_db
def test_a_compiled_query_gives_what_compiling_afresh_gives(project, member, cases):
    from django.db import transaction

    reader = member("reader", "annotator")
    build = queue._next_needing_read
    compiled = CompiledQuery(build)
    now = timezone.now()
    with transaction.atomic():  # FOR UPDATE compiles only inside a transaction
        for values in (
            {"project_id": project.pk, "annotator_id": reader.pk, "now": now, "exclude": []},
            {"project_id": 42, "annotator_id": 7, "now": now, "exclude": [cases[0].pk]},
            {"project_id": 3, "annotator_id": 9, "now": now, "exclude": [5, 6, 7]},
            {"project_id": 3, "annotator_id": 9, "now": now.replace(year=2020), "exclude": [1]},
        ):
            assert compiled.sql_with_params(**values) == build(**values).query.sql_with_params()
        picked = next(compiled.objects(Case, project_id=project.pk, annotator_id=reader.pk,
                                       now=now, exclude=[]))  # fmt: skip
        assert picked == build(project_id=project.pk, annotator_id=reader.pk, now=now,
                               exclude=[]).first()  # fmt: skip
    ids = CompiledQuery(queue._returned_waiting_ids)
    values = {"project_id": project.pk, "annotator_id": reader.pk, "now": now}
    assert ids.sql_with_params(**values) == (
        queue._returned_waiting_ids(**values).query.sql_with_params()
    )


@pytest.mark.django_db
def test_a_value_the_query_does_not_pass_as_a_parameter_is_refused():
    compiled = CompiledQuery(lambda *, project_id: Case.objects.filter(pk__gt=0))
    with pytest.raises(ValueError, match="not passed as SQL parameters"):
        compiled.sql_with_params(project_id=1)


@pytest.mark.both_backends
@pytest.mark.django_db
def test_a_compiled_fetch_gives_the_querysets_objects(
    project, member, cases, django_assert_num_queries
):
    import datetime as dt

    from annotations.models import EthicsApproval, Membership
    from annotations.services import ethics

    def with_context(*, case_pk: int) -> Any:
        return (
            Case.objects.select_related("project", "study__patient")
            .prefetch_related("lab_results")
            .filter(pk=case_pk)
        )

    compiled = CompiledQuery(with_context)
    for case in cases[:3]:
        expected = list(with_context(case_pk=case.pk))
        with django_assert_num_queries(2):  # the case with its joins, then its labs
            fetched = compiled.fetch(case_pk=case.pk)
        assert fetched == expected
        with django_assert_num_queries(0):  # everything came with it
            assert fetched[0].study.patient.pseudonym == expected[0].study.patient.pseudonym
            assert fetched[0].project.name == project.name
            labs = [(r.code, r.value) for r in fetched[0].lab_results.all()]
        assert labs == [(r.code, r.value) for r in expected[0].lab_results.all()]
        assert labs
    reader = member("reader", "annotator", "reviewer")
    roles = CompiledQuery(
        lambda *, user_id, project_id: Membership.objects.filter(
            user_id=user_id, project_id=project_id
        ).values_list("role", flat=True)
    )
    assert sorted(roles.fetch(user_id=reader.pk, project_id=project.pk)) == [
        "annotator", "reviewer"
    ]  # fmt: skip
    assert roles.fetch(user_id=reader.pk, project_id=project.pk + 1) == []
    # Dates as values (SQLite passes them as text): the approval in force on a given day.
    today = dt.date(2026, 6, 1)
    approval = EthicsApproval.objects.create(
        project=project, committee="REC", reference="R-1", scope="all",
        approved_on=today - dt.timedelta(days=10), expires_on=today + dt.timedelta(days=10),
    )  # fmt: skip
    assert ethics.current_approval(project, today=today) == approval
    assert ethics.current_approval(project, today=today + dt.timedelta(days=11)) is None
    assert ethics.current_approval(project, today=today - dt.timedelta(days=11)) is None


@pytest.mark.both_backends
@pytest.mark.django_db
def test_case_with_context_loads_what_prefetching_loads(
    project, member, cases, django_assert_num_queries
):
    from django.db.models import Prefetch

    from annotations.models import Series
    from annotations.selectors import case_with_context

    case = cases[0]
    first = Instance.objects.filter(series__study=case.study).first()
    assert first is not None
    # A second series, numbered before the first, with two images out of order.
    extra = Series.objects.create(
        study=case.study, series_instance_uid="2.25.77", modality="DX", series_number=0
    )
    for number in (3, 2):
        Instance.objects.create(
            series=extra, sop_instance_uid=f"2.25.77.{number}", instance_number=number,
            sop_class_uid=first.sop_class_uid, file_path=first.file_path, sha256=first.sha256,
            size_bytes=first.size_bytes, rows=first.rows, columns=first.columns,
        )  # fmt: skip
    reference = (
        Case.objects.select_related("project", "study__patient", "leased_to")
        .prefetch_related(
            "lab_results",
            Prefetch(
                "study__series",
                queryset=Series.objects.order_by("series_number", "id").prefetch_related(
                    Prefetch(
                        "instances", queryset=Instance.objects.order_by("instance_number", "id")
                    )
                ),
            ),
        )
        .get(pk=case.pk)
    )
    with django_assert_num_queries(4):
        loaded = case_with_context(case.pk)
    assert loaded is not None
    with django_assert_num_queries(0):
        answer = representations.case_detail(loaded)
        assert loaded.study.series.all()[0].instances.all()[0].series.study.case == loaded
    assert answer == representations.case_detail(reference)
    assert answer["series"][0]["series_instance_uid"] == "2.25.77"
    assert [i["instance_number"] for i in answer["series"][0]["instances"]] == [2, 3]
    assert answer["lab_results"]
    # A query chained on a primed relation asks the database, as after prefetch_related.
    assert loaded.study.series.filter(series_number=0).get() == extra
    assert loaded.lab_results.filter(pk__in=[r.pk for r in reference.lab_results.all()]).count()
    assert case_with_context(10**9) is None


@pytest.mark.both_backends
@pytest.mark.django_db
def test_a_compiled_update_runs_the_statement_update_runs(project, member, cases):
    from medloop.compiled_queries import CompiledUpdate

    reader = member("reader", "annotator")

    def lease(*, case_pk: int, annotator_id: int, expires: Any) -> Any:
        fields = {"leased_to_id": annotator_id, "lease_expires_at": expires}
        return Case.objects.filter(pk=case_pk), fields

    compiled = CompiledUpdate(lease)
    expires = timezone.now()
    for case in cases[:2]:
        with CaptureQueriesContext(connection) as ours:
            assert compiled.run(case_pk=case.pk, annotator_id=reader.pk, expires=expires) == 1
        with CaptureQueriesContext(connection) as djangos:
            queryset, fields = lease(case_pk=case.pk, annotator_id=reader.pk, expires=expires)
            assert queryset.update(**fields) == 1
        assert ours.captured_queries[0]["sql"] == djangos.captured_queries[0]["sql"]
        case.refresh_from_db()
        assert (case.leased_to_id, case.lease_expires_at) == (reader.pk, expires)
    free = CompiledUpdate(
        lambda *, case_pk, annotator_id: (
            Case.objects.filter(pk=case_pk, leased_to_id=annotator_id),
            {"leased_to": None, "lease_expires_at": None},
        )
    )
    assert free.run(case_pk=cases[0].pk, annotator_id=reader.pk + 1) == 0
    assert free.run(case_pk=cases[0].pk, annotator_id=reader.pk) == 1
    assert Case.objects.get(pk=cases[0].pk).leased_to_id is None
