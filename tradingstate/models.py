"""The state of record: accounts, instruments, orders, fills, positions, balances, audit trail.

Models hold fields, choices, constraints and tiny predicates only. Every write goes through
``tradingstate.services`` (which audits it); reads through ``tradingstate.selectors``.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper

from tradingstate import transitions
from tradingstate.amounts import AMOUNT_DIGITS, AMOUNT_PLACES  # noqa: F401 (re-exported)
from tradingstate.amounts import amount_display as _n
from tradingstate.errors import ValidationFailed
from tradingstate.fields import AmountField
from tradingstate.rules import values
from tradingstate.rules.values import (
    CLIENT_ORDER_ID_MESSAGE,
    CLIENT_ORDER_ID_PATTERN,
    ENV_NAME_PATTERN,
    SLUG_PATTERN,
    whole_string,
)

slug_validator = RegexValidator(
    whole_string(SLUG_PATTERN),
    "Use lowercase letters, digits, '-' or '_' (1-63 characters).",
)
env_name_validator = RegexValidator(
    whole_string(r"^(" + ENV_NAME_PATTERN[1:-1] + r")?$"),
    "The NAME of an environment variable (A-Z, 0-9, _), never the secret itself.",
)


def _check(rule, value) -> None:
    """Run a ``rules.values`` rule as a model field validator (its message, Django's error)."""
    try:
        rule(value)
    except ValidationFailed as exc:
        messages = [m for ms in (exc.fields or {}).values() for m in ms] or [exc.message]
        raise ValidationError(messages) from None


def ccxt_options_validator(value) -> None:
    _check(values.ccxt_options, value)


def balance_tolerances_validator(value) -> None:
    _check(values.balance_tolerances, value)


def exchange_validator(value) -> None:
    _check(values.exchange_id, value)


client_order_id_validator = RegexValidator(
    whole_string(CLIENT_ORDER_ID_PATTERN), CLIENT_ORDER_ID_MESSAGE
)


class MarketType(models.TextChoices):
    SPOT = "spot", "Spot"
    SWAP = "swap", "Perpetual swap"
    FUTURE = "future", "Dated future"


class ExchangeAccount(models.Model):
    """One trading account on one exchange. Secrets are never stored: only env-var names."""

    name = models.CharField(max_length=63, unique=True, validators=[slug_validator])
    exchange = models.CharField(
        max_length=32,
        help_text="ccxt exchange id (binance, bybit, okx, …) or 'paper'.",
        validators=[exchange_validator],
    )
    market_type = models.CharField(
        max_length=8, choices=MarketType.choices, default=MarketType.SPOT
    )
    api_key_env = models.CharField(max_length=128, blank=True, validators=[env_name_validator])
    secret_env = models.CharField(max_length=128, blank=True, validators=[env_name_validator])
    password_env = models.CharField(max_length=128, blank=True, validators=[env_name_validator])
    ccxt_options = models.JSONField(
        default=dict,
        blank=True,
        help_text="Merged into the ccxt constructor config (never a credential).",
        validators=[ccxt_options_validator],
    )
    sandbox = models.BooleanField(default=False, help_text="Use the exchange's testnet/demo.")
    enabled = models.BooleanField(default=True)
    auto_repair = models.BooleanField(default=True)
    reconciliation_interval_seconds = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)]
    )
    balance_tolerance = AmountField(default=Decimal("0.01"))
    balance_tolerances = models.JSONField(
        default=dict,
        blank=True,
        help_text='Per-currency overrides, e.g. {"BTC": "0.00001"}.',
        validators=[balance_tolerances_validator],
    )
    stale_order_grace_seconds = models.PositiveIntegerField(default=10)
    last_reconciled_at = models.DateTimeField(null=True, blank=True)
    # issue 14: the trade watermark. Every venue trade executed before it has been compared
    # with the local fills; the next pass reads trades from it minus ``fill_overlap_seconds``.
    # None: no pass has read the account's trades yet (the first looks back
    # ``fill_lookback_hours``, default the venue's maximum).
    fills_watermark_at = models.DateTimeField(null=True, blank=True)
    # Set when a pass fails on authentication: passes stop until staff re-enable the account.
    disabled_reason = models.TextField(blank=True)
    # Set by `recover`; cleared when the account's first pass after it completes. While set,
    # new orders for the account are refused with 503 "reconciliation in progress".
    recovery_started_at = models.DateTimeField(null=True, blank=True)
    # Staff paused auto-repair (after a manual correction, say): until then, passes record
    # discrepancies but repair nothing. Set through services.account_auto_repair_pause.
    auto_repair_paused_until = models.DateTimeField(null=True, blank=True)
    auto_repair_paused_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(balance_tolerance__gte=0), name="account_balance_tolerance_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(reconciliation_interval_seconds__gte=1),
                name="account_interval_gte_1",
            ),
        ]
        permissions = [
            ("reconcile_account", "Can run a reconciliation pass now"),
            ("halt_account", "Can halt and resume trading on an account"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_derivative(self) -> bool:
        return self.market_type != MarketType.SPOT

    def auto_repair_paused(self, now) -> bool:
        return self.auto_repair_paused_until is not None and self.auto_repair_paused_until > now

    def auto_repair_active(self, now) -> bool:
        """Whether a pass at ``now`` applies its repairs: auto-repair on and not paused."""
        return self.auto_repair and not self.auto_repair_paused(now)

    def tolerance_for(self, currency: str) -> Decimal:
        override = (self.balance_tolerances or {}).get(currency)
        return Decimal(str(override)) if override is not None else self.balance_tolerance


class Instrument(models.Model):
    account = models.ForeignKey(
        ExchangeAccount, on_delete=models.PROTECT, related_name="instruments"
    )
    symbol = models.CharField(max_length=64)
    base = models.CharField(max_length=32)
    quote = models.CharField(max_length=32)
    settle = models.CharField(max_length=32, blank=True)
    market_type = models.CharField(
        max_length=8, choices=MarketType.choices, default=MarketType.SPOT
    )
    amount_step = AmountField(
        default=Decimal("0"), help_text="Smallest quantity step; the position tolerance."
    )
    price_step = AmountField(default=Decimal("0"))
    contract_size = AmountField(default=Decimal("1"))
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["account", "symbol"], name="instrument_unique_symbol"),
            models.CheckConstraint(
                condition=Q(amount_step__gte=0), name="instrument_amount_step_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(price_step__gte=0), name="instrument_price_step_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(contract_size__gt=0), name="instrument_contract_size_gt_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account.name}:{self.symbol}"


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUBMITTED = "submitted", "Submitted"
        PARTIALLY_FILLED = "partially_filled", "Partially filled"
        FILLED = "filled", "Filled"
        CANCELLED = "cancelled", "Cancelled"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"

    class Side(models.TextChoices):
        BUY = "buy", "Buy"
        SELL = "sell", "Sell"

    class Type(models.TextChoices):
        MARKET = "market", "Market"
        LIMIT = "limit", "Limit"
        STOP = "stop", "Stop"
        STOP_LIMIT = "stop_limit", "Stop limit"
        TAKE_PROFIT = "take_profit", "Take profit"
        TAKE_PROFIT_LIMIT = "take_profit_limit", "Take profit limit"
        TRAILING_STOP = "trailing_stop", "Trailing stop"
        OTHER = "other", "Other"

    class Origin(models.TextChoices):
        BOT = "bot", "Bot"
        RECONCILIATION = "reconciliation", "Reconciliation"
        MANUAL = "manual", "Manual"

    ACTIVE_STATUSES = transitions.ACTIVE  # the status machine defines them, once
    TERMINAL_STATUSES = transitions.TERMINAL

    # no index of its own: the (account, client_order_id) and (account, status) indexes lead
    # with it, and every index costs each write (tests/.../test_write_indexes.py)
    account = models.ForeignKey(
        ExchangeAccount, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    client_order_id = models.CharField(max_length=64, validators=[client_order_id_validator])
    exchange_order_id = models.CharField(max_length=128, blank=True, db_index=True)
    symbol = models.CharField(max_length=64)
    side = models.CharField(max_length=4, choices=Side.choices)
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.LIMIT)
    quantity = AmountField()
    price = AmountField(null=True, blank=True)
    filled_qty = AmountField(default=Decimal("0"))
    remaining_qty = AmountField()
    avg_fill_price = AmountField(null=True, blank=True)
    # issue 14: the sum of this order's Fill rows, kept by the fill service. After a completed
    # pass ``filled_qty == fills_qty`` (a partial index finds the orders that differ).
    fills_qty = AmountField(default=Decimal("0"))
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    strategy_id = models.CharField(max_length=64, blank=True)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.BOT)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    version = models.PositiveBigIntegerField(default=1)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "client_order_id"], name="order_unique_client_order_id"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_quantity_gt_0"),
            models.CheckConstraint(condition=Q(filled_qty__gte=0), name="order_filled_gte_0"),
            models.CheckConstraint(
                condition=Q(filled_qty__lte=F("quantity")), name="order_filled_lte_quantity"
            ),
            models.CheckConstraint(condition=Q(remaining_qty__gte=0), name="order_remaining_gte_0"),
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gte=0), name="order_price_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "pending",
                        "submitted",
                        "partially_filled",
                        "filled",
                        "cancelled",
                        "rejected",
                        "expired",
                    ]
                ),
                name="order_status_valid",
            ),
            models.CheckConstraint(condition=Q(side__in=["buy", "sell"]), name="order_side_valid"),
        ]
        indexes = [
            models.Index(fields=["account", "status"], name="order_account_status"),
            # the orders whose fills fall short of their filled quantity (every pass reads
            # them, whatever their status): few rows, however long the account's history
            models.Index(
                fields=["account"],
                condition=~Q(filled_qty=F("fills_qty")),
                name="order_account_fills_gap",
            ),
        ]

    def __str__(self) -> str:
        qty = _n(self.quantity)
        return f"{self.client_order_id} {self.side} {qty} {self.symbol} [{self.status}]"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class Fill(models.Model):
    """One execution (a trade) of the account, recorded by a bot or by reconciliation.

    Identified by ``(account, symbol, trade_id)``: venues such as Binance number trades per
    symbol, so a trade id alone is not unique per account (DESIGN §3 says "unique per
    account"; see the fills README section). ``order`` is None for an external/manual trade
    (the venue lists it, no local order matches it): the position still counts it.
    ``inferred`` marks a fill the reconciler recorded because the venue said the order filled
    but no longer lists its trades (history expired): at the venue's average price.
    """

    class Origin(models.TextChoices):
        BOT = "bot", "Bot"
        RECONCILIATION = "reconciliation", "Reconciliation"
        MANUAL = "manual", "Manual"

    account = models.ForeignKey(  # indexed by the (account, ...) indexes below
        ExchangeAccount, on_delete=models.PROTECT, related_name="fills", db_index=False
    )
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="fills", null=True, blank=True
    )
    symbol = models.CharField(max_length=64, default="")
    side = models.CharField(max_length=4, choices=Order.Side.choices, default=Order.Side.BUY)
    trade_id = models.CharField(max_length=128)
    # the order ids as the venue (or the bot) reported them with the trade
    client_order_id = models.CharField(max_length=64, blank=True)
    exchange_order_id = models.CharField(max_length=128, blank=True)
    quantity = AmountField()
    price = AmountField()
    fee = AmountField(default=Decimal("0"))
    fee_currency = models.CharField(max_length=32, blank=True)
    is_maker = models.BooleanField(null=True, blank=True, help_text="None when not reported.")
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.BOT)
    inferred = models.BooleanField(
        default=False, help_text="The venue said filled but no longer lists the trades."
    )
    executed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    # accounting (issue 15): this fill's own share, from ``rules.accounting.step``
    realized_pnl = AmountField(default=Decimal("0"))
    fee_quote = AmountField(default=Decimal("0"))

    class Meta:
        ordering = ["-executed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "symbol", "trade_id"], name="fill_unique_symbol_trade_id"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="fill_quantity_gt_0"),
            models.CheckConstraint(condition=Q(price__gte=0), name="fill_price_gte_0"),
        ]
        indexes = [
            models.Index(fields=["account", "executed_at"], name="fill_account_time"),
            models.Index(fields=["account", "trade_id"], name="fill_account_trade_id"),
        ]

    def __str__(self) -> str:
        flag = " (inferred)" if self.inferred else ""
        return f"{self.trade_id} {_n(self.quantity)}@{_n(self.price)}{flag}"


