"""The Position/Fill accounting columns: average-cost figures stored as they evolve (the
Position row) and each fill's own effect (the Fill row), so reads never replay history."""

from decimal import Decimal

from django.db import migrations, models

import tradingstate.fields


class Migration(migrations.Migration):
    dependencies = [
        ("tradingstate", "0006_pnl_int_marks_snapshots"),
    ]

    operations = [
        migrations.AddField(
            model_name="fill",
            name="fee_quote",
            field=tradingstate.fields.AmountField(default=Decimal("0")),
        ),
        migrations.AddField(
            model_name="fill",
            name="realized_pnl",
            field=tradingstate.fields.AmountField(default=Decimal("0")),
        ),
        migrations.AddField(
            model_name="position",
            name="fees",
            field=tradingstate.fields.AmountField(default=Decimal("0")),
        ),
        migrations.AddField(
            model_name="position",
            name="fees_other",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="position",
            name="fill_count",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="position",
            name="inferred_fills",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="position",
            name="realized_pnl",
            field=tradingstate.fields.AmountField(default=Decimal("0")),
        ),
    ]
