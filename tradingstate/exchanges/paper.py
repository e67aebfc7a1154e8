"""PaperExchange: the simulated venue whose state lives in the PaperOrder/PaperPosition/
PaperBalance tables (editable in the admin), so desync can be reproduced with no network.

Reads only, except ``cancel_order``, which is the venue cancelling its own order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import Q

from tradingstate.exchanges.base import (
    CANCELED,
    ExchangeAdapter,
    ExchangeBalance,
    ExchangeOrder,
    ExchangePosition,
    FetchResult,
    InstrumentInfo,
    OrderNotFound,
)
from tradingstate.models import Instrument, PaperBalance, PaperOrder, PaperPosition

ORDER_NOT_FOUND = "paper: no order {order} on account {account}"
ORDER_NOT_OPEN = "paper: order {order} on account {account} is {status}, not open"

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

    def load_instruments(self) -> list[InstrumentInfo]:
        known = {i.symbol: i for i in Instrument.objects.filter(account=self.account)}
        symbols = set(known)
        symbols.update(
            PaperOrder.objects.filter(account=self.account).values_list("symbol", flat=True)
        )
        symbols.update(
            PaperPosition.objects.filter(account=self.account).values_list("symbol", flat=True)
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
            remaining=row.amount - row.filled if status == "open" else Decimal(0),
            timestamp=row.created_at,
        )


def _now() -> datetime:
    return datetime.now(tz=UTC)
