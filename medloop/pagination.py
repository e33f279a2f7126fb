"""The API's one paginator: ``?limit=`` and ``?offset=``, with the page size capped.

DRF's LimitOffsetPagination has no upper bound by default: ``?limit=100000000`` asked the
database and the serializer for every row at once. A larger limit is clamped to
MEDLOOP_API_MAX_PAGE (default 500), and an offset past what PostgreSQL's bigint holds is
treated as the end of the list instead of a database error."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.pagination import LimitOffsetPagination

# PostgreSQL's OFFSET is a bigint; a larger value is a DataError (a 500) before any row is read.
MAX_OFFSET = 2**62


class CappedLimitOffsetPagination(LimitOffsetPagination):
    """LimitOffsetPagination whose ``limit`` is at most MEDLOOP_API_MAX_PAGE (the default page,
    PAGE_SIZE, is unchanged)."""

    def __init__(self) -> None:
        # Read per paginator (one per request), so a changed setting applies at once.
        self.max_limit = int(settings.MEDLOOP_API_MAX_PAGE)

    def get_offset(self, request: Any) -> int:
        return min(super().get_offset(request), MAX_OFFSET)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["description"] = (
                    f"Number of results to return per page (at most {self.max_limit}; "
                    "a larger value returns that many)."
                )
                parameter["schema"] = {**parameter["schema"], "maximum": self.max_limit}
        return parameters
