"""Fixtures shared by the whole suite. Data is built through services, as users would."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from active_learning.ml import synthetic
from annotations.models import Case, Project
from annotations.services import clinical, ingest, projects

IN_CI = os.environ.get("CI", "").lower() == "true"


def _redis_reachable(url: str) -> str | None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except Exception as exc:  # any failure: not reachable
        return str(exc)
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under CI=true the real services are required: fail at once, never skip."""
    if not IN_CI:
        return
    problems = []
    engine = settings.DATABASES["default"]["ENGINE"]
    if os.environ.get("TEST_DATABASE", "postgres") != "sqlite" and "postgresql" not in engine:
        problems.append(f"tests must run on PostgreSQL under CI, settings use {engine}")
    error = _redis_reachable(settings.REDIS_URL)
    if error:
        problems.append(f"Redis at {settings.REDIS_URL} is not reachable: {error}")
    if problems:
        pytest.exit("Required services missing under CI=true: " + "; ".join(problems), 1)


@pytest.fixture(scope="session", autouse=True)
def _flush_lifts_the_audit_guard() -> Iterator[None]:
    """Transactional tests end with Django's flush, one TRUNCATE of every table, which the audit
    table's trigger refuses on PostgreSQL (migration 0006). In tests only, the flush disables
    the guard triggers around its TRUNCATE, in the same transaction (as prune_audit_events
    does); outside tests `manage.py flush` keeps refusing to wipe the audit trail."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    # Through base: importing sqlite3.operations first is a circular import.
    from django.db.backends.sqlite3.base import DatabaseOperations as SQLiteOperations

    from annotations.services.audit_retention import (
        AUDIT_TABLE,
        guard_statements,
        sqlite_guard_statements,
    )

    original = DatabaseOperations.sql_flush
    original_sqlite = SQLiteOperations.sql_flush

    def sql_flush(self: Any, style: Any, tables: Any, **options: Any) -> list[str]:
        statements = original(self, style, tables, **options)
        if not statements or AUDIT_TABLE not in tables:
            return statements
        return [*guard_statements(enable=False), *statements, *guard_statements(enable=True)]

    def sqlite_flush(self: Any, style: Any, tables: Any, **options: Any) -> list[str]:
        # SQLite's guard (migration 0008) is dropped and re-created around the flush's DELETEs.
        statements = original_sqlite(self, style, tables, **options)
        if not statements or AUDIT_TABLE not in tables:
            return statements
        return [
            *sqlite_guard_statements(enable=False),
            *statements,
            *sqlite_guard_statements(enable=True),
        ]

    DatabaseOperations.sql_flush = sql_flush  # type: ignore[method-assign]
    SQLiteOperations.sql_flush = sqlite_flush  # type: ignore[method-assign]
    yield
    DatabaseOperations.sql_flush = original  # type: ignore[method-assign]
    SQLiteOperations.sql_flush = original_sqlite  # type: ignore[method-assign]


@pytest.fixture
def redis_url() -> str:
    error = _redis_reachable(settings.REDIS_URL)
    if error:
        if IN_CI:
            pytest.fail(f"Redis is required under CI: {error}")
        pytest.skip(f"Redis not reachable: {error}")
    return settings.REDIS_URL


@pytest.fixture
def make_user(db: None) -> Callable[..., AbstractUser]:
    def make(username: str, **extra: object) -> AbstractUser:
        return get_user_model().objects.create_user(
            username=username, password="correct horse battery", **extra
        )

    return make


@pytest.fixture
def project(db: None, make_user: Callable[..., AbstractUser]) -> Project:
    owner = make_user("owner", is_staff=True)
    return projects.create_project(name="Chest", created_by=owner, validation_fraction=0.0)


@pytest.fixture
def member(project: Project, make_user: Callable[..., AbstractUser]) -> Callable[..., AbstractUser]:
    """member("alice", "annotator", "reviewer") -> a user with those roles in ``project``."""

    def make(username: str, *roles: str) -> AbstractUser:
        user = make_user(username)
        for role in roles:
            projects.add_member(project=project, user=user, role=role, added_by=None)
        return user

    return make


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve small synthetic cases as DICOM files plus manifest (made once per session)."""
    out = tmp_path_factory.mktemp("synthetic")
    synthetic.generate_dataset(seed=11, count=12, out_dir=out, size=128)
    return out


def ingest_synthetic(project: Project, directory: Path, count: int | None = None) -> list[Case]:
    """Ingest synthetic files into ``project`` and attach their clinical context."""
    cases = synthetic.load_manifest(directory)
    if count is not None:
        cases = cases[:count]
    out = []
    for item in cases:
        ingest.ingest_dicom_path(project=project, path=directory / item["file"])
        case = clinical.case_for_accession(
            project=project, accession_number=item["accession_number"]
        )
        assert case is not None
        clinical.set_clinical_context(
            case=case,
            indication=item["indication"],
            history=item["history"],
            labs=[clinical.LabInput(**lab) for lab in item["labs"]],
        )
        out.append(case)
    return out


@pytest.fixture
def cases(project: Project, synthetic_dir: Path) -> list[Case]:
    return ingest_synthetic(project, synthetic_dir)


def api_client_for(user: AbstractUser) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api_for() -> Callable[[AbstractUser], APIClient]:
    return api_client_for


@pytest.fixture
def loop_project(
    project: Project, cases: list[Case], member: Callable[..., AbstractUser], synthetic_dir: Path
) -> Project:
    """A project with a tiny model, three validation cases and six submitted labels."""
    from tests.support.labels import make_loop_project

    return make_loop_project(
        project=project,
        cases=cases,
        synthetic_dir=synthetic_dir,
        lead=member("boss", "lead"),
        annotator=member("reader", "annotator"),
    )
