"""``field__any=values``: membership in a long list, as one array parameter on PostgreSQL.

Django's ``__in`` prepares every value of the list on its own and writes a placeholder for
each; psycopg then parses a statement with thousands of them. A reconciliation pass filters
by lists of thousands of ids, so on PostgreSQL this lookup sends ``col = ANY(%s)`` with the
list as one array. Values are prepared for the field once each, as ``__in`` does (so a
string id for an integer column is still refused). Elsewhere it is a plain ``IN``; callers
on SQLite keep lists under its parameter cap as they would for ``__in``.
"""

from __future__ import annotations

from django.core.exceptions import EmptyResultSet
from django.db.models import Field, Lookup


@Field.register_lookup
class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def get_prep_lookup(self):
        field = self.lhs.output_field
        return [field.get_prep_value(v) for v in dict.fromkeys(self.rhs)]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        field = self.lhs.output_field
        values = [field.get_db_prep_value(v, connection, prepared=True) for v in self.rhs]
        if not values:
            raise EmptyResultSet
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*lhs_params, values]
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]
