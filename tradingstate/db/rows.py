"""Column lists and prepared values for the hand-written writes (the hot path's statements,
and the bulk writes' ``COPY`` and ``UPDATE … FROM unnest``), built from the models as an ORM
``save`` would build them (``pre_save`` fills ``auto_now`` times on the instance;
``get_db_prep_save`` prepares each value for the backend).

``preparer`` is the one rule for a written value: every hand-written write goes through it,
and ``test_bulk_writes`` holds it to the ORM for every field of every model."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from functools import cache
from operator import attrgetter

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import Model

from tradingstate.fields import AmountField

# Fields whose ORM preparation for a save returns a value of these exact types as it is
# (str for text, int for integers and ids, bool for booleans; None too): the statement takes
# the attribute itself. Exact classes only: a subclass may prepare differently. Anything
# else, and a value of another type (an int given for text is written as the ORM writes it:
# str()), goes through get_db_prep_save as in an ORM save.
PLAIN_FIELDS = {
    getattr(models, name): types
    for names, types in (
        (("CharField", "TextField"), (str,)),
        (("BooleanField",), (bool,)),
        (
            (
                "AutoField",
                "BigAutoField",
                "BigIntegerField",
                "IntegerField",
                "PositiveIntegerField",
                "PositiveSmallIntegerField",
                "SmallIntegerField",
            ),
            (int,),
        ),
    )
    for name in names
}
RELATIONS = (models.ForeignKey, models.OneToOneField)

Preparer = Callable[[Model, object], object]


class Fields(tuple):
    """A model's fields in a statement's column order, with what reading them needs worked
    out once: their ``attname``s, and which convert a raw value (``from_db_value``)."""

    def __new__(cls, fields: Iterable):
        out = super().__new__(cls, fields)
        out.attnames = [f.attname for f in out]
        out.converters = [
            (i, f) for i, f in enumerate(out) if getattr(f, "from_db_value", None) is not None
        ]
        out._preparers = {}
        return out

    def preparers(self, conn, add: bool | None) -> list[Preparer]:
        """Each field's ``preparer``, built once per database vendor, mode and ``USE_TZ``."""
        key = (conn.vendor, add, settings.USE_TZ)
        found = self._preparers.get(key)
        if found is None:
            found = self._preparers[key] = [preparer(f, conn, add=add) for f in self]
        return found


@cache
def all_fields(model: type[Model]) -> Fields:
    return Fields(model._meta.concrete_fields)


@cache
def insert_fields(model: type[Model]) -> Fields:
    return Fields(f for f in model._meta.concrete_fields if not f.primary_key)


def placeholder(field) -> str:
    """``%s``, cast to the column's type on PostgreSQL (a parameter in a ``SELECT`` list
    has no type to infer from)."""
    if connection.vendor == "postgresql":
        return f"%s::{field.db_type(connection)}"
    return "%s"


def insert_values(obj: Model, fields: Iterable, *, add: bool = True) -> list:
    """The values an ORM ``save`` of ``obj`` writes to ``fields``: an insert (``add``) or an
    update (``auto_now`` stamps either way)."""
    conn = connections[DEFAULT_DB_ALIAS]  # not the proxy: each field reads ``ops`` through it
    if not isinstance(fields, Fields):
        fields = Fields(fields)
    return [prepare(obj, conn) for prepare in fields.preparers(conn, add)]


def preparer(field, conn, *, add: bool | None) -> Preparer:
    """``(obj, conn) -> the value written for field``, as the ORM prepares it: for an insert
    (``add=True``: ``pre_save`` first, so ``auto_now_add`` applies), for a ``save`` of a
    saved row (``add=False``: ``auto_now`` applies), or for an update of the attribute as it
    is (``add=None``: the bulk updates).

    The value goes through ``get_db_prep_save``, except where PostgreSQL's preparation is
    known to hand it back as it is (``_as_is``): text, integers, ids and booleans of their
    own type, a finite ``Decimal`` of an amount, an aware ``datetime``, and a dict or list
    for a ``JSONField`` (wrapped as Django wraps it). Those checks cost a fraction of the
    ORM's chain of calls, which ran for every column of every row written: the thousands
    of a large pass, and the twenty to sixty of a bot's registration or fill."""
    read = _reader(field, add)

    def slow(obj, conn):
        return field.get_db_prep_save(read(obj), conn)

    fast = _as_is(field, conn)
    if fast is None:
        return slow
    takes, make = fast

    def prepare(obj, conn):
        value = read(obj)
        return make(value, conn) if takes(value) else field.get_db_prep_save(value, conn)

    return prepare


