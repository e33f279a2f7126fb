"""The annotation body read without the serializer's machinery (issue 20) gives exactly the
serializer's validated data, and every body it does not take plainly, valid or not, is left to
the serializer: the API answers bad input as before (400 naming the field)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from annotations.api.annotation_input import plain_input, validated_input
from annotations.api.serializers import AnnotationInputSerializer


def _box(**changes: Any) -> dict[str, Any]:
    box: dict[str, Any] = {"instance_id": 3, "x": 4, "y": 4.5, "width": 8, "height": 8.25,
                           "finding": "nodule"}  # fmt: skip
    box.update(changes)
    return {k: v for k, v in box.items() if v is not _DROP}


_DROP = object()

PLAIN = [
    {},
    {"findings": {"nodule": "present", "effusion": " absent "}},
    {"report": {"impression": "Nodule.", "findings": "", "other": "  spaced  ", "ü": "Größe"}},
    {"boxes": []},
    {"boxes": [_box()]},
    {"boxes": [_box(frame=2, origin="suggested_edited", suggestion_box_id=" s-1 ")]},
    {"boxes": [_box(suggestion_box_id="", slices=[3, 9], extra="ignored")]},
    {"boxes": [_box(suggestion_box_id="   ")]},
    {"rejected_suggestion_boxes": ["a", " b "]},
    {"rejected_suggestion_boxes": []},
    {"findings": {}, "report": {}, "boxes": [_box(), _box(instance_id=4)], "unknown": 1},
]
# Valid or not, these are left to the serializer.
REFERRED = [
    [],
    "text",
    {"findings": []},
    {"findings": {"nodule": 1}},
    {"findings": {"nodule": ""}},
    {"findings": {"nodule": "   "}},
    {"findings": {"nodule": "x" * 17}},
    {"findings": {"nodule": None}},
    {"findings": {"nodule": "a\x00b"}},
    {"report": {"impression": 5}},
    {"report": {"impression": "bad \ud800 text"}},
    {"report": []},
    {"boxes": {}},
    {"boxes": ["box"]},
    {"boxes": [_box(instance_id=0)]},
    {"boxes": [_box(instance_id="3")]},
    {"boxes": [_box(instance_id=True)]},
    {"boxes": [_box(instance_id=_DROP)]},
    {"boxes": [_box(x=float("nan"))]},
    {"boxes": [_box(x=float("inf"))]},
    {"boxes": [_box(x="4")]},
    {"boxes": [_box(x=None)]},
    {"boxes": [_box(width=True)]},
    {"boxes": [_box(frame=0)]},
    {"boxes": [_box(frame=1.0)]},
    {"boxes": [_box(finding="")]},
    {"boxes": [_box(finding="x" * 65)]},
    {"boxes": [_box(origin="magic")]},
    {"boxes": [_box(origin=None)]},
    {"boxes": [_box(suggestion_box_id="x" * 65)]},
    {"boxes": [_box(suggestion_box_id=None)]},
    {"boxes": [_box(slices=[1])]},
    {"boxes": [_box(slices=[1, 0])]},
    {"boxes": [_box(slices="1,2")]},
    {"rejected_suggestion_boxes": "a"},
    {"rejected_suggestion_boxes": [""]},
    {"rejected_suggestion_boxes": [7]},
    {"rejected_suggestion_boxes": ["a"] * 501},
    {"rejected_suggestion_boxes": ["x" * 65]},
]


def _serializers(data: Any) -> tuple[bool, Any]:
    serializer = AnnotationInputSerializer(data=copy.deepcopy(data))
    if serializer.is_valid():
        return True, json.loads(json.dumps(serializer.validated_data))
    return False, serializer.errors


@pytest.mark.parametrize("body", PLAIN)
def test_a_plain_body_gives_the_serializers_validated_data(body: dict[str, Any]) -> None:
    valid, expected = _serializers(body)
    assert valid, expected
    ours = plain_input(copy.deepcopy(body))
    assert ours is not None
    assert ours == expected  # the same values, of the same types
    assert json.dumps(ours, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert validated_input(copy.deepcopy(body)) == expected


@pytest.mark.parametrize("body", REFERRED)
def test_any_other_body_is_left_to_the_serializer(body: Any) -> None:
    assert plain_input(copy.deepcopy(body)) is None
    valid, _ = _serializers(body)
    if valid:  # a value the serializer converts (none here today): the same data either way
        assert validated_input(copy.deepcopy(body)) == _serializers(body)[1]


@pytest.mark.django_db
def test_bad_input_to_submit_is_a_400_naming_the_field(project, member, cases, api_for) -> None:
    api = api_for(member("reader", "annotator"))
    case = api.post(f"/api/projects/{project.pk}/next-case/").json()
    url = f"/api/cases/{case['id']}/annotation/submit/"
    etag = case["annotation"]["etag"]
    instance = case["series"][0]["instances"][0]["id"]
    for body, field in (
        ({"boxes": [_box(instance_id=instance, x="four")]}, "x"),
        ({"boxes": [_box(instance_id=instance, finding="")]}, "finding"),
        ({"findings": {"nodule": None}}, "findings"),
        ({"rejected_suggestion_boxes": "a"}, "rejected_suggestion_boxes"),
    ):
        answer = api.post(url, body, format="json", HTTP_IF_MATCH=etag)
        assert answer.status_code == 400, answer.content
        assert answer.json()["error"] == "invalid" and field in answer.json()["message"]
    done = api.post(url, {"boxes": [_box(instance_id=instance)]}, format="json",
                    HTTP_IF_MATCH=etag)  # fmt: skip
    assert done.status_code == 200, done.content
