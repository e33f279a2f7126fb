"""Request body parsers for the API.

DRF's JSONParser turns a syntax error into a 400 but lets Python's RecursionError through: a
body of a few thousand nested brackets (``[[[[...]]]]``) was a 500. Nesting that deep is never a
valid MedLoop request, so it is refused as a parse error, and bodies nested past
MAX_JSON_DEPTH are refused too, before a serializer walks them."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# The deepest a MedLoop request body nests (an annotation's boxes: object > list > object >
# list) is well under this.
MAX_JSON_DEPTH = 64


def json_depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (a scalar: 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


class BoundedJSONParser(JSONParser):
    """JSON bodies, refused with 400 when nested deeper than MAX_JSON_DEPTH."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(f"JSON nested too deeply (at most {MAX_JSON_DEPTH} levels).") from exc
        if json_depth(data) > MAX_JSON_DEPTH:
            raise ParseError(f"JSON nested too deeply (at most {MAX_JSON_DEPTH} levels).")
        return data