def _reader(field, add: bool | None) -> Callable[[Model], object]:
    """The value written: ``pre_save``'s where it is more than the attribute (``auto_now``,
    ``auto_now_add``, another field's own rule), unless the attribute is asked for."""
    if add is None or type(field).pre_save is models.Field.pre_save:
        return attrgetter(field.attname)
    if type(field) is models.DateTimeField and not (field.auto_now or field.auto_now_add):
        return attrgetter(field.attname)
    return lambda obj: field.pre_save(obj, add)


def _same(value, conn):
    return value


def _as_is(field, conn) -> tuple[Callable[[object], bool], Callable] | None:
    """``(takes, make)`` for PostgreSQL, by the field's exact class (a subclass may prepare
    differently): where ``takes(value)``, ``make(value, conn)`` is what ``get_db_prep_save``
    returns.
    - text, integers, booleans (``PLAIN_FIELDS``), and a relation by its target's column:
      ``to_python`` returns None or a value of the field's own type as it is;
    - an amount (``DecimalField``, ``AmountField``): a finite ``Decimal`` as it is;
    - a ``DateTimeField`` with time zones on: an aware ``datetime`` as it is (a naive one
      warns and is made aware, the ORM's way);
    - a ``JSONField``: a dict or a list, wrapped as ``adapt_json_value`` wraps it."""
    if conn.vendor != "postgresql":
        return None
    kind = type(field)
    if kind in RELATIONS:
        return _as_is(field.target_field, conn)
    types = PLAIN_FIELDS.get(kind)
    if types is not None:
        return (lambda v: v is None or type(v) in types), _same
    if kind in (models.DecimalField, AmountField):
        return (lambda v: type(v) is Decimal and v.is_finite()), _same
    if kind is models.DateTimeField and settings.USE_TZ:
        return (lambda v: type(v) is datetime and v.utcoffset() is not None), _same
    if kind is models.JSONField:
        encoder = field.encoder
        return (lambda v: type(v) in (dict, list)), (
            lambda v, conn: conn.ops.adapt_json_value(v, encoder)
        )
    return None


def columns(fields: Iterable, prefix: str = "") -> str:
    qn = connection.ops.quote_name
    return ", ".join(f"{prefix}{qn(f.column)}" for f in fields)


def qn(name: str) -> str:
    return connection.ops.quote_name(name)


def instance(model: type[Model], fields: Iterable, values, *, binary: bool = False) -> Model:
    """A model instance from raw column values, converted as the ORM converts them.

    ``binary``: the values are PostgreSQL's binary results (``fetch_all(binary=True)``),
    which psycopg's loaders already made the ORM's types (JSON parsed, among them)."""
    from tradingstate.db import python_values

    if not isinstance(fields, Fields):
        fields = Fields(fields)
    conn = connections[DEFAULT_DB_ALIAS]
    if len(values) != len(fields):
        raise ValueError(f"{len(values)} values for {len(fields)} fields of {model.__name__}")
    loaded = binary and conn.vendor == "postgresql"
    if fields.converters and not loaded:
        values = list(values)
        for i, f in fields.converters:
            values[i] = f.from_db_value(values[i], None, conn)
    if conn.vendor != "postgresql":  # psycopg's loaders already give the ORM's types
        values = python_values(fields, values)
    return model.from_db(conn.alias, fields.attnames, values)


@cache
def update_fields(model: type[Model], *, keep: tuple[str, ...]) -> Fields:
    """Every column a full ``save()`` writes, less the primary key and ``keep``."""
    return Fields(
        f for f in model._meta.concrete_fields if not f.primary_key and f.name not in keep
    )


_update_sql: dict[tuple, str] = {}


def row_update(obj: Model, fields: Fields) -> None:
    """``UPDATE`` the instance's row: the columns of ``fields`` (``update_fields``) with its
    values, prepared as ``save()`` prepares them (``pre_save``: ``auto_now`` included). One
    statement whose text is built once per model, columns and database (the ORM's ``save``
    compiles it again every time: ~0.2 ms of CPU for a run row's 20 columns)."""
    from tradingstate.db import execute

    model = type(obj)
    key = (model, tuple(fields.attnames), connection.vendor)
    sql = _update_sql.get(key)
    if sql is None:
        sets = ", ".join(f"{qn(f.column)} = %s" for f in fields)
        pk = model._meta.pk
        table = qn(model._meta.db_table)  # the model's own names, quoted; values are parameters
        sql = _update_sql[key] = f"UPDATE {table} SET {sets} WHERE {qn(pk.column)} = %s"  # noqa: S608
    execute(sql, [*insert_values(obj, fields, add=False), obj.pk])
