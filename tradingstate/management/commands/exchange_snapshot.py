"""``exchange_snapshot --account NAME``: the runbook's step 2.

The exchange's open orders, positions (with the entry price and unrealized P&L at the venue's
mark), balances and recent trades (issue 14: since the account's trade watermark less
the overlap, else the last ``--trades-hours``) beside the local values and fills; the
differences are marked ``!=`` (``~`` = within tolerance; a trade unknown locally is a
``missing_fill``, one that differs a ``fill_mismatch``). A failed fetch prints
``error: <class>: <message>`` and the command exits non-zero (a mark price the venue cannot
give is not a failure: the stored one is shown, marked STALE).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from tradingstate.exchanges import adapter_for
from tradingstate.exchanges.base import ExchangeError
from tradingstate.exchanges.snapshot import (
    LocalFill,
    LocalOrder,
    compare_balances,
    compare_orders,
    compare_positions,
    compare_trades,
    fmt,
    unrealized_pnl,
)
from tradingstate.models import (
    Balance,
    ExchangeAccount,
    Fill,
    Instrument,
    MarkPrice,
    Order,
    Position,
)

UNKNOWN_ACCOUNT = "unknown account {name!r}; known accounts: {known}"


class Command(BaseCommand):
    help = "Show the exchange's open orders, positions and balances beside the local values."

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, help="ExchangeAccount name")
        parser.add_argument(
            "--trades-hours",
            type=int,
            default=24,
            help="Trades of the last N hours when no pass has read the account's trades yet",
        )

    def handle(self, *args, account: str, trades_hours: int = 24, **options):
        acct = ExchangeAccount.objects.filter(name=account).first()
        if acct is None:
            known = ", ".join(ExchangeAccount.objects.values_list("name", flat=True)) or "(none)"
            raise CommandError(UNKNOWN_ACCOUNT.format(name=account, known=known))
        try:
            adapter = adapter_for(acct)
        except ExchangeError as exc:
            raise CommandError(_error_line(exc)) from None
        errors: list[str] = []
        self.stdout.write(
            f"Exchange snapshot: account {acct.name} ({acct.exchange} {acct.market_type})"
        )
        try:
            self._orders(acct, adapter, errors)
            self._positions(acct, adapter, errors)
            self._balances(acct, adapter, errors)
            self._trades(acct, adapter, errors, trades_hours)
        finally:
            adapter.close()
        if errors:
            raise CommandError("\n".join(errors))

    # --- sections -------------------------------------------------------------------------
    def _fetch(self, call, errors: list[str]):
        try:
            result = call()
        except ExchangeError as exc:
            errors.append(_error_line(exc))
            self.stdout.write(f"  FETCH FAILED: {_error_line(exc)}")
            return None
        if not result.complete:
            errors.append(f"error: incomplete: {result.note}")
            self.stdout.write(f"  INCOMPLETE: {result.note}")
        return result

    def _orders(self, acct, adapter, errors):
        self.stdout.write("\nOpen orders")
        result = self._fetch(adapter.fetch_open_orders, errors)
        if result is None:
            return
        local = [
            LocalOrder(o.client_order_id, o.exchange_order_id, o.symbol, o.side, o.status,
                       o.quantity, o.filled_qty)
            for o in Order.objects.filter(account=acct).filter(
                status__in=Order.ACTIVE_STATUSES
            ) | Order.objects.filter(
                account=acct, client_order_id__in=[x.client_order_id for x in result.items]
            )
        ]  # fmt: skip
        header = ("", "client_order_id", "exchange_id", "symbol", "side", "exchange",
                  "amount", "filled", "local", "quantity", "filled", "note")  # fmt: skip
        rows = [
            (r.mark, r.client_order_id or "-", r.exchange_order_id or "-", r.symbol, r.side,
             r.exchange_status or "-", fmt(r.exchange_amount), fmt(r.exchange_filled),
             r.local_status or "-", fmt(r.local_quantity), fmt(r.local_filled), r.note)
            for r in compare_orders(result.items, local)
        ]  # fmt: skip
        self._table(header, rows)

    def _positions(self, acct, adapter, errors):
        self.stdout.write("\nPositions (signed; entry price and unrealized P&L at the mark)")
        result = self._fetch(adapter.fetch_positions, errors)
        if result is None:
            return
        rows_local = Position.objects.filter(account=acct).values_list(
            "symbol", "qty", "entry_price"
        )
        local = {symbol: qty for symbol, qty, _ in rows_local}
        local_entry = {symbol: entry for symbol, _, entry in rows_local}
        remote_entry = {p.symbol: p.entry_price for p in result.items}
        steps = dict(Instrument.objects.filter(account=acct).values_list("symbol", "amount_step"))
        compared = compare_positions(result.items, local, steps)
        marks, note = self._marks(acct, adapter, [r.key for r in compared])
        rows = []
        for r in compared:
            mark = marks.get(r.key)
            price = mark[0] if mark else None
            rows.append(
                (r.mark, r.key, fmt(r.exchange), fmt(r.local),
                 fmt(remote_entry.get(r.key)), fmt(local_entry.get(r.key)),
                 (fmt(price) + (" STALE" if mark and mark[1] else "")) if mark else "-",
                 fmt(unrealized_pnl(r.exchange, remote_entry.get(r.key), price)),
                 fmt(unrealized_pnl(r.local, local_entry.get(r.key), price)))
            )  # fmt: skip
        header = ("", "symbol", "exchange", "local", "exchange_entry", "local_entry", "mark",
                  "exchange_unrealized", "local_unrealized")  # fmt: skip
        self._table(header, rows)
        if note:
            self.stdout.write(f"  marks: {note}")

    def _marks(self, acct, adapter, symbols):
        """The venue's prices now; if it cannot say, the stored ones (flagged stale)."""
        if not symbols:
            return {}, ""
        try:
            result = adapter.fetch_mark_prices(symbols)
            live = {p.symbol: (p.price, False) for p in result.items}
            if result.complete:
                return live, ""
            note = f"incomplete: {result.note}"
        except (ExchangeError, NotImplementedError) as exc:
            live, note = {}, f"not fetched ({type(exc).__name__}: {exc})"
        stored = {
            m.symbol: (m.price, True)
            for m in MarkPrice.objects.filter(account=acct, symbol__in=symbols)
            if m.symbol not in live
        }
        return {**stored, **live}, note + "; stored prices shown, marked STALE"

    def _balances(self, acct, adapter, errors):
        self.stdout.write("\nBalances (total)")
        result = self._fetch(adapter.fetch_balances, errors)
        if result is None:
            return
        local = {
            b.currency: (b.free, b.used, b.total) for b in Balance.objects.filter(account=acct)
        }
        rows = [
            (r.mark, r.key, fmt(r.exchange), fmt(r.local), r.exchange_detail, r.local_detail)
            for r in compare_balances(result.items, local, acct.tolerance_for)
        ]
        self._table(("", "currency", "exchange", "local", "exchange detail", "local detail"), rows)

    def _trades(self, acct, adapter, errors, hours: int):
        now = timezone.now()
        if acct.fills_watermark_at is not None:
            since = acct.fills_watermark_at - timedelta(
                seconds=settings.TRADINGSTATE.fill_overlap_seconds
            )
        else:
            since = now - timedelta(hours=hours)
        self.stdout.write(f"\nTrades since {since:%Y-%m-%d %H:%M:%S} UTC (beside local fills)")
        try:
            policy = adapter.trade_history_policy()
        except NotImplementedError:
            self.stdout.write("  (the venue lists no trades)")
            return
        symbols = None
        if policy.symbol_required:
            symbols = sorted(
                set(Instrument.objects.filter(account=acct).values_list("symbol", flat=True))
                | set(Position.objects.filter(account=acct).values_list("symbol", flat=True))
                | set(
                    Order.objects.filter(
                        account=acct, status__in=Order.ACTIVE_STATUSES
                    ).values_list("symbol", flat=True)
                )
            )
        result = self._fetch(lambda: adapter.fetch_my_trades(since, symbols), errors)
        if result is None:
            return
        ids = sorted({t.trade_id for t in result.items})
        local = {
            (f.symbol, f.trade_id): LocalFill(
                f.symbol,
                f.trade_id,
                f.order.client_order_id if f.order_id else "",
                f.quantity,
                f.price,
                f.fee,
                f.inferred,
            )
            for f in Fill.objects.filter(account=acct, trade_id__in=ids).select_related("order")
        }
        header = ("", "trade_id", "symbol", "side", "exchange_qty", "price", "fee",
                  "local_qty", "local_price", "local_order", "note")  # fmt: skip
        rows = [
            (r.mark, r.trade_id, r.symbol, r.side, fmt(r.exchange_qty), fmt(r.exchange_price),
             r.exchange_fee, fmt(r.local_qty), fmt(r.local_price), r.local_order, r.note)
            for r in compare_trades(result.items, local)
        ]  # fmt: skip
        self._table(header, rows)
        inferred = Fill.objects.filter(account=acct, inferred=True, executed_at__gte=since).count()
        if inferred:
            self.stdout.write(f"  local fills inferred (no venue trade) since then: {inferred}")

    def _table(self, header: tuple, rows: list[tuple]) -> None:
        if not rows:
            self.stdout.write("  (none on either side)")
            return
        widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            line = "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            )
            self.stdout.write(("  " + line).rstrip())


def _error_line(exc: ExchangeError) -> str:
    return f"error: {type(exc).__name__}: {exc}"
