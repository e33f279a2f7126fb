"""Integrity under concurrency, on PostgreSQL: 50 annotators asking for cases 200 times each
never hold one case at once, concurrent edits of one annotation lose no update, and a task
queued in a transaction that rolls back is never published."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
import redis
from django.db import connection

from active_learning.ml import synthetic
from active_learning.services import cycles
from annotations.models import Annotation, AuditEvent, Case
from annotations.services import annotate, queue
from medloop.celery import app
from tests.conftest import api_client_for, ingest_synthetic
from tests.support.concurrency import run_concurrently

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CLIENTS = 50
REQUESTS_PER_CLIENT = 200


@pytest.fixture(scope="module")
def forty_cases_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic-forty")
    synthetic.generate_dataset(seed=5, count=40, out_dir=out, size=64)
    return out


def test_fifty_clients_two_hundred_requests_each_never_share_a_case(
    project, member, forty_cases_dir
):
    """Each client asks for its next case 200 times; it gives most cases back (so that the
    same 40 cases are fought over all along) and submits every fifth. A case handed out while
    another client holds it is recorded as a violation."""
    if connection.vendor != "postgresql":
        pytest.skip("the scale test runs on PostgreSQL (SQLite serialises every hand-out)")
    ingest_synthetic(project, forty_cases_dir)
    Case.objects.filter(project=project).update(required_reads=CLIENTS)
    readers = [member(f"reader{i}", "annotator") for i in range(CLIENTS)]
    holders: dict[int, int] = {}
    violations: list[tuple[int, int, int]] = []
    counts = {"leased": 0, "empty": 0, "submitted": 0}
    lock = threading.Lock()

    def work(index: int) -> None:
        reader = readers[index]
        rng = random.Random(index)
        for request in range(REQUESTS_PER_CLIENT):
            case = queue.lease_next_case(project=project, annotator=reader)
            if case is None:
                with lock:
                    counts["empty"] += 1
                continue
            with lock:
                counts["leased"] += 1
                if case.pk in holders:
                    violations.append((case.pk, holders[case.pk], reader.pk))
                holders[case.pk] = reader.pk
            submitting = request % 5 == 4
            if submitting:
                annotation = annotate.start_annotation(case=case, annotator=reader)
            else:
                time.sleep(rng.uniform(0, 0.003))  # reading the case
            # Let go in the books first: once the database frees the case, another client may
            # lease it at once.
            with lock:
                del holders[case.pk]
            if submitting:
                annotate.submit(
                    annotation=annotation, actor=reader, expected_version=annotation.version
                )
                with lock:
                    counts["submitted"] += 1
            else:
                queue.release_lease(case=case, annotator=reader)
            if rng.random() < 0.1:
                connection.close()  # a new connection now and then, as web workers do

    errors = run_concurrently(CLIENTS, work)
    assert errors == []
    assert violations == []
    assert counts["leased"] + counts["empty"] == CLIENTS * REQUESTS_PER_CLIENT
    assert counts["leased"] > CLIENTS * REQUESTS_PER_CLIENT // 2
    # The database agrees: every submission is one annotation, nobody read a case twice.
    assert Annotation.objects.filter(status="submitted").count() == counts["submitted"]
    leases = AuditEvent.objects.filter(action="case.lease").count()
    assert leases == counts["leased"]
    assert not Case.objects.filter(leased_to__isnull=False).exists()


def test_concurrent_edits_of_one_annotation_keep_exactly_one_write(project, member, cases):
    """Twenty tabs of one annotator save a draft from the same ETag at once: one write wins,
    the others get 412 with the current version, a write without If-Match gets 428."""
    reader = member("reader", "annotator")
    case = queue.lease_next_case(project=project, annotator=reader)
    api = api_client_for(reader)
    etag = api.get(f"/api/cases/{case.pk}/annotation/")["ETag"]
    tabs = 20
    statuses: dict[int, int] = {}
    bodies: dict[int, dict] = {}

    def save(index: int) -> None:
        client = api_client_for(reader)
        response = client.put(
            f"/api/cases/{case.pk}/annotation/",
            {"report": {"findings": f"tab {index}"}},
            format="json",
            HTTP_IF_MATCH=etag,
        )
        statuses[index] = response.status_code
        bodies[index] = response.json()

    assert run_concurrently(tabs, save) == []
    winners = [i for i, status in statuses.items() if status == 200]
    assert len(winners) == 1, statuses
    assert sorted(statuses.values()) == [200] + [412] * (tabs - 1)
    stale = next(bodies[i] for i in statuses if statuses[i] == 412)
    assert stale["current_version"] == 2
    annotation = Annotation.objects.get(case=case, annotator=reader)
    assert annotation.version == 2
    assert annotation.report == {"findings": f"tab {winners[0]}"}
    blind = api.put(f"/api/cases/{case.pk}/annotation/", {"report": {}}, format="json")
    assert blind.status_code == 428
    annotation.refresh_from_db()
    assert annotation.version == 2


@pytest.fixture
def redis_broker(redis_url):
    """This process publishes to Redis; the training queue starts empty."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    old = (app.conf.broker_url, app.conf.broker_transport_options)
    app.conf.broker_url, app.conf.broker_transport_options = redis_url, {}
    app._after_fork()
    yield client
    app.conf.broker_url, app.conf.broker_transport_options = old
    app._after_fork()


