"""Every index on a table the bots and the reconciler write on each request costs each of
those writes (an order's transition is not a HOT update: it rewrites an entry in every
index of the order table). Such tables carry no index that no query can use:

- none whose columns are the leading columns of another index on the same table (a
  foreign key's own index beside a ``(account, ...)`` unique constraint);
- none for ``LIKE 'prefix%'`` (PostgreSQL's ``*_like`` pattern-ops twins of ``db_index``
  on text columns): nothing searches these tables by prefix, and the console's
  ``icontains`` search cannot use them.

Measured (issue 17): an order transition's PostgreSQL CPU fell from ~350 to ~300 us.
"""

import pytest
from django.db import connection

from reconciliation.models import Discrepancy, Repair
from tradingstate.models import AuditEntry, Balance, Fill, Order, Position

pytestmark = pytest.mark.django_db
# a pass with findings writes thousands of discrepancies and repairs in one transaction
HOT_WRITES = (Order, Fill, Position, Balance, AuditEntry, Discrepancy, Repair)


def _indexes(model) -> dict[str, tuple[list[str], bool]]:
    """The table's full (not partial) indexes: a partial index serves its own predicate."""
    partial = {i.name for i in model._meta.indexes if i.condition is not None}
    partial |= {c.name for c in model._meta.constraints if getattr(c, "condition", None)}
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return {
        name: (c["columns"], bool(c["unique"]))
        for name, c in constraints.items()
        if (c["index"] or c["unique"]) and name not in partial
    }


@pytest.mark.parametrize("model", HOT_WRITES, ids=lambda m: m.__name__)
def test_no_index_is_the_leading_part_of_another(model):
    indexes = _indexes(model)
    redundant = [
        (name, other)
        for name, (columns, unique) in indexes.items()
        for other, (other_columns, _) in indexes.items()
        if other != name
        and not unique
        and len(columns) < len(other_columns)
        and other_columns[: len(columns)] == columns
    ]
    assert not redundant, redundant


@pytest.mark.parametrize("model", HOT_WRITES, ids=lambda m: m.__name__)
def test_no_prefix_search_index(model):
    assert not [name for name in _indexes(model) if name.endswith("_like")]


def test_the_lookups_the_code_makes_keep_their_index():
    """What the indexes left serve: the venue's order id, the audit's run and finding
    (partial: most rows have none), and each table's account-leading lookups."""

    def leading(model):
        with connection.cursor() as cursor:
            found = connection.introspection.get_constraints(cursor, model._meta.db_table)
        return {tuple(c["columns"][:1]) for c in found.values() if c["index"] or c["unique"]}

    assert ("exchange_order_id",) in leading(Order)
    assert {("run_id",), ("discrepancy_id",), ("account_id",)} <= leading(AuditEntry)
    for model in (Order, Fill, Position, Balance, Discrepancy, Repair):
        assert ("account_id",) in leading(model), model.__name__
    # the console's filters and the pass's and retention's reads of discrepancies
    assert {("type",), ("run_id",), ("created_at",)} <= leading(Discrepancy)