class Position(models.Model):
    account = models.ForeignKey(  # indexed by the (account, symbol) constraint
        ExchangeAccount, on_delete=models.PROTECT, related_name="positions", db_index=False
    )
    symbol = models.CharField(max_length=64)
    qty = AmountField(default=Decimal("0"), help_text="Signed: long > 0, short < 0.")
    entry_price = AmountField(null=True, blank=True)  # the average entry price
    # accounting (issue 15), written only by services.accounting.position_accounting_apply:
    # gross realized P&L and fees in the quote currency, other-currency fees unconverted
    realized_pnl = AmountField(default=Decimal("0"))
    fees = AmountField(default=Decimal("0"))
    fees_other = models.JSONField(default=dict, blank=True)
    fill_count = models.PositiveIntegerField(default=0)
    inferred_fills = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveBigIntegerField(default=1)

    class Meta:
        ordering = ["account", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["account", "symbol"], name="position_unique_symbol"),
            models.CheckConstraint(
                condition=Q(entry_price__isnull=True) | Q(entry_price__gte=0),
                name="position_entry_price_gte_0",
            ),
        ]
        permissions = [("correct_position", "Can correct a position with a reason")]

    def __str__(self) -> str:
        return f"{self.account.name}:{self.symbol} {_n(self.qty)}"


