"""schemathesis against MedLoop's own OpenAPI schema, in process (the Django WSGI app): every
operation is called with generated valid and invalid input by a user who holds every role in a
project with cases, a draft, submitted reads, a pending adjudication, model versions, a cycle, a
quarantined image and an ingest batch. No answer may be a 5xx, and every documented answer must
match its schema (body and content type).

Path ids are drawn mostly from rows that exist (so requests get past the 404s), sometimes from
what schemathesis generated. Each example runs in a transaction that is rolled back, so every
call sees the same data. Hypothesis is derandomized: a failure reproduces run after run.

The schema is loaded at import (schemathesis' lazy ``from_fixture`` needs a pytest private
that pytest 9 no longer has), so the data is a module fixture; ``-s`` prints the status codes
each operation answered, to see which ones got past validation."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from active_learning.models import ModelVersion
from active_learning.services import cycles
from annotations.models import Annotation, Case, DoubleRead, Instance, Role
from annotations.services import annotate, batches, projects, queue
from tests.conftest import ingest_synthetic
from tests.support.labels import submit_ground_truth

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

# Examples per operation in the fuzzing phase; the coverage phase adds its own boundary and
# type-violating cases. Sized so the module runs in about two minutes on two cores.
MAX_EXAMPLES = 50
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
CONFIG = schemathesis.Config.from_dict(
    {
        # Authentication is ours (a token header): generated credentials would only test 401s.
        "generation": {"mode": "all", "with-security-parameters": False},
        "phases": {"stateful": {"enabled": False}},
    }
)


def _read(case: Case, user: Any, findings: dict[str, str], report: str) -> None:
    annotation = annotate.start_annotation(case=case, annotator=user)
    absent = dict.fromkeys(case.project.finding_keys, "absent")
    annotate.submit(
        annotation=annotation,
        actor=user,
        expected_version=annotation.version,
        findings={**absent, **findings},
        report={"findings": report, "impression": ""},
        boxes=[],
    )


# Ids to draw path parameters from, filled by ``fuzz_world`` before any example runs.
KNOWN_IDS: dict[str, list[Any]] = {}


@pytest.fixture(scope="module")
def fuzz_world(
    django_db_setup: None, django_db_blocker: Any, synthetic_dir: Path
) -> Iterator[dict[str, list[Any]]]:
    """The data the fuzzer works on, made once for the module inside a transaction that is
    rolled back at the end (each test's own transaction nests in it as a savepoint)."""
    with django_db_blocker.unblock(), transaction.atomic():
        KNOWN_IDS.update(_build_world(synthetic_dir))
        yield KNOWN_IDS
        KNOWN_IDS.clear()
        for label, seen in sorted(STATUSES.items()):
            print(label, dict(sorted(seen.items())))
        transaction.set_rollback(True)


def _build_world(synthetic_dir: Path) -> dict[str, list[Any]]:
    def user(username: str, **extra: Any) -> Any:
        return get_user_model().objects.create_user(
            username=username, password="correct horse battery", **extra
        )

    owner = user("owner", is_staff=True)
    project = projects.create_project(name="Chest", created_by=owner, validation_fraction=0.0)
    fuzzer = user("fuzzer", is_staff=True)  # staff: the global audit trail too
    for role in Role.values:
        projects.add_member(project=project, user=fuzzer, role=role, added_by=None)
    second = user("second")
    projects.add_member(project=project, user=second, role="annotator", added_by=None)
    cases = ingest_synthetic(project, synthetic_dir)
    submit_ground_truth(
        project=project, cases=cases, synthetic_dir=synthetic_dir, annotator=fuzzer, count=2
    )
    # A pending adjudication: two reads of one case that disagree.
    double = cases[7]
    Case.objects.filter(pk=double.pk).update(required_reads=2)
    double.refresh_from_db()
    _read(double, fuzzer, {"nodule": "present"}, "Nodule in the right upper lobe.")
    _read(double, second, {"effusion": "present"}, "Small left effusion.")
    # A draft the fuzzer holds the lease for.
    held = queue.lease_next_case(project=project, annotator=fuzzer)
    assert held is not None
    annotate.start_annotation(case=held, annotator=fuzzer)
    ModelVersion.objects.create(project=project, number=1, status="retired")
    ModelVersion.objects.create(project=project, number=2, status="candidate")
    cycles.trigger_cycle(project=project, triggered_by=fuzzer)
    instances = list(Instance.objects.filter(series__study__project=project).order_by("pk"))
    instances[5].quarantined = True
    instances[5].quarantine_reason = "burned-in text"
    instances[5].save(update_fields=["quarantined", "quarantine_reason"])
    batch = batches.ingest_sources(
        project=project,
        sources=batches.path_sources(synthetic_dir / "manifest.json"),
        source="upload",
        actor=fuzzer,
    )
    other = projects.create_project(name="Other", created_by=user("stranger"))
    token, _ = Token.objects.get_or_create(user=fuzzer)
    return {
        "token": [token.key],
        "project_pk": [project.pk, other.pk],
        "case_pk": [c.pk for c in cases],
        "annotation_pk": list(
            Annotation.objects.filter(case__project=project).values_list("pk", flat=True)
        ),
        "double_read_pk": list(DoubleRead.objects.values_list("pk", flat=True)),
        "membership_pk": list(project.memberships.values_list("pk", flat=True)),
        "number": [1, 2],
        "cycle_pk": list(project.cycles.values_list("pk", flat=True)),
        "batch_pk": [batch.pk],
        "instance_pk": [i.pk for i in instances],
    }


schema = schemathesis.openapi.from_dict(
    SchemaGenerator().get_schema(request=None, public=True), config=CONFIG
)
schema.app = WSGIHandler()


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    if path_parameters is None:  # an operation without path parameters
        return st.none()
    return st.fixed_dictionaries(
        {
            name: st.sampled_from([*KNOWN_IDS[name], value])
            if KNOWN_IDS.get(name)
            else st.just(value)
            for name, value in path_parameters.items()
        }
    )


# Status codes seen per operation ("GET /api/..."): shows which operations got past validation.
STATUSES: dict[str, Counter[int]] = defaultdict(Counter)


@schema.hook
def after_call(context: schemathesis.HookContext, case: schemathesis.Case, response: Any) -> None:
    STATUSES[case.operation.label][response.status_code] += 1


@contextmanager
def _request_in_test_transaction() -> Iterator[None]:
    """What Django's test client does: the start and end of a request must not close the
    connection that holds the test's transaction. The example's own writes are rolled back."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        with transaction.atomic():
            yield
            transaction.set_rollback(True)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_without_server_errors_and_as_documented(
    case: schemathesis.Case, fuzz_world: dict[str, list[Any]]
) -> None:
    with _request_in_test_transaction():
        case.call_and_validate(
            headers={"Authorization": f"Token {fuzz_world['token'][0]}"}, checks=CHECKS
        )
