"""The annotation body (findings, report, boxes, rejected suggestion boxes) of a save or submit,
validated on every call of the annotator's loop (issue 20).

``AnnotationInputSerializer`` stays the definition (the API schema and every error message).
A body whose values are all plainly valid (JSON strings, integers and finite numbers of the
right kind, within the limits) is read here without its per-field machinery, to exactly the
``validated_data`` the serializer gives (tests/annotations/test_annotation_input.py compares
the two); anything else, valid or not, goes through the serializer, which names what is
wrong (400)."""

from __future__ import annotations

import math
import re
from typing import Any

from annotations.api.serializers import AnnotationInputSerializer
from annotations.models import Box

_SURROGATE = re.compile("[\ud800-\udfff]")
_ORIGINS = frozenset(Box.Origin.values)
MAX_REJECTED = 500


class _Refer(Exception):
    """Not plainly valid: the serializer decides (and names the problem)."""


def _text(value: Any, *, max_length: int | None, trim: bool = True, blank: bool = False) -> str:
    """What a DRF CharField keeps of a string (stripped unless ``trim`` is False)."""
    if type(value) is not str or "\x00" in value:
        raise _Refer
    if not value.isascii() and _SURROGATE.search(value):
        raise _Refer
    kept = value.strip() if trim else value
    if not kept and not blank:
        raise _Refer
    if max_length is not None and len(kept) > max_length:
        raise _Refer
    return kept


def _positive_int(value: Any) -> int:
    if type(value) is not int or value < 1:
        raise _Refer
    return value


def _finite(value: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise _Refer
    return float(value)


def _box(item: Any) -> dict[str, Any]:
    if type(item) is not dict:
        raise _Refer
    box: dict[str, Any] = {"instance_id": _positive_int(item.get("instance_id"))}
    box["frame"] = _positive_int(item["frame"]) if "frame" in item else 1
    for name in ("x", "y", "width", "height"):
        box[name] = _finite(item.get(name))
    box["finding"] = _text(item.get("finding"), max_length=64)
    if "origin" in item:
        origin = item["origin"]
        if type(origin) is not str or origin not in _ORIGINS:
            raise _Refer
        box["origin"] = origin
    else:
        box["origin"] = Box.Origin.DRAWN  # the serializer's default
    box["suggestion_box_id"] = (
        _text(item["suggestion_box_id"], max_length=64, blank=True)
        if "suggestion_box_id" in item
        else ""
    )
    if "slices" in item:
        slices = item["slices"]
        if type(slices) is not list or len(slices) != 2:
            raise _Refer
        box["slices"] = [_positive_int(s) for s in slices]
    return box


def plain_input(data: Any) -> dict[str, Any] | None:
    """``AnnotationInputSerializer(data=data).validated_data`` for a plainly valid body, None
    for any other (the serializer then validates it)."""
    if type(data) is not dict:
        return None
    out: dict[str, Any] = {}
    try:
        if "findings" in data:
            findings = data["findings"]
            if type(findings) is not dict:
                raise _Refer
            out["findings"] = {k: _text(v, max_length=16) for k, v in findings.items()}
        if "report" in data:
            report = data["report"]
            if type(report) is not dict:
                raise _Refer
            out["report"] = {
                k: _text(v, max_length=None, trim=False, blank=True) for k, v in report.items()
            }
        if "boxes" in data:
            boxes = data["boxes"]
            if type(boxes) is not list:
                raise _Refer
            out["boxes"] = [_box(item) for item in boxes]
        if "rejected_suggestion_boxes" in data:
            rejected = data["rejected_suggestion_boxes"]
            if type(rejected) is not list or len(rejected) > MAX_REJECTED:
                raise _Refer
            out["rejected_suggestion_boxes"] = [_text(r, max_length=64) for r in rejected]
    except _Refer:
        return None
    return out


def validated_input(data: Any) -> dict[str, Any]:
    """The validated annotation body; a body that is not valid raises DRF's ValidationError
    (400, naming each bad field), as the serializer does."""
    plain = plain_input(data)
    if plain is not None:
        return plain
    serializer = AnnotationInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