class Balance(models.Model):
    account = models.ForeignKey(  # indexed by the (account, currency) constraint
        ExchangeAccount, on_delete=models.PROTECT, related_name="balances", db_index=False
    )
    currency = models.CharField(max_length=32)
    free = AmountField(default=Decimal("0"))
    used = AmountField(default=Decimal("0"))
    total = AmountField(default=Decimal("0"))
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveBigIntegerField(default=1)

    class Meta:
        ordering = ["account", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["account", "currency"], name="balance_unique_currency"),
            # one asset, one row: "eth" beside "ETH" was counted twice in the exposure, which
            # compares currencies without case (as the valuation does)
            models.UniqueConstraint(
                Upper("currency"), "account", name="balance_unique_currency_any_case"
            ),
            models.CheckConstraint(condition=Q(used__gte=0), name="balance_used_gte_0"),
            # issue 13 (D8): never negative; free + used = total is a PostgreSQL CHECK added
            # by migration 0009 (amounts are text on SQLite: no arithmetic in its CHECKs)
            models.CheckConstraint(condition=Q(free__gte=0), name="balance_free_gte_0"),
            models.CheckConstraint(condition=Q(total__gte=0), name="balance_total_gte_0"),
        ]
        permissions = [("correct_balance", "Can correct a balance with a reason")]

    def __str__(self) -> str:
        return f"{self.account.name}:{self.currency} {_n(self.total)}"


