"""Every endpoint as every role, as a member of another project, and anonymously."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotations.services import projects

pytestmark = pytest.mark.django_db

ROLES = ["annotator", "reviewer", "lead", "model_owner", "admin", "outsider", "anonymous"]

# (method, url template, expected status per role in ROLES order)
TABLE = [
    ("get", "/api/projects/{p}/", [200, 200, 200, 200, 200, 404, 401]),
    ("get", "/api/projects/{p}/cases/", [403, 200, 200, 200, 200, 404, 401]),
    ("get", "/api/cases/{c}/", [403, 200, 200, 200, 200, 404, 401]),
    ("get", "/api/cases/{c}/suggestions/", [403, 200, 200, 200, 200, 404, 401]),
    # No model version yet: members who may see the case get a JSON 404 saying so.
    ("get", "/api/cases/{c}/explanation/?finding=nodule", [403, 404, 404, 404, 404, 404, 401]),
    ("post", "/api/projects/{p}/next-case/", [200, 403, 403, 403, 403, 404, 401]),
    ("get", "/api/projects/{p}/members/", [403, 403, 200, 403, 200, 404, 401]),
    ("get", "/api/projects/{p}/review-queue/", [403, 200, 200, 403, 200, 404, 401]),
    ("get", "/api/projects/{p}/audit-events/", [403, 403, 200, 403, 200, 404, 401]),
    ("get", "/api/projects/{p}/audit-events.csv", [403, 403, 200, 403, 200, 404, 401]),
    # Every project's trail and the logins: staff only (no project role is enough).
    ("get", "/api/audit-events/", [403, 403, 403, 403, 403, 403, 401]),
    ("get", "/api/audit-events.csv", [403, 403, 403, 403, 403, 403, 401]),
    ("get", "/api/projects/{p}/dashboard/queue/", [403, 403, 200, 403, 200, 404, 401]),
    ("get", "/api/projects/{p}/dashboard/throughput/?days=7", [403, 403, 200, 403, 200, 404, 401]),
    ("get", "/api/projects/{p}/dashboard/review/", [403, 200, 200, 403, 200, 404, 401]),
    ("get", "/api/projects/{p}/agreement/", [403, 200, 200, 403, 200, 404, 401]),
    ("get", "/api/projects/{p}/adjudications/", [403, 200, 200, 403, 200, 404, 401]),
    ("get", "/api/projects/{p}/model-versions/", [403, 403, 200, 200, 200, 404, 401]),
    ("get", "/api/projects/{p}/cycles/", [403, 403, 200, 200, 200, 404, 401]),
    ("patch", "/api/projects/{p}/", [403, 403, 200, 403, 200, 404, 401]),
    # The model owner starts a cycle; the admin after them finds it active (409).
    ("post", "/api/projects/{p}/cycles/", [403, 403, 403, 202, 409, 404, 401]),
    ("post", "/api/projects/{p}/rerank/", [403, 403, 403, 202, 202, 404, 401]),
    ("post", "/api/projects/{p}/model-versions/1/promote/", [403, 403, 403, 404, 404, 404, 401]),
    ("post", "/api/projects/{p}/model-versions/rollback/", [403, 403, 403, 409, 409, 404, 401]),
    ("get", "/api/strategies/", [200, 200, 200, 200, 200, 200, 401]),
    ("get", "/api/projects/{p}/exports/coco/", [403, 403, 200, 200, 200, 404, 401]),
    ("get", "/api/projects/{p}/exports/pdf/", [403, 403, 400, 400, 400, 404, 401]),
    ("get", "/api/projects/{p}/exports/coco/?version=9", [403, 403, 404, 404, 404, 404, 401]),
    ("get", "/api/projects/{p}/model-dashboard/", [403, 403, 200, 200, 200, 404, 401]),
    # A label import without its file: 400 once the caller may import.
    ("post", "/api/projects/{p}/imports/coco/", [403, 403, 400, 403, 400, 404, 401]),
]


@pytest.fixture
def clients(project, member, make_user, api_for):
    out = {role: api_for(member(role, role)) for role in ROLES[:5]}
    outsider = make_user("outsider")
    projects.create_project(name="Other", created_by=outsider)
    out["outsider"] = api_for(outsider)
    out["anonymous"] = APIClient()
    return out


@pytest.mark.parametrize(
    ("method", "url", "expected"), TABLE, ids=[f"{m} {u}" for m, u, _ in TABLE]
)
def test_endpoint_answers_each_role_as_the_policy_says(
    clients, project, cases, method, url, expected
):
    path = url.format(p=project.pk, c=cases[0].pk)
    got = {}
    for role in ROLES:
        body = {"description": "changed"} if method == "patch" else None
        response = getattr(clients[role], method)(path, body, format="json")
        got[role] = response.status_code
        content_type = response.get("Content-Type", "")
        assert (
            "application/json" in content_type
            or response.status_code == 204
            or (response.status_code == 200 and content_type.startswith("text/csv"))
        )
    assert got == dict(zip(ROLES, expected, strict=True))


def test_annotator_sees_a_case_once_it_is_leased_to_them(clients, project, cases):
    annotator = clients["annotator"]
    leased = annotator.post(f"/api/projects/{project.pk}/next-case/").json()
    assert annotator.get(f"/api/cases/{leased['id']}/").status_code == 200
    other = next(c for c in cases if c.pk != leased["id"])
    assert annotator.get(f"/api/cases/{other.pk}/").status_code == 403


def test_project_list_shows_only_projects_the_user_belongs_to(clients, project):
    names = [p["name"] for p in clients["annotator"].get("/api/projects/").json()]
    assert names == ["Chest"]
    assert clients["annotator"].get("/api/projects/").json()[0]["my_roles"] == ["annotator"]


def test_only_staff_create_projects_and_bad_schema_is_named(clients, make_user, api_for):
    assert clients["lead"].post("/api/projects/", {"name": "X"}, format="json").status_code == 403
    staff = api_for(make_user("staff", is_staff=True))
    bad = staff.post(
        "/api/projects/",
        {
            "name": "X",
            "label_schema": {
                "findings": [{"key": "a", "color": "red"}],
                "report_sections": [{"key": "r"}],
            },
        },
        format="json",
    )
    assert bad.status_code == 400
    assert "label_schema.findings[0].color" in bad.json()["message"]
    good = staff.post("/api/projects/", {"name": "X"}, format="json")
    assert good.status_code == 201
    assert sorted(good.json()["my_roles"]) == ["admin", "lead"]
    assert staff.post("/api/projects/", {"name": "X"}, format="json").status_code == 409
    # The double reads' agreement thresholds can be set at creation (the API fuzz found a 500).
    made = staff.post(
        "/api/projects/",
        {"name": "Y", "adjudication_box_f1": 0.4, "adjudication_report_rouge": 0.6},
        format="json",
    )
    assert made.status_code == 201, made.json()
    assert (made.json()["adjudication_box_f1"], made.json()["adjudication_report_rouge"]) == (
        0.4,
        0.6,
    )


def test_lead_adds_a_member_and_an_unknown_role_is_refused(clients, project, make_user):
    make_user("newbie")
    lead = clients["lead"]
    url = f"/api/projects/{project.pk}/members/"
    added = lead.post(url, {"username": "newbie", "role": "annotator"}, format="json")
    assert added.status_code == 202
    assert project.memberships.filter(user__username="newbie", role="annotator").exists()
    # An unknown name gets the same answer (tests/annotations/test_membership_grants.py).
    assert lead.post(url, {"username": "newbie", "role": "chief"}, format="json").status_code == 400


def test_lead_changes_settings_and_out_of_range_values_are_refused(clients, project):
    lead = clients["lead"]
    ok = lead.patch(f"/api/projects/{project.pk}/", {"double_read_fraction": 0.2}, format="json")
    assert ok.status_code == 200 and ok.json()["double_read_fraction"] == 0.2
    bad = lead.patch(f"/api/projects/{project.pk}/", {"validation_fraction": 1.5}, format="json")
    assert bad.status_code == 400 and "validation_fraction" in bad.json()["message"]


def test_token_endpoint_gives_a_token_for_scripts(make_user):
    make_user("scripter")
    client = APIClient()
    response = client.post(
        "/api/auth/token/", {"username": "scripter", "password": "correct horse battery"}
    )
    assert response.status_code == 200
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/projects/").status_code == 200


def test_openapi_schema_is_served_and_docs_page_loads(clients):
    schema = clients["lead"].get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert clients["lead"].get("/api/docs/").status_code == 200
