"""SQL pieces the dashboard selectors share; each one runs on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import (
    DateField,
    DateTimeField,
    Expression,
    Func,
    IntegerField,
    OuterRef,
    Subquery,
    Value,
)
from django.db.models.functions import Greatest, TruncDate

from annotations.models import AnnotationRevision


def utc_date(field: str | Expression | Subquery, *, not_before: date | None = None) -> Func:
    """The UTC calendar date of a datetime column; dates before ``not_before`` are folded into
    ``not_before``, so a grouping by day never yields more rows than the window has days."""
    day = TruncDate(field, tzinfo=UTC)
    if not_before is None:
        return day
    return Greatest(day, Value(not_before, output_field=DateField()), output_field=DateField())


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def days_from(first: date, last: date) -> list[date]:
    """Every date from ``first`` to ``last``, both included."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def first_submitted_at(annotation_ref: str = "pk") -> Subquery:
    """When an annotation was first submitted: its earliest revision.

    ``Annotation.submitted_at`` moves with every resubmission after a return, so it cannot say
    when the work was first handed in."""
    return Subquery(
        AnnotationRevision.objects.filter(annotation=OuterRef(annotation_ref))
        .order_by("version")
        .values("submitted_at")[:1],
        output_field=DateTimeField(),
    )


class JSONArrayLength(Func):
    """Number of elements of a JSON array column (``json_array_length`` on SQLite,
    ``jsonb_array_length`` on PostgreSQL, where JSONField is jsonb)."""

    function = "JSON_ARRAY_LENGTH"
    output_field = IntegerField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, function="JSONB_ARRAY_LENGTH", **extra)
