"""Querysets compiled once and run many times with other values.

Building and compiling a queryset costs Python time on every request: for the case queue's
look-up (EXISTS, a counted subquery, ``FOR UPDATE SKIP LOCKED``) about 3 ms, more than the
database takes to answer it. A ``CompiledQuery`` builds its queryset once per shape with
stand-in values, compiles it, notes where each stand-in lands among the SQL parameters, and
afterwards only puts the real values there. The queryset stays the one definition of the
query; ``sql_with_params`` equals what compiling it afresh gives (tests/medloop/
test_compiled_queries.py checks this on both databases).

``fetch`` returns what iterating the queryset returns (model objects with their
``select_related`` objects, annotations and ``prefetch_related`` lookups): the compiler kept
from the first compile (its select list and how rows map to objects) runs the stored SQL with
the new values, so Django's own code still builds the objects. Compiling a queryset's SQL was
half of the CPU time of the annotator's loop (bench/request_profile.py).

Values are ids (int), strings, datetimes or dates, or lists of ids (whose length is part of the
shape). Anything else, or a stand-in that does not come out as a parameter, is refused when the
query is first compiled. A query with ``select_for_update`` compiles only inside a transaction;
run it only inside one (its stored SQL is not checked again)."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from django.db import IntegrityError, connection, connections, router, transaction
from django.db.models import AutoField, Model, QuerySet
from django.db.models.constants import OnConflict
from django.db.models.sql import InsertQuery, UpdateQuery
from django.db.models.sql.compiler import SQLCompiler

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
    if isinstance(value, dt.date):
        return dt.date(2999, 1, 1) + dt.timedelta(days=n)
    raise TypeError(f"a {type(value).__name__} cannot be a compiled query's value")


def _adapt(value: dt.date) -> Any:
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return connection.ops.adapt_datefield_value(value)


def _shape(values: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        (name, len(value) if isinstance(value, list | tuple) else None)
        for name, value in sorted(values.items())
    )


class _Plan:
    """The compiled SQL and, per parameter, either a constant or where its value comes from."""

    def __init__(
        self,
        sql: str,
        slots: list[tuple[str, int | None, bool] | None],
        consts: list[Any],
        queryset: QuerySet[Any],
        compiler: SQLCompiler,
    ) -> None:
        self.sql, self.slots, self.consts = sql, slots, consts
        # The queryset built with the stand-ins and its compiler after compiling: for fetch.
        self.queryset, self.compiler = queryset, compiler
        # How fetch converts the columns (the same for every run of one backend's SQL).
        self.converters: dict[int, Any] | None = None


def prime_related(instance: Model, name: str, objects: Sequence[Model]) -> None:
    """Let ``instance.<name>.all()`` (a reverse foreign key) answer ``objects`` without a query,
    as ``prefetch_related`` would, each object's foreign key set back to ``instance``."""
    manager = getattr(instance, name)
    for obj in objects:
        manager.field.set_cached_value(obj, instance)
    # The relation's own rows, as the manager selects them: a filter or get chained on the
    # relation asks the database, as after prefetch_related.
    queryset = manager.model._default_manager.filter(**{manager.field.name: instance})
    queryset._result_cache = list(objects)
    queryset._prefetch_done = True
    instance.__dict__.setdefault("_prefetched_objects_cache", {})[name] = queryset


