"""ORM reads compiled once per database: the statement of a fixed-shape read (the same
filters and columns every time, only ids change), built by the ORM on its first run and
reused with the new ids.

Building a queryset and compiling it (filters resolved to columns, joins, the compiler's
SQL) costs 0.3 to 0.9 ms of CPU a statement, every time, though the text never changes: a
reconciliation pass runs a dozen such reads, most of the CPU of a pass that finds nothing
(``bench/profile_pass.py``). ``CompiledRead(build)`` compiles ``build(*ids)`` once per
database with marker ids, records which parameters the ids became, and afterwards only
substitutes them: the statement is the ORM's own text, so it cannot drift from the
queryset it replaces (``queryset(*ids)`` builds that queryset, for the backends that read
through the ORM).

Arguments: integers that reach the statement unchanged (an id compared with ``=``), and
lists (``lists=``: the positions of those arguments) that reach it as one array parameter
(``field__any=values`` on PostgreSQL); a list is given as the database takes it (strings
for a text column) and sent as it is; and strings (``prefixes=``) that start a ``LIKE``
pattern (``field__startswith=f"{value}:"``), escaped as Django escapes them. Compiling
checks that each marker appears in a parameter of its own, else it raises.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection
from django.db.models import QuerySet

# marker ids: inside every integer column's range (Django turns an out-of-range lookup
# value into an empty WHERE), and not a constant any compiled read compares with
MARKER_BASE = 1_987_654_301
MAX_ARGS = 8
ID, CONSTANT, PREFIX = 0, 1, 2


def _text_marker(index: int) -> str:
    return f"\x02compiledarg{index}\x03"  # nothing LIKE escapes


class CompiledRead:
    """``build(*ids) -> QuerySet``: its statement compiled once per database."""

    def __init__(
        self,
        build: Callable[..., QuerySet],
        arity: int = 1,
        *,
        lists: tuple[int, ...] = (),
        prefixes: tuple[int, ...] = (),
    ):
        if not 0 < arity <= MAX_ARGS:
            raise ValueError(f"CompiledRead takes 1 to {MAX_ARGS} ids, not {arity}")
        self.build = build
        self.arity = arity
        self.lists = frozenset(lists)
        self.prefixes = frozenset(prefixes)
        self._compiled: dict[tuple[str, str], tuple[str, tuple]] = {}

    def queryset(self, *ids) -> QuerySet:
        return self.build(*ids)

    def rows(self, *ids) -> list[tuple]:
        """The read's rows, of plain columns (ids, text, amounts, times): on PostgreSQL the
        compiled statement with binary results (psycopg's C loaders give the ORM's types),
        elsewhere through the ORM."""
        if connection.vendor != "postgresql":
            return list(self.queryset(*ids))
        from tradingstate import db

        return db.fetch_all(*self.statement(*ids), binary=True)

    def statement(self, *ids) -> tuple[str, list]:
        """(sql, params) of ``build(*ids)`` on the current connection's database."""
        if len(ids) != self.arity:
            raise TypeError(f"expected {self.arity} ids, got {len(ids)}")
        key = (connection.alias, connection.vendor)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._compile()
        sql, slots = compiled
        params = []
        for kind, value, index in slots:
            if kind == ID:
                params.append(ids[index])
            elif kind == CONSTANT:
                params.append(value)
            else:
                like = connection.ops.prep_for_like_query(ids[index])
                params.append(value.replace(_text_marker(index), like))
        return sql, params

    def _compile(self) -> tuple[str, tuple]:
        markers = [MARKER_BASE + i for i in range(self.arity)]
        args = [
            [m] if i in self.lists else _text_marker(i) if i in self.prefixes else m
            for i, m in enumerate(markers)
        ]
        sql, params = self.build(*args).query.sql_with_params()
        slots = []
        seen = set()
        for value in params:
            index = self._marker(value, markers)
            if index is not None:
                seen.add(index)
                slots.append((PREFIX if index in self.prefixes else ID, value, index))
            else:
                slots.append((CONSTANT, value, None))
        if len(seen) != self.arity:
            raise ValueError(
                "CompiledRead: an id did not reach the statement as a parameter of its own "
                f"({sql!r}, {params!r})"
            )
        return sql, tuple(slots)

    def _marker(self, value, markers: list[int]) -> int | None:
        """The argument ``value`` stands for, if it is one's marker."""
        if type(value) is str:  # a LIKE pattern starting with a prefix argument
            for index in self.prefixes:
                if value.startswith(_text_marker(index)):
                    return index
            return None
        if type(value) is int and value in markers:
            index = markers.index(value)
            return None if index in self.lists else index
        if type(value) is list and len(value) == 1:  # an array parameter: a list argument
            for index in self.lists:
                if str(value[0]) == str(markers[index]):
                    return index
        return None
