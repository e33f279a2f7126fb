"""A real Celery worker process runs MedLoop's tasks, on Redis and on the file-system broker."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from kombu import Connection

from annotations.models import Case
from annotations.tasks import release_expired_leases
from medloop.celery import app
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _expire_a_lease(project, member, cases) -> Case:
    reader = member("reader", "annotator")
    case = cases[0]
    Case.objects.filter(pk=case.pk).update(
        leased_to=reader, lease_expires_at=timezone.now() - timedelta(seconds=5)
    )
    return case


def _send(broker_url: str, transport_options: dict | None = None) -> None:
    with Connection(broker_url, transport_options=transport_options or {}) as conn:
        release_expired_leases.apply_async(connection=conn, queue="default")


def test_worker_on_redis_frees_expired_leases(project, member, cases, redis_url, start_worker):
    case = _expire_a_lease(project, member, cases)
    start_worker(redis_url)
    _send(redis_url)
    wait_for(
        lambda: Case.objects.get(pk=case.pk).leased_to_id is None,
        timeout=30,
        what="the worker to free the expired lease",
    )


def test_worker_on_file_system_broker_frees_expired_leases(
    project, member, cases, tmp_path, start_worker
):
    case = _expire_a_lease(project, member, cases)
    worker = start_worker("filesystem://")
    broker = tmp_path / "var" / "broker"  # the worker's folders (MEDLOOP_VAR_DIR=tmp_path/var)
    # Every folder named, the control one too: kombu's default is ./control, which would write
    # a default.exchange file into the directory the tests run from.
    for name in ("queue", "control"):
        (broker / name).mkdir(parents=True, exist_ok=True)
    _send(
        "filesystem://",
        {
            "data_folder_in": str(broker / "queue"),
            "data_folder_out": str(broker / "queue"),
            "control_folder": str(broker / "control"),
        },
    )
    wait_for(
        lambda: Case.objects.get(pk=case.pk).leased_to_id is None,
        timeout=30,
        what="the worker to free the expired lease",
    )
    assert "annotations.release_expired_leases" in Path(worker.log_path).read_text()
    assert app.conf.task_acks_late
