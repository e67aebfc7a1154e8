"""Issue 15: MarkPrice (per instrument) and PnlSnapshot (hourly, per account and desk)."""

import django.db.models.deletion
import tradingstate.fields
from decimal import Decimal
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tradingstate", "0005_ops_notifications"),
    ]

    operations = [
        migrations.CreateModel(
            name="MarkPrice",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("symbol", models.CharField(max_length=64)),
                ("price", tradingstate.fields.AmountField()),
                (
                    "time",
                    models.DateTimeField(
                        help_text="The venue's time of the price (else when fetched)."
                    ),
                ),
                (
                    "source",
                    models.CharField(
                        choices=[("mark", "Mark price"), ("last", "Last trade")], max_length=4
                    ),
                ),
                ("stale", models.BooleanField(default=False, help_text="The last refresh failed.")),
                ("fetched_at", models.DateTimeField(help_text="The last refresh attempt.")),
                ("error", models.TextField(blank=True, help_text="Why the last refresh failed.")),
                (
                    "account",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="mark_prices",
                        to="tradingstate.exchangeaccount",
                    ),
                ),
            ],
            options={
                "ordering": ["account", "symbol"],
                "indexes": [models.Index(fields=["symbol"], name="markprice_symbol")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("account", "symbol"), name="markprice_unique_symbol"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("price__gt", 0)), name="markprice_price_gt_0"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("source__in", ["mark", "last"])),
                        name="markprice_source_valid",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="PnlSnapshot",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("taken_at", models.DateTimeField(help_text="The start of the hour it records.")),
                ("recorded_at", models.DateTimeField()),
                ("valuation_currency", models.CharField(max_length=32)),
                ("realized_pnl", tradingstate.fields.AmountField(blank=True, null=True)),
                ("unrealized_pnl", tradingstate.fields.AmountField(blank=True, null=True)),
                ("fees", tradingstate.fields.AmountField(blank=True, null=True)),
                ("net_pnl", tradingstate.fields.AmountField(blank=True, null=True)),
                ("net_notional", tradingstate.fields.AmountField(blank=True, null=True)),
                ("gross_notional", tradingstate.fields.AmountField(blank=True, null=True)),
                ("stale", models.BooleanField(default=False)),
                (
                    "account",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="pnl_snapshots",
                        to="tradingstate.exchangeaccount",
                    ),
                ),
            ],
            options={
                "ordering": ["-taken_at", "-id"],
                "indexes": [models.Index(fields=["taken_at"], name="pnlsnapshot_taken_at")],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("account__isnull", False)),
                        fields=("account", "taken_at"),
                        name="pnlsnapshot_unique_account_hour",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("account__isnull", True)),
                        fields=("taken_at",),
                        name="pnlsnapshot_unique_desk_hour",
                    ),
                ],
            },
        ),
    ]