class MarkPrice(models.Model):
    """The price an account's instrument is valued at: the venue's mark (else last trade).

    One row per instrument (account + unified symbol, the Instrument's key), refreshed by
    each reconciliation pass. A failed fetch keeps the previous price with ``stale`` set,
    never zero; a price older than ``mark_price_max_age_seconds`` is stale as well
    (``tradingstate.selectors.pnl.mark_is_stale``).
    """

    class Source(models.TextChoices):
        MARK = "mark", "Mark price"
        LAST = "last", "Last trade"

    account = models.ForeignKey(
        ExchangeAccount, on_delete=models.CASCADE, related_name="mark_prices"
    )
    symbol = models.CharField(max_length=64)
    price = AmountField()
    time = models.DateTimeField(help_text="The venue's time of the price (else when fetched).")
    source = models.CharField(max_length=4, choices=Source.choices)
    stale = models.BooleanField(default=False, help_text="The last refresh failed.")
    fetched_at = models.DateTimeField(help_text="The last refresh attempt.")
    error = models.TextField(blank=True, help_text="Why the last refresh failed.")

    class Meta:
        ordering = ["account", "symbol"]
        constraints = [
            models.UniqueConstraint(fields=["account", "symbol"], name="markprice_unique_symbol"),
            models.CheckConstraint(condition=Q(price__gt=0), name="markprice_price_gt_0"),
            models.CheckConstraint(
                condition=Q(source__in=["mark", "last"]), name="markprice_source_valid"
            ),
        ]
        indexes = [models.Index(fields=["symbol"], name="markprice_symbol")]

    def __str__(self) -> str:
        return f"{self.symbol} {_n(self.price)} ({self.source})"


