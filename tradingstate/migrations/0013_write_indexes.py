"""Indexes no query uses, dropped: each cost every write of the bots' hot path and the
reconciler's (``tests/integration/tradingstate/test_write_indexes.py``; an order's
transition is not a HOT update, so it writes an entry in every index of the order table).

- The ``account`` foreign keys' own indexes on orders, fills, positions and balances: each
  table's ``(account, ...)`` indexes lead with the column.
- The audit's ``run_id`` and ``discrepancy_id`` indexes become partial (``IS NOT NULL``):
  bots' and staff's rows have neither. Building them reads the audit table once, holding
  its writes meanwhile.
- PostgreSQL's ``*_like`` pattern-ops twins of ``db_index`` (order ``exchange_order_id``,
  audit ``correlation_id`` and ``action``): nothing searches them by prefix, and the
  console's ``icontains`` search cannot use them. Django's state does not track them.

The indexes are dropped by name, found by introspection, on every database: Django's own
``AlterField`` would rebuild the SQLite tables, and with them drop the audit table's
append-only trigger (migration 0002).
"""

import django.db.models.deletion
from django.db import migrations, models

# (model, column): the single-column indexes this migration drops
OWN_INDEXES = [
    ("order", "account_id"),
    ("fill", "account_id"),
    ("position", "account_id"),
    ("balance", "account_id"),
    ("auditentry", "run_id"),
    ("auditentry", "discrepancy_id"),
]
PREFIX_INDEXES = [
    ("order", "exchange_order_id"),
    ("auditentry", "correlation_id"),
    ("auditentry", "action"),
]


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
    for model_name, column in OWN_INDEXES:
        table = apps.get_model("tradingstate", model_name)._meta.db_table
        for name in _single_column_indexes(schema_editor, table, column):
            if not name.endswith("_like"):
                schema_editor.execute(f"DROP INDEX IF EXISTS {qn(name)}")
    if schema_editor.connection.vendor != "postgresql":
        return  # only PostgreSQL makes the pattern-ops twins
    for model_name, column in PREFIX_INDEXES:
        table = apps.get_model("tradingstate", model_name)._meta.db_table
        for name in _single_column_indexes(schema_editor, table, column):
            if name.endswith("_like"):
                schema_editor.execute(f"DROP INDEX IF EXISTS {qn(name)}")


def restore_indexes(apps, schema_editor):
    """Back to the indexes Django made before (``apps`` is the state before 0013)."""
    for model_name, column in OWN_INDEXES:
        model = apps.get_model("tradingstate", model_name)
        field = next(f for f in model._meta.concrete_fields if f.column == column)
        if not _single_column_indexes(schema_editor, model._meta.db_table, column):
            schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))
    if schema_editor.connection.vendor == "postgresql":
        for model_name, column in PREFIX_INDEXES:
            model = apps.get_model("tradingstate", model_name)
            field = next(f for f in model._meta.concrete_fields if f.column == column)
            like = schema_editor._create_like_index_sql(model, field)
            if like is not None:
                schema_editor.execute(like)


def _fk(related_name):
    return models.ForeignKey(
        db_index=False,
        on_delete=django.db.models.deletion.PROTECT,
        related_name=related_name,
        to="tradingstate.exchangeaccount",
    )


class Migration(migrations.Migration):
    dependencies = [("tradingstate", "0012_hotpath_rate_counter")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(drop_indexes, restore_indexes)],
            state_operations=[
                migrations.AlterField(
                    model_name="auditentry",
                    name="discrepancy_id",
                    field=models.BigIntegerField(blank=True, null=True),
                ),
                migrations.AlterField(
                    model_name="auditentry",
                    name="run_id",
                    field=models.BigIntegerField(blank=True, null=True),
                ),
                migrations.AlterField(model_name="balance", name="account", field=_fk("balances")),
                migrations.AlterField(model_name="fill", name="account", field=_fk("fills")),
                migrations.AlterField(model_name="order", name="account", field=_fk("orders")),
                migrations.AlterField(
                    model_name="position", name="account", field=_fk("positions")
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(
                condition=models.Q(("run_id__isnull", False)), fields=["run_id"], name="audit_run"
            ),
        ),
        migrations.AddIndex(
            model_name="auditentry",
            index=models.Index(
                condition=models.Q(("discrepancy_id__isnull", False)),
                fields=["discrepancy_id"],
                name="audit_discrepancy",
            ),
        ),
    ]
