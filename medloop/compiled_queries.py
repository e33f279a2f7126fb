"""Querysets compiled once and run many times with other values.

Building and compiling a queryset costs Python time on every request: for the case queue's
look-up (EXISTS, a counted subquery, ``FOR UPDATE SKIP LOCKED``) about 3 ms, more than the
database takes to answer it. A ``CompiledQuery`` builds its queryset once per shape with
stand-in values, compiles it, notes where each stand-in lands among the SQL parameters, and
afterwards only puts the real values there. The queryset stays the one definition of the
query; ``sql_with_params`` equals what compiling it afresh gives (tests/medloop/
test_compiled_queries.py checks this on both databases).

Values are ids (int), strings or datetimes, or lists of ids (whose length is part of the
shape). Anything else, or a stand-in that does not come out as a parameter, is refused when the
query is first compiled."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)

_counter = itertools.count(1)
_lock = threading.Lock()


def _stand_in(value: Any) -> Any:
    n = next(_counter)
    if isinstance(value, bool):
        raise TypeError("booleans are not supported")
    if isinstance(value, int):
        return 1_987_000_000_000 + n * 7_919
    if isinstance(value, str):
        return f"\x1fstand-in {n}\x1f"
    if isinstance(value, dt.datetime):
        return dt.datetime(2999, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=n, microseconds=n)
    raise TypeError(f"a {type(value).__name__} cannot be a compiled query's value")


def _shape(values: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        (name, len(value) if isinstance(value, list | tuple) else None)
        for name, value in sorted(values.items())
    )


class _Plan:
    """The compiled SQL and, per parameter, either a constant or where its value comes from."""

    def __init__(
        self, sql: str, slots: list[tuple[str, int | None, bool] | None], consts: list[Any]
    ) -> None:
        self.sql, self.slots, self.consts = sql, slots, consts


class CompiledQuery:
    """``build(**values) -> QuerySet``, compiled once per shape (see the module's note)."""

    def __init__(self, build: Callable[..., QuerySet[Any]]) -> None:
        self.build = build
        self.plans: dict[tuple[Any, ...], _Plan] = {}

    def _plan(self, values: dict[str, Any]) -> _Plan:
        key = (connection.vendor, _shape(values))
        plan = self.plans.get(key)
        if plan is not None:
            return plan
        stand_ins: dict[str, Any] = {}
        where: dict[Any, tuple[str, int | None]] = {}
        for name, value in values.items():
            if isinstance(value, list | tuple):
                items = [_stand_in(v) for v in value] if value else []
                stand_ins[name] = items
                for i, item in enumerate(items):
                    where[item] = (name, i)
            else:
                stand_ins[name] = _stand_in(value)
                where[stand_ins[name]] = (name, None)
        sql, params = self.build(**stand_ins).query.sql_with_params()
        # SQLite passes datetimes as text: a stand-in may come out in that form.
        adapted = {
            connection.ops.adapt_datetimefield_value(k): k
            for k in where
            if isinstance(k, dt.datetime)
        }
        slots: list[tuple[str, int | None, bool] | None] = []
        consts: list[Any] = []
        found: set[Any] = set()
        for param in params:
            source = None
            if type(param) in (int, str, dt.datetime) and param in where:
                source, adapt = where[param], False
                found.add(param)
            elif isinstance(param, str) and param in adapted:
                source, adapt = where[adapted[param]], True
                found.add(adapted[param])
            slots.append(None if source is None else (source[0], source[1], adapt))
            consts.append(param if source is None else None)
        missing = set(where) - found
        if missing:
            raise ValueError(f"values not passed as SQL parameters: {sorted(map(str, missing))}")
        plan = _Plan(sql, slots, consts)
        with _lock:
            self.plans[key] = plan
        return plan

    def sql_with_params(self, **values: Any) -> tuple[str, tuple[Any, ...]]:
        plan = self._plan(values)
        params = []
        for slot, const in zip(plan.slots, plan.consts, strict=True):
            if slot is None:
                params.append(const)
                continue
            name, index, adapt = slot
            value = values[name] if index is None else values[name][index]
            params.append(connection.ops.adapt_datetimefield_value(value) if adapt else value)
        return plan.sql, tuple(params)

    def objects(self, model: type[M], **values: Any) -> Iterator[M]:
        """The query's rows as ``model`` instances (columns matched to fields by name)."""
        sql, params = self.sql_with_params(**values)
        return iter(model._default_manager.raw(sql, params))

    def rows(self, **values: Any) -> Sequence[tuple[Any, ...]]:
        sql, params = self.sql_with_params(**values)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
