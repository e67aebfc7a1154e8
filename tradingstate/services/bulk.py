"""One-statement bulk updates for the bulk write paths (reconciliation repairs, bulk
transitions).

Django's ``bulk_update`` builds a ``CASE WHEN id = … THEN …`` expression per field per row:
its Python cost grows with rows x fields (seconds for ten thousand rows) and it is split
into batches. On PostgreSQL ``rows_bulk_update`` sends a single
``UPDATE … FROM unnest(array, …)``, one array parameter a column, instead (a short
statement whatever the row count); elsewhere it falls back to ``bulk_update``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from django.db import connections, router
from django.db.models import Model

from tradingstate.db import record_query
from tradingstate.db.rows import preparer


class RowFactory:
    """``RowFactory(Model)(field=value, ...)``: an unsaved instance, as ``Model(...)`` with
    the same keywords would be, built positionally as ``Model.from_db`` builds one (the
    keyword path pops each field from the keywords, looks up its default and assigns a
    foreign key through its descriptor's checks: 2.5 times the time, for the thousands of
    discrepancy, repair and audit rows of a large pass). A foreign key is given as the
    instance (its id is written and the instance cached, as assignment does) or as its id
    (``<name>_id``); a field not given takes its default."""

    def __init__(self, model: type[Model]):
        self.model = model
        self.fields = [(f.name, f.attname, f, f.is_relation) for f in model._meta.concrete_fields]

    def __call__(self, **values) -> Model:
        args, related = [], []
        for name, attname, field, is_relation in self.fields:
            if is_relation and name in values:
                obj = values.pop(name)
                related.append((field, obj))
                args.append(None if obj is None else obj.pk)
            elif attname in values:
                args.append(values.pop(attname))
            else:
                args.append(field.get_default())
        if values:
            raise TypeError(f"{self.model.__name__} has no field(s) {', '.join(values)}")
        instance = self.model(*args)
        for field, obj in related:
            if obj is not None:
                field.set_cached_value(instance, obj)
        return instance


def rows_bulk_update(
    model: type[Model], objs: Sequence[Model], fields: Sequence[str], *, fallback_batch=1000
) -> int:
    """Write ``fields`` of each of ``objs`` (saved rows, matched by primary key)."""
    if not objs:
        return 0
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        return model.objects.bulk_update(objs, fields, batch_size=fallback_batch)
    meta = model._meta
    pk = meta.pk
    columns = [pk, *(meta.get_field(name) for name in fields)]
    qn = connection.ops.quote_name
    table = qn(meta.db_table)
    assignments = ", ".join(f"{qn(f.column)} = v.c{i}" for i, f in enumerate(columns) if i > 0)
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in columns)
    names = ", ".join(f"c{i}" for i in range(len(columns)))
    # identifiers and types come from the model, values are parameters: one array a column
    sql = (
        f"UPDATE {table} SET {assignments} FROM unnest({arrays}) AS v({names}) "  # noqa: S608
        f"WHERE {table}.{qn(pk.column)} = v.c0"
    )
    prepared = [preparer(f, connection, add=None) for f in columns]
    params = [[prepare(obj, connection) for obj in objs] for prepare in prepared]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def rows_bulk_insert(model: type[Model], objs: Sequence[Model]) -> None:
    """Insert ``objs`` whose primary keys nobody reads back (audit rows, repair records).

    On PostgreSQL one ``COPY … FROM STDIN`` (a third of ``bulk_create``'s CPU for JSON-heavy
    rows); elsewhere ``bulk_create``. Field values go through the same ``pre_save`` /
    ``get_db_prep_save`` as an ORM insert (``auto_now_add`` included). The objects' ``pk``
    stay unset on PostgreSQL. The statement is recorded where Django records queries, so
    statement counts (CaptureQueriesContext) still see it.
    """
    if not objs:
        return
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs)
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    _copy_rows(connection, model, objs, fields)


def rows_bulk_create(model: type[Model], objs: Sequence[Model]) -> None:
    """Insert ``objs`` and set their primary keys (they are read back: repairs name them).

    On PostgreSQL: the ids are reserved from the table's sequence in one statement, then the
    rows go in with one ``COPY`` (``bulk_create`` spends most of its time quoting every value
    of every row into arrays). Elsewhere ``bulk_create``. Two statements whatever the size.
    """
    if rows_ids_reserve(model, objs):
        rows_bulk_create_reserved(model, objs)
    elif objs:
        model.objects.bulk_create(objs)


def rows_ids_reserve(model: type[Model], objs: Sequence[Model]) -> bool:
    """Give ``objs`` their primary keys before they are inserted, so rows that name them
    can be written first: on PostgreSQL from the table's sequence (one statement; insert
    them later with ``rows_bulk_create_reserved``). False where the database gives ids only
    on insert (SQLite: insert them with ``rows_bulk_create``)."""
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        return False
    if not objs:
        return True
    meta = model._meta
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(objs)],
        )
        ids = [row[0] for row in cursor.fetchall()]
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
    return True


def rows_bulk_create_reserved(model: type[Model], objs: Sequence[Model]) -> None:
    """Insert ``objs`` whose ids ``rows_ids_reserve`` gave: one ``COPY`` (PostgreSQL)."""
    if not objs:
        return
    connection = connections[router.db_for_write(model)]
    _copy_rows(connection, model, objs, list(model._meta.concrete_fields))
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias


def _copy_rows(connection, model: type[Model], objs: Sequence[Model], fields: list) -> None:
    qn = connection.ops.quote_name
    columns = ", ".join(qn(f.column) for f in fields)
    sql = f"COPY {qn(model._meta.db_table)} ({columns}) FROM STDIN"
    connection.validate_no_broken_transaction()
    started = time.monotonic()
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(sql) as copy,
    ):
        prepared = [preparer(f, connection, add=True) for f in fields]
        for obj in objs:
            copy.write_row([prepare(obj, connection) for prepare in prepared])
    record_query(connection, f"{sql} -- {len(objs)} rows", started)
