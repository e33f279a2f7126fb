"""The member form (issue 15, Low): a lead cannot grant (or take away) the admin role, and the
answer does not tell which usernames exist."""

from __future__ import annotations

import pytest

from annotations.models import AuditEvent, Membership
from annotations.services import projects
from annotations.services.errors import NotAllowed

pytestmark = pytest.mark.django_db


def test_a_lead_cannot_grant_the_admin_role_to_anyone(project, member, make_user, api_for):
    lead_user = member("lena", "lead")
    make_user("newbie")
    lead = api_for(lead_user)
    url = f"/api/projects/{project.pk}/members/"
    for username in ("newbie", "lena"):
        refused = lead.post(url, {"username": username, "role": "admin"}, format="json")
        assert refused.status_code == 403, username
        assert "Only a project admin" in refused.json()["message"]
    assert (
        not Membership.objects.filter(project=project, role="admin")
        .exclude(user__username="owner")
        .exists()
    )
    with pytest.raises(NotAllowed):
        projects.add_member(project=project, user=lead_user, role="admin", added_by=lead_user)
    # A project admin can.
    admin = api_for(member("ada", "admin"))
    assert (
        admin.post(url, {"username": "newbie", "role": "admin"}, format="json").status_code == 202
    )
    assert Membership.objects.filter(
        project=project, user__username="newbie", role="admin"
    ).exists()


def test_a_lead_cannot_remove_an_admins_membership(project, member, api_for):
    lead = api_for(member("lena", "lead"))
    member("ada", "admin")
    admin_membership = Membership.objects.get(project=project, user__username="ada")
    url = f"/api/projects/{project.pk}/members/{admin_membership.pk}/"
    assert lead.delete(url).status_code == 403
    assert Membership.objects.filter(pk=admin_membership.pk).exists()
    member("spare", "annotator")
    spare = Membership.objects.get(project=project, user__username="spare")
    assert lead.delete(f"/api/projects/{project.pk}/members/{spare.pk}/").status_code == 204


def test_the_member_form_answers_alike_whether_the_username_exists_or_not(
    project, member, make_user, api_for
):
    lead = api_for(member("lena", "lead"))
    make_user("newbie")
    make_user("former", is_active=False)
    url = f"/api/projects/{project.pk}/members/"

    def answer(username: str) -> tuple[int, dict[str, str]]:
        response = lead.post(url, {"username": username, "role": "annotator"}, format="json")
        body = response.json()
        # The name is echoed back as typed: compare the rest of the answer.
        return response.status_code, {
            key: value.replace(repr(username), "NAME") if isinstance(value, str) else value
            for key, value in body.items()
            if key != "username"
        }

    existing, ghost, inactive = answer("newbie"), answer("ghost"), answer("former")
    assert existing == ghost == inactive
    assert existing[0] == 202
    assert project.memberships.filter(user__username="newbie", role="annotator").exists()
    assert not project.memberships.filter(user__username__in=["ghost", "former"]).exists()
    tried = AuditEvent.objects.filter(action="membership.add_unknown", project_id=project.pk)
    assert sorted(e.detail["username"] for e in tried) == ["former", "ghost"]