def test_a_task_queued_in_a_rolled_back_transaction_is_never_sent(loop_project, redis_broker):
    from django.db import transaction

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        cycle = cycles.trigger_cycle(project=loop_project)
        assert cycle.pk is not None
        raise Abort
    assert redis_broker.llen("training") == 0
    assert not loop_project.cycles.exists()
    # The same call committed publishes its task: the check above can see a message.
    cycles.trigger_cycle(project=loop_project)
    assert redis_broker.llen("training") == 1


# -------------------------------------------------------------------------- backup and restore
REPO = Path(__file__).resolve().parents[2]
CHECKSUMS = {
    "annotations": "SELECT md5(string_agg(concat_ws('|', id, case_id, annotator_id, status,"
    " version, findings::text, report::text), ',' ORDER BY id)) FROM annotations_annotation",
    "boxes": "SELECT md5(string_agg(concat_ws('|', id, annotation_id, instance_id, x, y, width,"
    " height, finding, origin), ',' ORDER BY id)) FROM annotations_box",
    "revisions": "SELECT md5(string_agg(concat_ws('|', id, annotation_id, version, content::text),"
    " ',' ORDER BY id)) FROM annotations_annotationrevision",
    "instances": "SELECT md5(string_agg(concat_ws('|', id, sop_instance_uid, sha256, file_path),"
    " ',' ORDER BY id)) FROM annotations_instance",
}


def _figures(cursor) -> dict[str, object]:
    from django.apps import apps

    figures: dict[str, object] = {}
    for model in apps.get_models():
        table = model._meta.db_table
        cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608 (table names of our models)
        figures[table] = cursor.fetchone()[0]
    for name, sql in CHECKSUMS.items():
        cursor.execute(sql)
        figures[name] = cursor.fetchone()[0]
    return figures


def _file_digests(root: Path) -> dict[str, str]:
    import hashlib

    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_backup_restores_into_a_second_database_with_equal_counts_and_checksums(
    loop_project, tmp_path
):
    """scripts/backup.sh of the live test database and storage, scripts/restore.sh into a new
    database and folder: every table's row count, the annotations', boxes', revisions' and
    instances' checksums, and every stored file's SHA-256 are equal."""
    import os
    import subprocess

    import psycopg
    from django.conf import settings

    from active_learning.services import versions
    from tests.integration.conftest import current_database_url
    from tests.support.training import train_version

    if connection.vendor != "postgresql":
        pytest.skip("the backup procedure is PostgreSQL's (pg_dump / pg_restore)")
    versions.promote(train_version(loop_project, auto_promote=False))
    source_url = current_database_url()
    admin_url = source_url.rsplit("/", 1)[0] + "/postgres"
    target_name = f"{connection.settings_dict['NAME']}_restored"
    target_url = source_url.rsplit("/", 1)[0] + f"/{target_name}"
    backup_dir, restored_storage = tmp_path / "backup", tmp_path / "restored-storage"
    with psycopg.connect(
        admin_url.replace("postgres://", "postgresql://", 1), autocommit=True
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{target_name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{target_name}"')
    try:
        env = {
            **os.environ,
            "DATABASE_URL": source_url,
            "MEDLOOP_STORAGE_DIR": str(settings.STORAGE_DIR),
        }
        subprocess.run(
            ["bash", "scripts/backup.sh", str(backup_dir)], cwd=REPO, env=env, check=True
        )
        env = {**env, "DATABASE_URL": target_url, "MEDLOOP_STORAGE_DIR": str(restored_storage)}
        subprocess.run(
            ["bash", "scripts/restore.sh", str(backup_dir)], cwd=REPO, env=env, check=True
        )

        with connection.cursor() as cursor:
            original = _figures(cursor)
        with psycopg.connect(target_url.replace("postgres://", "postgresql://", 1)) as restored_db:
            restored = _figures(restored_db.cursor())
        assert original["annotations_annotation"] == Annotation.objects.count() > 0
        assert original["active_learning_modelversion"] == 1
        assert restored == original
        assert _file_digests(restored_storage) == _file_digests(Path(settings.STORAGE_DIR))
        # A tampered archive is refused before anything is restored.
        with (backup_dir / "storage.tar").open("ab") as archive:
            archive.write(b"\0")
        failed = subprocess.run(
            ["bash", "scripts/restore.sh", str(backup_dir)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        assert failed.returncode != 0 and "FAILED" in failed.stdout + failed.stderr
    finally:
        with psycopg.connect(
            admin_url.replace("postgres://", "postgresql://", 1), autocommit=True
        ) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{target_name}" WITH (FORCE)')