class CompiledQuery:
    """``build(**values) -> QuerySet``, compiled once per shape (see the module's note)."""

    def __init__(self, build: Callable[..., QuerySet[Any]]) -> None:
        self.build = build
        self.plans: dict[tuple[Any, ...], _Plan] = {}

    def _compiler(self, stand_ins: dict[str, Any]) -> tuple[QuerySet[Any], SQLCompiler]:
        queryset = self.build(**stand_ins)
        return queryset, queryset.query.get_compiler(using=queryset.db)

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
        queryset, compiler = self._compiler(stand_ins)
        sql, params = compiler.as_sql()
        # SQLite passes datetimes and dates as text: a stand-in may come out in that form.
        adapted = {_adapt(k): k for k in where if isinstance(k, dt.date)}
        slots: list[tuple[str, int | None, bool] | None] = []
        consts: list[Any] = []
        found: set[Any] = set()
        for param in params:
            source = None
            if type(param) in (int, str, dt.datetime, dt.date) and param in where:
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
        plan = _Plan(sql, slots, consts, queryset, compiler)
        with _lock:
            self.plans[key] = plan
        return plan

    def sql_with_params(self, **values: Any) -> tuple[str, tuple[Any, ...]]:
        return self._sql_with_params(self._plan(values), values)

    def _sql_with_params(self, plan: _Plan, values: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
        params = []
        for slot, const in zip(plan.slots, plan.consts, strict=True):
            if slot is None:
                params.append(const)
                continue
            name, index, adapt = slot
            value = values[name] if index is None else values[name][index]
            params.append(_adapt(value) if adapt else value)
        return plan.sql, tuple(params)

    def fetch(self, **values: Any) -> list[Any]:
        """What ``list(build(**values))`` gives, without compiling the query again."""
        plan = self._plan(values)
        sql, params = self._sql_with_params(plan, values)
        queryset = plan.queryset.all()  # a copy: its result cache is its own
        # A copy of the kept compiler, on this thread's connection, that answers the stored SQL.
        compiler = copy.copy(plan.compiler)
        compiler.connection = connections[queryset.db]
        compiler.as_sql = lambda *args, **kwargs: (sql, params)  # type: ignore[method-assign]
        if plan.converters is None:
            plan.converters = compiler.get_converters(
                [column[0] for column in compiler.select[0 : compiler.col_count]]
            )
        converters = plan.converters
        compiler.get_converters = lambda expressions: converters  # type: ignore[method-assign]
        queryset.query.get_compiler = lambda *args, **kwargs: compiler  # type: ignore[method-assign]
        return list(queryset)

    def objects(self, model: type[M], **values: Any) -> Iterator[M]:
        """The query's rows as ``model`` instances (columns matched to fields by name)."""
        sql, params = self.sql_with_params(**values)
        return iter(model._default_manager.raw(sql, params))

    def rows(self, **values: Any) -> Sequence[tuple[Any, ...]]:
        sql, params = self.sql_with_params(**values)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()


class CompiledUpdate(CompiledQuery):
    """``build(**values) -> (queryset, fields)``: ``queryset.update(**fields)`` compiled once
    per shape; the fields' values may be the query's values (ids, strings, datetimes, dates),
    None, or expressions. ``run`` returns the number of rows updated."""

    def __init__(self, build: Callable[..., tuple[QuerySet[Any], dict[str, Any]]]) -> None:
        super().__init__(build)  # type: ignore[arg-type]

    def _compiler(self, stand_ins: dict[str, Any]) -> tuple[QuerySet[Any], SQLCompiler]:
        queryset, fields = self.build(**stand_ins)  # type: ignore[misc]
        # As QuerySet.update builds its statement.
        query = queryset.query.chain(UpdateQuery)
        query.add_update_values(fields)
        query.annotations = {}
        return queryset, query.get_compiler(using=queryset.db)

    def run(self, **values: Any) -> int:
        sql, params = self.sql_with_params(**values)
        with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            return int(cursor.rowcount)


class CompiledInsert:
    """``insert(objs)``: what ``model.objects.bulk_create(objs)`` does for new rows (primary
    keys and the other database-returned fields set on the objects), as one
    ``INSERT ... VALUES (...), (...) RETURNING ...`` whose SQL is kept per backend and number
    of rows.

    Django 5.2 inserts two or more rows on PostgreSQL through ``UNNEST`` of one array per
    column: for the few rows of a request (a request's audit events) building those arrays costs
    more client CPU than the insert itself (0.9 against 0.4 ms for two audit events). The values
    are still prepared by Django (``pre_save`` and ``get_db_prep_save`` of each field, as in
    bulk_create). Objects that already have a primary key, expressions as values, and fields
    with their own placeholders are refused; a backend that cannot return the rows of a
    multi-row insert gets ``bulk_create``.

    ``ignore_conflicts``: one row at a time, and a row that would break a unique constraint is
    not inserted (``ON CONFLICT DO NOTHING``; SQLite ``INSERT OR IGNORE``): no error, so no
    savepoint is needed around it. ``insert`` returns how many rows it inserted."""

    KEEP_UP_TO = 16  # rows: the SQL for more is built each time (a string join), not kept

    def __init__(self, model: type[Model], *, ignore_conflicts: bool = False) -> None:
        self.model = model
        self.on_conflict = OnConflict.IGNORE if ignore_conflicts else None
        self.sql: dict[tuple[str, int], tuple[str, tuple[Any, ...]]] = {}

    def _fields(self) -> list[Any]:
        opts = self.model._meta
        return [
            f
            for f in opts.concrete_fields
            if not f.generated and not (f.primary_key and isinstance(f, AutoField))
        ]

    def insert(self, objs: Sequence[Model]) -> int:
        if not objs:
            return 0
        if self.on_conflict is not None and len(objs) != 1:
            raise ValueError("ignore_conflicts inserts one row at a time")
        db = router.db_for_write(self.model)
        conn = connections[db]
        ops: Any = conn.ops  # (django-stubs lack the insert helpers)
        opts = self.model._meta
        if any(obj.pk is not None for obj in objs):
            raise ValueError("CompiledInsert inserts new rows only (no primary key set)")
        fields = self._fields()
        if not conn.features.can_return_rows_from_bulk_insert or len(objs) > ops.bulk_batch_size(
            fields, objs
        ):
            # Too many rows for one statement on this backend (SQLite's parameter limit):
            # bulk_create splits them into batches.
            if self.on_conflict is None:
                self.model._default_manager.bulk_create(list(objs))
                return len(objs)
            try:
                with transaction.atomic(using=db):
                    objs[0].save(force_insert=True, using=db)
            except IntegrityError:
                return 0
            return 1
        query = InsertQuery(self.model)
        compiler = query.get_compiler(connection=conn)
        params: list[Any] = []
        for obj in objs:
            obj._prepare_related_fields_for_save(operation_name="bulk_create")  # type: ignore[attr-defined]
            for field in fields:
                value = field.pre_save(obj, True)  # as bulk_create: auto_now_add, ...
                if hasattr(value, "resolve_expression"):
                    raise TypeError(f"{field.name}: an expression cannot be a CompiledInsert value")
                params.append(field.get_db_prep_save(value, connection=conn))
        key = (conn.vendor, len(objs))
        if key not in self.sql or len(objs) > self.KEEP_UP_TO:
            if any(hasattr(field, "get_placeholder") for field in fields):
                raise TypeError("fields with their own placeholders are not supported")
            quote = ops.quote_name
            row = ["%s"] * len(fields)
            returning, returning_params = ops.return_insert_columns(opts.db_returning_fields)
            sql = " ".join(
                part
                for part in (
                    ops.insert_statement(on_conflict=self.on_conflict),
                    quote(opts.db_table),
                    "(" + ", ".join(quote(f.column) for f in fields) + ")",
                    ops.bulk_insert_sql(fields, [row] * len(objs)),
                    ops.on_conflict_suffix_sql(fields, self.on_conflict, [], []),
                    returning,
                )
                if part
            )
            if len(objs) <= self.KEEP_UP_TO:
                self.sql[key] = (sql, tuple(returning_params))
        else:
            sql, returning_params = self.sql[key]
        with transaction.mark_for_rollback_on_error(db), conn.cursor() as cursor:
            cursor.execute(sql, (*params, *returning_params))
            rows = ops.fetch_returned_insert_rows(cursor)
        returned = opts.db_returning_fields
        converters = compiler.get_converters([f.get_col(opts.db_table) for f in returned])
        if converters:
            rows = list(compiler.apply_converters(rows, converters))
        rows = list(rows)
        if not rows and self.on_conflict is not None:
            return 0  # the row was there already
        for obj, values in zip(objs, rows, strict=True):
            for field, value in zip(returned, values, strict=True):
                setattr(obj, field.attname, value)
            obj._state.adding = False
            obj._state.db = db
        return len(rows)
