"""TEMPORARY (branch pnl-int): the Position/Fill accounting columns that branch `fills`
(issue 14) adds with exactly these names. The integrator keeps one of the two migrations."""

from decimal import Decimal

from django.db import migrations, models

import tradingstate.fields


class Migration(migrations.Migration):
    dependencies = [
        ("tradingstate", "0005_pnl_int_marks_snapshots"),
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
