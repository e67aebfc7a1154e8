"""Reads of P&L and exposure (issue 15): the figures the API, the CLI and the console show.

One function computes each figure, and every door shows its result, so the three always
agree: :func:`pnl_reports` (per account: positions with entry, mark, realized, unrealized,
fees, net, and totals), :func:`exposure_report` (per asset, account and venue, desk-wide),
:func:`pnl_history` (the hourly snapshots). Each reads a fixed number of statements whatever
the number of positions or accounts: accounts (when given as a queryset), positions,
instruments, marks, and for ``since`` the fills since then.

Rules: ``tradingstate.rules.valuation`` (what a position is worth at a mark) and
``tradingstate.rules.exposure``. Quantities are the Position rows' (base units), so the
contract size given to the rules is 1. A figure that needs a price nobody has is None (null
in the API, ``n/a`` in the CLI and console), never zero; a total is None when any of its
parts is, and the positions or assets responsible are listed (``incomplete``, ``excluded``).
A stale price is used and flagged (``mark_stale``; ``stale``).

Prices: a position's instrument is priced at its account's MarkPrice for that symbol; if
there is none and the instrument is quoted in the valuation currency, at its base asset's
price. An asset (a balance's currency, a fee currency, a quote currency) is priced in the
valuation currency at the freshest MarkPrice of ``ASSET/VAL`` or ``ASSET/VAL:VAL`` on any
account.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, localcontext

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from tradingstate.models import (
    Balance,
    ExchangeAccount,
    Fill,
    Instrument,
    MarkPrice,
    PnlSnapshot,
    Position,
)
from tradingstate.rules import accounting
from tradingstate.rules import exposure as exposure_rules
from tradingstate.rules.marks import asset_symbols, mark_is_stale, symbol_parts
from tradingstate.rules.money import CONTEXT, ZERO, Mark
from tradingstate.rules.valuation import valuation
from tradingstate.services.accounting import position_accounting_state, position_terms


@dataclass(frozen=True)
class MarkView:
    symbol: str
    price: Decimal
    time: datetime
    source: str
    stale: bool

    @property
    def mark(self) -> Mark:
        return Mark(self.price, self.stale)


@dataclass(frozen=True)
class PnlLine:
    """One position as every door shows it (the API's ``positions[]`` item, plus flags)."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal | None
    mark_price: Decimal | None
    mark_time: datetime | None
    mark_stale: bool
    realized_pnl: Decimal | None
    unrealized_pnl: Decimal | None
    fees: Decimal | None
    net_pnl: Decimal | None
    mark_source: str = ""
    inferred_fills: int = 0
    fees_unconverted: tuple[tuple[str, Decimal], ...] = ()

    @property
    def complete(self) -> bool:
        return self.net_pnl is not None


@dataclass(frozen=True)
class PnlTotals:
    realized_pnl: Decimal | None
    unrealized_pnl: Decimal | None
    fees: Decimal | None
    net_pnl: Decimal | None
    incomplete: tuple[str, ...] = ()  # positions with a figure that could not be valued
    stale: tuple[str, ...] = ()  # positions valued with a stale price


@dataclass(frozen=True)
class PnlReport:
    account: str
    valuation_currency: str
    as_of: datetime
    since: datetime | None
    positions: tuple[PnlLine, ...]
    totals: PnlTotals


@dataclass(frozen=True)
class ExposureReport:
    as_of: datetime
    valuation_currency: str
    exposure: exposure_rules.Exposure
    accounts: tuple[str, ...] = ()

    @property
    def assets(self) -> tuple[exposure_rules.AssetExposure, ...]:
        return self.exposure.assets

    @property
    def net_notional(self) -> Decimal | None:
        totals = self.exposure.totals
        return totals.net_notional if totals.complete else None

    @property
    def gross_notional(self) -> Decimal | None:
        totals = self.exposure.totals
        return totals.gross_notional if totals.complete else None

    @property
    def excluded_assets(self) -> tuple[str, ...]:
        return self.exposure.totals.excluded_assets

    @property
    def stale_assets(self) -> tuple[str, ...]:
        return self.exposure.totals.stale_assets


@dataclass
class _Prices:
    """The marks read for one report: per (account id, symbol), and per asset."""

    instrument: dict[tuple[int, str], MarkView] = field(default_factory=dict)
    asset: dict[str, MarkView] = field(default_factory=dict)
    _asset_marks: dict[str, Mark] | None = None  # built once, when every mark is read
    _fee_marks: dict[str, Mark] | None = None

    def for_position(self, account_id: int, symbol: str, quote: str, base: str, currency: str):
        view = self.instrument.get((account_id, symbol))
        if view is None and quote == currency:
            view = self.asset.get(base)  # the base asset's own price, in the same currency
        return view

    def asset_marks(self) -> dict[str, Mark]:
        if self._asset_marks is None:
            self._asset_marks = {asset: view.mark for asset, view in self.asset.items()}
        return self._asset_marks

    def fee_marks(self, currency: str) -> dict[str, Mark]:
        """The asset marks, and the valuation currency at 1: a fee paid in it needs no mark
        (a fee in USDT on ETH/BTC was "unconverted", the net P&L unknown)."""
        if self._fee_marks is None:
            self._fee_marks = {**self.asset_marks(), currency: Mark(Decimal(1), False)}
        return self._fee_marks


def _settings():
    cfg = settings.TRADINGSTATE
    return cfg.valuation_currency, cfg.mark_price_max_age_seconds


def _read_prices(
    account_ids: Iterable[int], assets: Iterable[str], currency: str, now: datetime
) -> _Prices:
    """One statement: every mark of the accounts, and every mark that prices an asset."""
    _, max_age = _settings()
    wanted_assets = {a.upper() for a in assets if a and a.upper() != currency}
    symbols = {s: a for a in wanted_assets for s in asset_symbols(a, currency)}
    prices = _Prices()
    rows = MarkPrice.objects.filter(
        Q(account_id__in=list(account_ids)) | Q(symbol__in=sorted(symbols))
    ).values_list("account_id", "symbol", "price", "time", "source", "stale")
    for account_id, symbol, price, time, source, stale in rows:
        view = MarkView(
            symbol=symbol,
            price=price,
            time=time,
            source=source,
            stale=mark_is_stale(stale=stale, time=time, now=now, max_age_seconds=max_age),
        )
        prices.instrument[(account_id, symbol)] = view
        asset = symbols.get(symbol)
        if asset is not None:
            best = prices.asset.get(asset)
            if best is None or (not view.stale, view.time) > (not best.stale, best.time):
                prices.asset[asset] = view
    return prices


def _instruments(account_ids: Iterable[int]) -> dict[tuple[int, str], Instrument]:
    return {
        (i.account_id, i.symbol): i for i in Instrument.objects.filter(account_id__in=account_ids)
    }


def _period_by_position(
    account_ids: list[int], since: datetime, terms_of
) -> dict[tuple[int, str], accounting.Period]:
    """The realized P&L and fees of the fills executed at or after ``since``, per position,
    from each fill's stored share (``Fill.realized_pnl``, ``Fill.fee_quote``): one statement."""
    rows = Fill.objects.filter(account_id__in=account_ids, executed_at__gte=since).values_list(
        "account_id", "symbol", "realized_pnl", "fee_quote", "fee", "fee_currency"
    )
    effects: dict[tuple[int, str], list[accounting.FillEffect]] = defaultdict(list)
    for account_id, symbol, realized, fee_quote, fee, fee_currency in rows:
        terms = terms_of(account_id, symbol)
        currency = (fee_currency or "").upper()
        other = ()
        if fee and currency not in (terms.base.upper(), terms.quote.upper()):
            other = ((currency, fee),)
        effects[(account_id, symbol)].append(
            accounting.FillEffect(realized_pnl=realized, fees_quote=fee_quote, fees_other=other)
        )
    return {key: accounting.period(items) for key, items in effects.items()}


def _line(position: Position, terms, view: MarkView | None, prices: _Prices, currency, since):
    state, unpriced = position_accounting_state(position)
    quote = terms.quote.upper()
    rate = None
    if quote != currency:
        quote_view = prices.asset.get(quote)
        rate = quote_view.mark if quote_view is not None else (None, False)
    value = valuation(
        state,
        view.mark if view is not None else None,
        Decimal(1),
        prices.fee_marks(currency),
        quote_rate=rate,
        since=since,
    )
    if unpriced:  # held without an entry price: what it gained is unknown
        value = replace(value, unrealized_pnl=None, net_pnl=None)
    return PnlLine(
        symbol=position.symbol,
        qty=position.qty,
        avg_entry_price=position.entry_price if position.qty else None,
        mark_price=view.price if view is not None else None,
        mark_time=view.time if view is not None else None,
        mark_stale=value.stale or (view is not None and view.stale),
        realized_pnl=value.realized_pnl,
        unrealized_pnl=value.unrealized_pnl,
        fees=value.fees,
        net_pnl=value.net_pnl,
        mark_source=view.source if view is not None else "",
        inferred_fills=value.inferred_fills,
        fees_unconverted=value.fees_unconverted,
    )


def _sum(values: list[Decimal | None]) -> Decimal | None:
    if any(v is None for v in values):
        return None
    with localcontext(CONTEXT):
        return sum(values, ZERO)


def pnl_totals(lines: Iterable[PnlLine]) -> PnlTotals:
    lines = list(lines)
    realized = _sum([line.realized_pnl for line in lines])
    unrealized = _sum([line.unrealized_pnl for line in lines])
    fees = _sum([line.fees for line in lines])
    net = None
    if None not in (realized, unrealized, fees):
        with localcontext(CONTEXT):
            net = realized + unrealized - fees
    return PnlTotals(
        realized_pnl=realized,
        unrealized_pnl=unrealized,
        fees=fees,
        net_pnl=net,
        incomplete=tuple(line.symbol for line in lines if not line.complete),
        stale=tuple(line.symbol for line in lines if line.mark_stale),
    )


def pnl_reports(
    accounts: Iterable[ExchangeAccount] | QuerySet[ExchangeAccount],
    *,
    since: datetime | None = None,
    now: datetime | None = None,
) -> dict[str, PnlReport]:
    """``{account name: PnlReport}``: three statements (four with ``since``) for any number
    of accounts and positions (one more when ``accounts`` is a queryset)."""
    now = now or timezone.now()
    currency, _ = _settings()
    accounts = list(accounts)
    ids = [a.pk for a in accounts]
    positions = list(Position.objects.filter(account_id__in=ids).order_by("account_id", "symbol"))
    instruments = _instruments(ids)

    def terms_of(account_id: int, symbol: str):
        return position_terms(symbol, instruments.get((account_id, symbol)))

    assets = set()
    for p in positions:
        terms = terms_of(p.account_id, p.symbol)
        assets.update({terms.base, terms.quote, *(p.fees_other or {})})
    periods = _period_by_position(ids, since, terms_of) if since is not None else {}
    if since is not None:  # fees paid since then in other currencies need their prices too
        assets.update(c for period in periods.values() for c, _ in period.fees_other)
    prices = _read_prices(ids, assets, currency, now)
    by_account: dict[int, list[PnlLine]] = defaultdict(list)
    for p in positions:
        terms = terms_of(p.account_id, p.symbol)
        view = prices.for_position(
            p.account_id, p.symbol, terms.quote.upper(), terms.base.upper(), currency
        )
        period = None
        if since is not None:
            period = periods.get((p.account_id, p.symbol), accounting.Period())
        by_account[p.account_id].append(_line(p, terms, view, prices, currency, period))
    return {
        a.name: PnlReport(
            account=a.name,
            valuation_currency=currency,
            as_of=now,
            since=since,
            positions=tuple(by_account.get(a.pk, ())),
            totals=pnl_totals(by_account.get(a.pk, ())),
        )
        for a in accounts
    }


def pnl_report(
    account: ExchangeAccount, *, since: datetime | None = None, now: datetime | None = None
) -> PnlReport:
    """One account's P&L (the API's ``/pnl/``, ``manage.py pnl``, the console's panel)."""
    return pnl_reports([account], since=since, now=now)[account.name]


def exposure_report(
    accounts: Iterable[ExchangeAccount] | QuerySet[ExchangeAccount],
    *,
    now: datetime | None = None,
) -> ExposureReport:
    """Net and gross exposure per asset over ``accounts`` (a bot's granted accounts, or all
    for staff), with per-account and per-venue breakdowns: derivative accounts' positions
    and spot accounts' balances, valued at mark. Four statements for any number of accounts
    (five when ``accounts`` is a queryset)."""
    now = now or timezone.now()
    currency, _ = _settings()
    accounts = list(accounts)
    by_id = {a.pk: a for a in accounts}
    derivative = [a.pk for a in accounts if a.is_derivative]
    spot = [a.pk for a in accounts if not a.is_derivative]
    positions = list(
        Position.objects.filter(account_id__in=derivative)
        .exclude(qty=0)
        .values_list("account_id", "symbol", "qty")
    )
    balances = list(
        Balance.objects.filter(account_id__in=spot)
        .exclude(total=0)
        .values_list("account_id", "currency", "total")
    )
    instruments = _instruments(derivative) if positions else {}
    parts = {}
    assets = {c for _, c, _ in balances}
    for account_id, symbol, _ in positions:
        instrument = instruments.get((account_id, symbol))
        base, quote, _settle = symbol_parts(symbol)
        if instrument is not None:
            base, quote = instrument.base.upper(), instrument.quote.upper()
        parts[(account_id, symbol)] = (base, quote)
        assets.update((base, quote))
    prices = _read_prices(by_id, assets, currency, now)
    position_lines = []
    for account_id, symbol, qty in positions:
        account = by_id[account_id]
        base, quote = parts[(account_id, symbol)]
        view = prices.instrument.get((account_id, symbol))
        position_lines.append(
            exposure_rules.PositionLine(
                account=account.name,
                venue=account.exchange,
                symbol=symbol,
                base=base,
                quote=quote,
                qty=qty,
                mark=view.mark if view is not None else None,
            )
        )
    balance_lines = [
        exposure_rules.BalanceLine(
            account=by_id[account_id].name,
            venue=by_id[account_id].exchange,
            currency=currency_code,
            total=total,
        )
        for account_id, currency_code, total in balances
    ]
    result = exposure_rules.exposure(
        position_lines, balance_lines, prices.asset_marks(), valuation_currency=currency
    )
    return ExposureReport(
        as_of=now,
        valuation_currency=currency,
        exposure=result,
        accounts=tuple(a.name for a in accounts),
    )


def account_exposure_totals(report: ExposureReport) -> dict[str, tuple]:
    """``{account: (net_notional, gross_notional, stale)}`` summed over the report's assets
    (None when any of the account's lines has no price)."""
    out: dict[str, list] = {}
    for asset in report.assets:
        for name, share in asset.by_account.items():
            row = out.setdefault(name, [ZERO, ZERO, False])
            with localcontext(CONTEXT):
                row[0] = (
                    None
                    if row[0] is None or share.net_notional is None
                    else row[0] + share.net_notional
                )
                row[1] = (
                    None
                    if row[1] is None or share.gross_notional is None
                    else row[1] + share.gross_notional
                )
            row[2] = row[2] or share.mark_stale
    return {name: tuple(values) for name, values in out.items()}


def pnl_history(
    *,
    account: ExchangeAccount | None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[PnlSnapshot]:
    """The hourly snapshots of ``account`` (None: the desk's), newest first, within
    ``start <= taken_at <= end``."""
    qs = (
        PnlSnapshot.objects.filter(account__isnull=True)
        if account is None
        else PnlSnapshot.objects.filter(account=account)
    )
    if start is not None:
        qs = qs.filter(taken_at__gte=start)
    if end is not None:
        qs = qs.filter(taken_at__lte=end)
    return qs
