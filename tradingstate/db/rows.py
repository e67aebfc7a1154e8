"""Column lists and prepared values for the hot path's hand-written writes, built from the
models as an ORM ``save`` would build them (``pre_save`` fills ``auto_now`` times on the
instance; ``get_db_prep_save`` prepares each value for the backend)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model


def insert_fields(model: type[Model]) -> list:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def placeholder(field) -> str:
    """``%s``, cast to the column's type on PostgreSQL (a parameter in a ``SELECT`` list
    has no type to infer from)."""
    if connection.vendor == "postgresql":
        return f"%s::{field.db_type(connection)}"
    return "%s"


def insert_values(obj: Model, fields: Iterable, *, add: bool = True) -> list:
    conn = connections[DEFAULT_DB_ALIAS]  # not the proxy: each field reads ``ops`` through it
    return [f.get_db_prep_save(f.pre_save(obj, add), conn) for f in fields]


def columns(fields: Iterable, prefix: str = "") -> str:
    qn = connection.ops.quote_name
    return ", ".join(f"{prefix}{qn(f.column)}" for f in fields)


def qn(name: str) -> str:
    return connection.ops.quote_name(name)


def instance(model: type[Model], fields: list, values) -> Model:
    """A model instance from raw column values, converted as the ORM converts them."""
    from tradingstate.db import python_values

    converted = [
        f.from_db_value(v, None, connection) if hasattr(f, "from_db_value") else v
        for f, v in zip(fields, values, strict=True)
    ]
    return model.from_db(
        connection.alias, [f.attname for f in fields], python_values(fields, converted)
    )


def update_fields(model: type[Model], *, keep: tuple[str, ...]) -> list:
    """Every column a full ``save()`` writes, less the primary key and ``keep``."""
    return [f for f in model._meta.concrete_fields if not f.primary_key and f.name not in keep]
