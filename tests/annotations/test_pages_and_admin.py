"""Server-rendered pages, admin and the OpenAPI schema."""

from __future__ import annotations

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_login_page_then_home_lists_projects_with_roles(client, project, member):
    member("alice", "annotator")
    assert client.get("/").status_code == 302
    response = client.post("/login/", {"username": "alice", "password": "correct horse battery"})
    assert response.status_code == 302
    home = client.get("/")
    assert b"Chest" in home.content and b"annotator" in home.content


def test_admin_lists_every_model_for_a_superuser(admin_client, cases):
    for path in ["project", "case", "annotation", "auditevent", "instance", "study", "membership"]:
        assert admin_client.get(f"/admin/annotations/{path}/").status_code == 200
    for path in ["modelversion", "suggestion", "retrainingcycle"]:
        assert admin_client.get(f"/admin/active_learning/{path}/").status_code == 200
    assert admin_client.get(f"/admin/annotations/case/{cases[0].pk}/change/").status_code == 200


def test_openapi_schema_validates_without_warnings(tmp_path):
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )
    assert "/api/projects/{project_pk}/next-case/" in (tmp_path / "schema.yaml").read_text()


def test_health_reports_database_ok(client):
    assert client.get("/health/").json() == {"status": "ok"}


def test_unknown_api_path_and_oversized_ids_answer_json_404(client):
    for path in ["/api/nothing-here/", "/api/cases/99999999999999999999999/"]:
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


def test_upload_page_for_leads_only(client, project, member):
    member("lena", "lead")
    member("ann", "annotator")
    client.login(username="ann", password="correct horse battery")
    assert client.get(f"/projects/{project.pk}/upload/").status_code == 403
    client.login(username="lena", password="correct horse battery")
    page = client.get(f"/projects/{project.pk}/upload/")
    assert page.status_code == 200 and b"de-identified" in page.content
    assert client.get("/projects/999999999/upload/").status_code == 404


def test_workspace_pages_check_roles_before_anything_else(client, project, member):
    member("lena", "lead")
    member("ann", "annotator")
    client.login(username="lena", password="correct horse battery")
    assert client.get(f"/projects/{project.pk}/label/").status_code == 403
    client.login(username="ann", password="correct horse battery")
    assert client.get(f"/projects/{project.pk}/review/").status_code == 403
    assert client.get("/projects/424242/label/").status_code == 404
    home = client.get("/")
    assert b"Start labeling" in home.content and b"Review" not in home.content
