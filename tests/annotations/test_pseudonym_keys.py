"""Per-project pseudonym keys stay out of the database (issue 15, Low): a new project stores
only a salt and its key is derived from MEDLOOP_PSEUDONYM_KEY, so a dump of the database cannot
recompute pseudonyms; projects created before keep their stored secret (and so their
pseudonyms), flagged as legacy. The migration is checked on a fresh SQLite database in a child
process."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from pathlib import Path

import pydicom
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings
from pydicom.data import get_testdata_file

from annotations.dicom.deidentify import deidentify
from annotations.models import Patient, Project
from annotations.pseudonym_keys import derive_project_key
from annotations.services import ingest, projects
from tests.support.sqlite_script import run_on_sqlite

pytestmark = pytest.mark.django_db
CT_SMALL = Path(get_testdata_file("CT_small.dcm"))  # type: ignore[arg-type]
MASTER = "a-master-pseudonym-key-for-tests-" + "Zq8" * 10


@override_settings(MEDLOOP_PSEUDONYM_KEY=MASTER)
def test_a_new_project_stores_a_salt_and_no_key(make_user):
    project = projects.create_project(name="Derived", created_by=make_user("boss"))
    stored = Project.objects.filter(pk=project.pk).values().get()
    assert stored["legacy_pseudonym_secret"] == "" and len(stored["pseudonym_salt"]) == 32
    expected = hmac.new(
        MASTER.encode(),
        b"medloop-project-pseudonym-key-v1\x00" + stored["pseudonym_salt"].encode(),
        hashlib.sha256,
    ).hexdigest()
    assert project.pseudonym_secret == expected and not project.uses_legacy_pseudonym_secret
    assert expected not in json.dumps(stored, default=str)
    other = projects.create_project(name="Other", created_by=None)
    assert other.pseudonym_salt != project.pseudonym_salt
    assert other.pseudonym_secret != project.pseudonym_secret


def test_ingest_pseudonyms_follow_the_master_key_not_the_database(make_user):
    with override_settings(MEDLOOP_PSEUDONYM_KEY=MASTER):
        project = projects.create_project(name="Derived", created_by=make_user("boss"))
        ingest.ingest_dicom_path(project=project, path=CT_SMALL)
        patient = Patient.objects.get(project=project)
        _, expected = deidentify(
            pydicom.dcmread(CT_SMALL), secret=derive_project_key(MASTER, project.pseudonym_salt)
        )
        assert patient.pseudonym == expected
    # Everything the database holds, with a guessed master key, gives other pseudonyms.
    with override_settings(MEDLOOP_PSEUDONYM_KEY="a-guess-" + "x" * 50):
        fresh = Project.objects.get(pk=project.pk)
        _, guessed = deidentify(pydicom.dcmread(CT_SMALL), secret=fresh.pseudonym_secret)
        assert guessed != patient.pseudonym
    with override_settings(MEDLOOP_PSEUDONYM_KEY=""), pytest.raises(ImproperlyConfigured):
        _ = Project.objects.get(pk=project.pk).pseudonym_secret


def test_a_legacy_project_keeps_its_secret_and_is_listed(make_user):
    legacy = projects.create_project(name="Old", created_by=make_user("boss"))
    Project.objects.filter(pk=legacy.pk).update(legacy_pseudonym_secret="ab" * 32)
    legacy.refresh_from_db()
    assert legacy.uses_legacy_pseudonym_secret and legacy.pseudonym_secret == "ab" * 32
    projects.create_project(name="New", created_by=None)
    out = io.StringIO()
    call_command("pseudonym_keys", stdout=out)
    lines = out.getvalue().splitlines()
    assert any("Old" in line and "LEGACY" in line for line in lines)
    assert any("New" in line and "derived from MEDLOOP_PSEUDONYM_KEY" in line for line in lines)
    assert lines[-1] == "1 project(s) with a legacy secret in the database."


MIGRATION_SCRIPT = r"""
import json
import django
django.setup()
from django.core.management import call_command
from django.db import connection

call_command("migrate", "annotations", "0009", verbosity=0)
with connection.cursor() as cursor:
    for name, secret in (("one", "11" * 32), ("two", "22" * 32)):
        cursor.execute(
            "INSERT INTO annotations_project (name, description, modality, label_schema,"
            " auto_retrain_threshold, double_read_fraction, adjudication_box_f1,"
            " adjudication_report_rouge, validation_fraction, lease_seconds,"
            " acquisition_strategy, auto_promote, promotion_metric, training_epochs,"
            " model_config, dicom_ae_title, dicomweb_url, pseudonym_secret, created_at,"
            " dicom_calling_ae_titles)"
            " VALUES (%s, '', 'DX', '{}', 50, 0, 0.5, 0.5, 0.1, 900, 'hybrid', 1,"
            " 'combined', 5, '{}', NULL, '', %s, '2026-01-01', '[]')",
            [name, secret],
        )
call_command("migrate", verbosity=0)
from annotations.models import Project
rows = [
    {"name": p.name, "secret": p.pseudonym_secret, "legacy": p.uses_legacy_pseudonym_secret,
     "salt": p.pseudonym_salt}
    for p in Project.objects.order_by("name")
]
print(json.dumps(rows))
"""


def test_migration_keeps_existing_projects_secrets_and_gives_each_a_salt(tmp_path):
    rows = run_on_sqlite(MIGRATION_SCRIPT, tmp_path, MEDLOOP_PSEUDONYM_KEY=MASTER)
    assert [(r["name"], r["secret"], r["legacy"]) for r in rows] == [
        ("one", "11" * 32, True),
        ("two", "22" * 32, True),
    ]
    assert all(len(r["salt"]) == 32 for r in rows) and rows[0]["salt"] != rows[1]["salt"]
