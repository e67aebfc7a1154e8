"""Two indexes of the discrepancy table that no query uses, dropped: a pass with findings
writes thousands of discrepancy rows in its one transaction, and every index costs each
row (``tests/integration/tradingstate/test_write_indexes.py``, which now covers this
table). Measured with pg_waldump during register-under-passes: the discrepancy table and
its nine indexes were 42 % of a pass's WAL.

- the ``account`` foreign key's own index: ``(account, status)``, ``(account, type, key)``
  and the open ones' ``(account, type)`` all lead with the column;
- PostgreSQL's ``*_like`` pattern-ops twin of ``type``'s index: nothing searches types by
  prefix.

Dropped by name, found by introspection (as tradingstate's 0013): an ``AlterField`` would
rebuild the SQLite table.
"""

import django.db.models.deletion
from django.db import migrations, models


def _single_column_indexes(schema_editor, table, column):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return [
        name
        for name, c in constraints.items()
        if c["index"] and not c["unique"] and not c["primary_key"] and c["columns"] == [column]
    ]


def drop_indexes(apps, schema_editor):
    qn = schema_editor.connection.ops.quote_name
    table = apps.get_model("reconciliation", "discrepancy")._meta.db_table
    for name in _single_column_indexes(schema_editor, table, "account_id"):
        if not name.endswith("_like"):
            schema_editor.execute(f"DROP INDEX IF EXISTS {qn(name)}")
    if schema_editor.connection.vendor == "postgresql":
        for name in _single_column_indexes(schema_editor, table, "type"):
            if name.endswith("_like"):
                schema_editor.execute(f"DROP INDEX IF EXISTS {qn(name)}")


def restore_indexes(apps, schema_editor):
    """Back to the indexes Django made before (``apps`` is the state before 0006)."""
    model = apps.get_model("reconciliation", "discrepancy")
    account = model._meta.get_field("account")
    if not _single_column_indexes(schema_editor, model._meta.db_table, "account_id"):
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[account]))
    if schema_editor.connection.vendor == "postgresql":
        like = schema_editor._create_like_index_sql(model, model._meta.get_field("type"))
        if like is not None:
            schema_editor.execute(like)


class Migration(migrations.Migration):
    dependencies = [
        ("reconciliation", "0005_fills_types"),
        ("tradingstate", "0013_write_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(drop_indexes, restore_indexes)],
            state_operations=[
                migrations.AlterField(
                    model_name="discrepancy",
                    name="account",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="discrepancies",
                        to="tradingstate.exchangeaccount",
                    ),
                ),
            ],
        ),
    ]
