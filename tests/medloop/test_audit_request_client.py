"""Every audit event of a web request records the client's address and user agent, also when
the service that records it is not handed the request (issue 19, section 4); outside a request
(commands, tasks) there is none, and a request's client never outlives it."""

from __future__ import annotations

import pytest

from annotations.models import AuditEvent
from annotations.services import projects
from medloop.request_client import current_client

pytestmark = pytest.mark.django_db


def test_a_service_called_by_a_view_records_the_requests_client(project, member, api_for):
    lead = api_for(member("lena", "lead"))
    response = lead.patch(
        f"/api/projects/{project.pk}/",
        {"lease_seconds": 600},
        format="json",
        REMOTE_ADDR="192.0.2.10",
        HTTP_USER_AGENT="ReadingRoom/2.1",
    )
    assert response.status_code == 200, response.content
    event = AuditEvent.objects.filter(action="project.update").latest("pk")
    assert (event.ip_address, event.user_agent) == ("192.0.2.10", "ReadingRoom/2.1")
    assert current_client() == (None, "")  # the request's client ended with it


def test_outside_a_request_an_event_has_no_client(project, member):
    projects.update_project(project=project, changed_by=member("lena", "lead"), lease_seconds=600)
    event = AuditEvent.objects.filter(action="project.update").latest("pk")
    assert (event.ip_address, event.user_agent) == (None, "")
