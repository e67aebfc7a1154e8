"""PaperExchange: the simulated venue whose state lives in the PaperOrder/PaperPosition/
PaperBalance/PaperTrade/PaperMarkPrice tables (editable in the admin), so bots can trade
with no network and desync can be reproduced.

Reads only, except ``cancel_order``, which is the venue cancelling its own order. Placing
and matching are ``tradingstate.services.paper`` (driven by the bots' order transitions,
mark edits and the random walk); this adapter is how the reconciler sees the result.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Q

from tradingstate.amounts import CONTEXT
from tradingstate.exchanges.base import (
    CANCELED,
    MARK,
    ExchangeAdapter,
    ExchangeBalance,
    ExchangeMarkPrice,
    ExchangeOrder,
    ExchangePosition,
    ExchangeTrade,
    FetchResult,
    InstrumentInfo,
    OrderNotFound,
    TradeHistoryPolicy,
)
from tradingstate.models import (
    Instrument,
    PaperBalance,
    PaperMarkPrice,
    PaperOrder,
    PaperPosition,
    PaperTrade,
)

ORDER_NOT_FOUND = "paper: no order {order} on account {account}"
ORDER_NOT_OPEN = "paper: order {order} on account {account} is {status}, not open"

NAIVE_SINCE = "since must be a timezone-aware datetime (got {since!r})"
NO_MARK = "paper: no mark price for {symbols}"
# The paper venue keeps every trade; the first pass looks back a week (like the real venues).
TRADE_POLICY = TradeHistoryPolicy(
    max_lookback=None,
    default_lookback=timedelta(days=7),
    window=None,
    symbol_required=False,
    page_limit=1000,
    trade_id_scope="account",
    source="paper venue: every trade is kept in the PaperTrade table",
)

# Quantity steps for symbols seen on the venue but absent from the Instrument table.
DEFAULT_AMOUNT_STEPS = {"BTC": Decimal("0.001"), "ETH": Decimal("0.01")}
FALLBACK_AMOUNT_STEP = Decimal("0.001")


def _split_symbol(symbol: str) -> tuple[str, str, str]:
    """``BTC/USDT:USDT`` -> (BTC, USDT, USDT); ``BTC/USDT`` -> (BTC, USDT, '')."""
    pair, _, settle = symbol.partition(":")
    base, _, quote = pair.partition("/")
    return base, quote, settle


class PaperExchange(ExchangeAdapter):
    def __init__(self, account):
        self.account = account

    # --- the interface --------------------------------------------------------------------
    def fetch_open_orders(self) -> FetchResult[ExchangeOrder]:
        rows = PaperOrder.objects.filter(account=self.account, status=PaperOrder.Status.OPEN)
        orders = [self._order(row) for row in rows.order_by("id")]
        return FetchResult(orders, complete=True, fetched_at=_now())

    def fetch_positions(self) -> FetchResult[ExchangePosition]:
        if not self.account.is_derivative:
            return FetchResult([], complete=True, note="spot account", fetched_at=_now())
        rows = PaperPosition.objects.filter(account=self.account).exclude(qty=Decimal(0))
        positions = [
            ExchangePosition(symbol=row.symbol, qty=row.qty, entry_price=row.entry_price)
            for row in rows.order_by("symbol")
        ]
        return FetchResult(positions, complete=True, fetched_at=_now())

    def fetch_balances(self) -> FetchResult[ExchangeBalance]:
        rows = PaperBalance.objects.filter(account=self.account).order_by("currency")
        balances = [
            ExchangeBalance(currency=row.currency, free=row.free, used=row.used, total=row.total)
            for row in rows
        ]
        return FetchResult(balances, complete=True, fetched_at=_now())

    def fetch_order(
        self, client_order_id: str, exchange_order_id: str, symbol: str
    ) -> ExchangeOrder:
        return self._order(self._find(client_order_id, exchange_order_id))

    def cancel_order(self, client_order_id: str, exchange_order_id: str, symbol: str) -> None:
        row = self._find(client_order_id, exchange_order_id)
        updated = PaperOrder.objects.filter(pk=row.pk, status=PaperOrder.Status.OPEN).update(
            status=PaperOrder.Status.CANCELED, updated_at=_now()
        )
        if not updated:
            raise OrderNotFound(
                ORDER_NOT_OPEN.format(
                    order=exchange_order_id or client_order_id,
                    account=self.account.name,
                    status=row.status,
                )
            )

    def fetch_my_trades(
        self, since: datetime, symbols: list[str] | None = None
    ) -> FetchResult[ExchangeTrade]:
        if not isinstance(since, datetime) or since.tzinfo is None:
            raise ValueError(NAIVE_SINCE.format(since=since))
        rows = PaperTrade.objects.filter(account=self.account, executed_at__gte=since)
        if symbols is not None:
            rows = rows.filter(symbol__in=list(symbols))
        trades = [
            ExchangeTrade(
                trade_id=row.trade_id,
                exchange_order_id=row.exchange_order_id,
                symbol=row.symbol,
                side=row.side,
                quantity=row.quantity,
                price=row.price,
                fee=row.fee,
                fee_currency=row.fee_currency,
                executed_at=row.executed_at,
                client_order_id=row.client_order_id,
                liquidity=row.liquidity,
            )
            for row in rows.order_by("executed_at", "id")
        ]
        return FetchResult(trades, complete=True, fetched_at=_now(), covered_from=since)

    def fetch_mark_prices(self, symbols: list[str]) -> FetchResult[ExchangeMarkPrice]:
        wanted = sorted(set(symbols))
        rows = PaperMarkPrice.objects.filter(account=self.account, symbol__in=wanted)
        found = {row.symbol: row for row in rows}
        items = [
            ExchangeMarkPrice(symbol=s, price=found[s].price, time=found[s].updated_at, source=MARK)
            for s in wanted
            if s in found
        ]
        missing = [s for s in wanted if s not in found]
        note = NO_MARK.format(symbols=", ".join(missing)) if missing else ""
        return FetchResult(items, complete=not missing, note=note, fetched_at=_now())

    def trade_history_policy(self) -> TradeHistoryPolicy:
        return TRADE_POLICY

    def load_instruments(self) -> list[InstrumentInfo]:
        known = {i.symbol: i for i in Instrument.objects.filter(account=self.account)}
        symbols = set(known)
        symbols.update(
            PaperOrder.objects.filter(account=self.account).values_list("symbol", flat=True)
        )
        symbols.update(
            PaperPosition.objects.filter(account=self.account).values_list("symbol", flat=True)
        )
        symbols.update(
            PaperMarkPrice.objects.filter(account=self.account).values_list("symbol", flat=True)
        )
        instruments = []
        for symbol in sorted(symbols):
            row = known.get(symbol)
            if row is not None:
                instruments.append(
                    InstrumentInfo(
                        symbol=row.symbol,
                        base=row.base,
                        quote=row.quote,
                        settle=row.settle,
                        market_type=row.market_type,
                        amount_step=row.amount_step,
                        price_step=row.price_step,
                        contract_size=row.contract_size,
                        active=row.active,
                    )
                )
                continue
            base, quote, settle = _split_symbol(symbol)
            instruments.append(
                InstrumentInfo(
                    symbol=symbol,
                    base=base,
                    quote=quote,
                    settle=settle,
                    market_type=self.account.market_type if settle else "spot",
                    amount_step=DEFAULT_AMOUNT_STEPS.get(base, FALLBACK_AMOUNT_STEP),
                )
            )
        return instruments

    # --- helpers --------------------------------------------------------------------------
    def _find(self, client_order_id: str, exchange_order_id: str) -> PaperOrder:
        match = Q()
        if exchange_order_id:
            match |= Q(exchange_order_id=exchange_order_id)
        if client_order_id:
            match |= Q(client_order_id=client_order_id)
        row = None
        if match:
            row = PaperOrder.objects.filter(match, account=self.account).order_by("-id").first()
        if row is None:
            raise OrderNotFound(
                ORDER_NOT_FOUND.format(
                    order=exchange_order_id or client_order_id, account=self.account.name
                )
            )
        return row

    @staticmethod
    def _order(row: PaperOrder) -> ExchangeOrder:
        status = row.status
        if status == PaperOrder.Status.CLOSED and row.filled < row.amount:
            status = CANCELED  # partially filled, then cancelled
        return ExchangeOrder(
            symbol=row.symbol,
            side=row.side,
            type=row.type,
            amount=row.amount,
            filled=row.filled,
            status=status,
            exchange_order_id=row.exchange_order_id,
            client_order_id=row.client_order_id,
            price=row.price,
            average=row.average,
            remaining=CONTEXT.subtract(row.amount, row.filled) if status == "open" else Decimal(0),
            timestamp=row.created_at,
        )


def _now() -> datetime:
    return datetime.now(tz=UTC)