class PnlSnapshot(models.Model):
    """An hourly record of an account's (or, with no account, the desk's) P&L and exposure
    totals, so curves are drawn without replaying fills. A figure that could not be valued
    (no mark) is NULL, never zero."""

    account = models.ForeignKey(
        ExchangeAccount,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="pnl_snapshots",
    )
    taken_at = models.DateTimeField(help_text="The start of the hour it records.")
    recorded_at = models.DateTimeField()
    valuation_currency = models.CharField(max_length=32)
    realized_pnl = AmountField(null=True, blank=True)
    unrealized_pnl = AmountField(null=True, blank=True)
    fees = AmountField(null=True, blank=True)
    net_pnl = AmountField(null=True, blank=True)
    net_notional = AmountField(null=True, blank=True)
    gross_notional = AmountField(null=True, blank=True)
    stale = models.BooleanField(default=False)

    class Meta:
        ordering = ["-taken_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "taken_at"],
                condition=Q(account__isnull=False),
                name="pnlsnapshot_unique_account_hour",
            ),
            models.UniqueConstraint(
                fields=["taken_at"],
                condition=Q(account__isnull=True),
                name="pnlsnapshot_unique_desk_hour",
            ),
        ]
        indexes = [models.Index(fields=["taken_at"], name="pnlsnapshot_taken_at")]

    def __str__(self) -> str:
        who = self.account.name if self.account_id else "desk"
        return f"{who} {self.taken_at:%Y-%m-%d %H:%M} net={_n(self.net_pnl)}"


