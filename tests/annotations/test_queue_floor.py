"""bench/queue_floor.py, the bare-Django floor that bench/queue_load.py measures MedLoop
against, answers one annotator's loop (hand-out, then submit with If-Match) on both databases,
on MedLoop's own tables: a floor that errors on every request measures nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from django.test import RequestFactory
from rest_framework.authtoken.models import Token

from annotations.models import Annotation, AuditEvent, Box, Case

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
# Under the tests' settings the module configures none of its own.
import queue_floor


@pytest.mark.both_backends
@pytest.mark.django_db(transaction=True)
def test_the_floor_hands_out_a_case_and_takes_its_submit(project, member, cases):
    reader = member("reader", "annotator")
    auth = {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=reader).key}"}
    factory = RequestFactory()

    handed = queue_floor.next_case(factory.post("/", **auth), project.pk)
    assert handed.status_code == 200, handed.content
    case = json.loads(handed.content)
    instance = case["series"][0]["instances"][0]["id"]
    body = {"findings": {"nodule": "present"}, "report": {"impression": "Nodule."},
            "boxes": [{"instance_id": instance, "x": 1, "y": 2, "width": 3, "height": 4,
                       "finding": "nodule"}]}  # fmt: skip
    stale = factory.post("/", json.dumps(body), content_type="application/json",
                         HTTP_IF_MATCH='"annotation-0-v9"', **auth)  # fmt: skip
    assert queue_floor.submit(stale, case["id"]).status_code == 412
    submit = factory.post("/", json.dumps(body), content_type="application/json",
                          HTTP_IF_MATCH=case["annotation"]["etag"], **auth)  # fmt: skip
    done = queue_floor.submit(submit, case["id"])

    assert done.status_code == 200, done.content
    annotation = Annotation.objects.get(pk=case["annotation"]["id"])
    assert (annotation.status, annotation.version) == (Annotation.Status.SUBMITTED, 2)
    assert Box.objects.filter(annotation=annotation).count() == 1
    assert Case.objects.get(pk=case["id"]).leased_to_id is None
    trail = AuditEvent.objects.filter(actor=reader).order_by("id")
    assert list(trail.values_list("action", flat=True)) == [
        "case.lease", "annotation.create", "case.annotate", "annotation.submit"
    ]  # fmt: skip
    expired = {"HTTP_AUTHORIZATION": "Token not-a-token"}
    assert queue_floor.next_case(factory.post("/", **expired), project.pk).status_code == 401