class BotProfile(models.Model):
    """A bot is a Django user with API tokens; it sees only the accounts granted here."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bot"
    )
    accounts = models.ManyToManyField(ExchangeAccount, related_name="bots", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.user.get_username()


class AuditEntry(models.Model):
    """Append-only trail of every change of state: who, what, before, after, why.

    No one can edit or delete it: read-only in the admin, and on PostgreSQL and SQLite a
    trigger refuses UPDATE (and DELETE on PostgreSQL). References to runs and discrepancies
    are plain ids so the state of record never imports the reconciliation app.
    """

    class ActorType(models.TextChoices):
        USER = "user", "User"
        BOT = "bot", "Bot"
        SYSTEM = "system", "System"

    class Action(models.TextChoices):
        """Every action the trail records. Written only through the typed writers in
        ``tradingstate.services.events`` (one per event family); the values are stable
        (the runbook, the console's filters and outside tools query them)."""

        ACCOUNT_CREATE = "account.create", "Account created"
        ACCOUNT_UPDATE = "account.update", "Account updated"
        ACCOUNT_ENABLE = "account.enable", "Account enabled"
        ACCOUNT_DISABLE = "account.disable", "Account disabled"
        ACCOUNT_RECOVERY_BEGIN = "account.recovery_begin", "Account recovery begun"
        ACCOUNT_AUTO_REPAIR_PAUSE = "account.auto_repair_pause", "Account auto-repair paused"
        ACCOUNT_AUTO_REPAIR_RESUME = "account.auto_repair_resume", "Account auto-repair resumed"
        BOT_CREATE = "bot.create", "Bot created"
        BOT_UPDATE = "bot.update", "Bot updated"
        ORDER_REGISTER = "order.register", "Order registered"
        ORDER_TRANSITION = "order.transition", "Order transitioned"
        FILL_RECORD = "fill.record", "Fill recorded"
        POSITION_SET = "position.set", "Position set"
        POSITION_CORRECT = "position.correct", "Position corrected"
        BALANCE_SET = "balance.set", "Balance set"
        BALANCE_CORRECT = "balance.correct", "Balance corrected"
        REPAIR_APPLY = "repair.apply", "Repair applied"
        DISCREPANCY_ACKNOWLEDGE = "discrepancy.acknowledge", "Discrepancy acknowledged"
        KILLSWITCH_ACTIVATE = "killswitch.activate", "Kill switch activated"
        KILLSWITCH_DEACTIVATE = "killswitch.deactivate", "Kill switch deactivated"
        KILLSWITCH_CANCEL_OPEN_ORDERS = (
            "killswitch.cancel_open_orders",
            "Kill switch cancelled open orders",
        )
        PAPER_ORDER_PLACE = "paper.order_place", "Paper venue: order placed"
        PAPER_ORDER_CANCEL = "paper.order_cancel", "Paper venue: order cancelled"
        PAPER_TRADE = "paper.trade", "Paper venue: trade executed"
        PAPER_MARK_SET = "paper.mark_set", "Paper venue: mark price set"
        PAPER_STAFF_EDIT = "paper.staff_edit", "Paper venue: row edited by staff"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_type = models.CharField(max_length=8, choices=ActorType.choices)
    actor_name = models.CharField(max_length=150)
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True, db_index=True)
    action = models.CharField(max_length=64, choices=Action.choices, db_index=True)
    account = models.ForeignKey(
        ExchangeAccount,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_entries",
    )
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    # partial indexes (Meta): most rows (bots', staff's) have neither
    run_id = models.BigIntegerField(null=True, blank=True)
    discrepancy_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
            models.Index(
                fields=["run_id"], name="audit_run", condition=models.Q(run_id__isnull=False)
            ),
            models.Index(
                fields=["discrepancy_id"],
                name="audit_discrepancy",
                condition=models.Q(discrepancy_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S %z} {self.actor_name} {self.action}"


# --- The paper venue ---------------------------------------------------------------------
# A simulated exchange whose state lives in these tables (editable in the admin), so staff
# and the demo can reproduce desync with no network. It is the *exchange's* side: the
# reconciler reads it through ``tradingstate.exchanges.paper.PaperExchange``.


class PaperOrder(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed (filled)"
        CANCELED = "canceled", "Canceled"
        EXPIRED = "expired", "Expired"
        REJECTED = "rejected", "Rejected"

    account = models.ForeignKey(
        ExchangeAccount, on_delete=models.CASCADE, related_name="paper_orders"
    )
    exchange_order_id = models.CharField(max_length=64)
    client_order_id = models.CharField(max_length=64, blank=True)
    symbol = models.CharField(max_length=64)
    side = models.CharField(max_length=4, choices=Order.Side.choices)
    type = models.CharField(max_length=20, choices=Order.Type.choices, default=Order.Type.LIMIT)
    amount = AmountField()
    price = AmountField(null=True, blank=True)
    filled = AmountField(default=Decimal("0"))
    average = AmountField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account", "-id"]
        verbose_name = "paper venue order"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "exchange_order_id"], name="paperorder_unique_id"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="paperorder_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(filled__gte=0) & Q(filled__lte=F("amount")),
                name="paperorder_filled_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.exchange_order_id} {self.client_order_id} [{self.status}]"


class PaperPosition(models.Model):
    account = models.ForeignKey(
        ExchangeAccount, on_delete=models.CASCADE, related_name="paper_positions"
    )
    symbol = models.CharField(max_length=64)
    qty = AmountField(default=Decimal("0"), help_text="Signed: long > 0, short < 0.")
    entry_price = AmountField(null=True, blank=True)

    class Meta:
        ordering = ["account", "symbol"]
        verbose_name = "paper venue position"
        constraints = [
            models.UniqueConstraint(fields=["account", "symbol"], name="paperposition_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {_n(self.qty)}"


class PaperBalance(models.Model):
    account = models.ForeignKey(
        ExchangeAccount, on_delete=models.CASCADE, related_name="paper_balances"
    )
    currency = models.CharField(max_length=32)
    free = AmountField(default=Decimal("0"))
    used = AmountField(default=Decimal("0"))
    total = AmountField(default=Decimal("0"))

    class Meta:
        ordering = ["account", "currency"]
        verbose_name = "paper venue balance"
        constraints = [
            models.UniqueConstraint(fields=["account", "currency"], name="paperbalance_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.currency} {_n(self.total)}"


class NotificationState(models.Model):
    """The last state notified for one alert (``event`` + ``key``): messages go out only when
    it changes (one per state change, not one per pass). Kept through pruning."""

    event = models.CharField(max_length=32)
    key = models.CharField(max_length=200)
    state = models.CharField(max_length=16)
    changed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "key"], name="notification_state_unique")
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.key}: {self.state}"


class Notification(models.Model):
    """One message to one channel, and what became of it (every send is recorded)."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        RETRYING = "retrying", "Failed, will retry"
        FAILED = "failed", "Failed (gave up)"

    OPEN_OUTCOMES = (Outcome.PENDING, Outcome.RETRYING, Outcome.SENDING)

    event = models.CharField(max_length=32)
    key = models.CharField(max_length=200)
    state = models.CharField(max_length=16)
    channel = models.CharField(max_length=64)
    title = models.CharField(max_length=250)
    body = models.TextField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["outcome", "next_attempt_at"], name="notification_due"),
            models.Index(fields=["channel", "last_attempt_at"], name="notification_channel_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.key} {self.state} -> {self.channel} [{self.outcome}]"


class PaperMarkPrice(models.Model):
    """The paper venue's mark price of one symbol: market orders fill at it, limit orders
    fill when it crosses them. Written only by ``tradingstate.services.paper`` (staff in the
    admin with a reason, ``demo``, or the seeded random walk), each change audited."""

    account = models.ForeignKey(
        ExchangeAccount, on_delete=models.CASCADE, related_name="paper_marks"
    )
    symbol = models.CharField(max_length=64)
    price = AmountField()
    walk = models.BooleanField(
        default=True, help_text="Moved by the seeded random walk when the walk is on."
    )
    # the random walk's progress: steps applied (the walk's position in its seeded sequence)
    # and the last tick applied (a tick delivered twice is applied once)
    walk_steps = models.PositiveBigIntegerField(default=0)
    walk_tick = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField()
    version = models.PositiveBigIntegerField(default=1)

    class Meta:
        ordering = ["account", "symbol"]
        verbose_name = "paper venue mark price"
        constraints = [
            models.UniqueConstraint(fields=["account", "symbol"], name="papermark_unique"),
            models.CheckConstraint(condition=Q(price__gt=0), name="papermark_price_gt_0"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {_n(self.price)}"


class PaperTrade(models.Model):
    """One execution on the paper venue (what a real venue's trade list returns)."""

    class Liquidity(models.TextChoices):
        MAKER = "maker", "Maker"
        TAKER = "taker", "Taker"

    account = models.ForeignKey(
        ExchangeAccount, on_delete=models.CASCADE, related_name="paper_trades"
    )
    trade_id = models.CharField(max_length=64)
    paper_order = models.ForeignKey(
        PaperOrder, on_delete=models.CASCADE, related_name="trades", null=True, blank=True
    )
    exchange_order_id = models.CharField(max_length=64)
    client_order_id = models.CharField(max_length=64, blank=True)
    symbol = models.CharField(max_length=64)
    side = models.CharField(max_length=4, choices=Order.Side.choices)
    quantity = AmountField()
    price = AmountField()
    fee = AmountField(default=Decimal("0"))
    fee_currency = models.CharField(max_length=32, blank=True)
    liquidity = models.CharField(max_length=5, choices=Liquidity.choices)
    executed_at = models.DateTimeField()

    class Meta:
        ordering = ["account", "executed_at", "id"]
        verbose_name = "paper venue trade"
        constraints = [
            models.UniqueConstraint(fields=["account", "trade_id"], name="papertrade_unique_id"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="papertrade_quantity_gt_0"),
            models.CheckConstraint(condition=Q(price__gte=0), name="papertrade_price_gte_0"),
        ]
        indexes = [
            models.Index(fields=["account", "executed_at"], name="papertrade_account_time"),
            models.Index(fields=["account", "client_order_id"], name="papertrade_account_coid"),
        ]

    def __str__(self) -> str:
        return f"{self.trade_id} {self.side} {_n(self.quantity)}@{_n(self.price)}"


# --- Bookkeeping of the API ----------------------------------------------------------------
class RateCounter(models.Model):
    """The bot rate limit's counts when no Redis is configured: one row per bot (``key``),
    this window's count and the previous window's, updated by one upsert per request
    (``tradingstate.db.throttle``). Created by ``migrate``: no extra step. UNLOGGED on
    PostgreSQL (migration 0012): no WAL flush per request; a crash resets the counts."""

    key = models.CharField(max_length=100, primary_key=True)
    period_index = models.BigIntegerField()
    current = models.BigIntegerField(default=0)
    previous = models.BigIntegerField(default=0)
    allowed = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.key} {self.current}/{self.previous}"
