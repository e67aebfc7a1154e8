"""Exposure per asset, per account and desk-wide (issue 15 item 4). Pure: no ORM, no I/O.

:func:`exposure` takes plain lines and prices and returns the API's shape (issue 15 item 6):
``assets: [{asset, net_qty, net_notional, gross_notional, by_account}]`` and ``totals``, plus a
``by_venue`` breakdown. For one account, pass that account's lines (or read ``by_account``);
for a bot, pass the lines of its granted accounts only.

Lines
    - A :class:`PositionLine` (a derivative position) is exposure to its instrument's base asset:
      ``qty * contract_size`` units (``qty`` in contracts; pass ``contract_size=1`` for a
      quantity already in base units, as ``Position.qty`` is). One unit is priced, in the
      valuation currency, at the instrument's mark (``line.mark``, else ``marks[symbol]``, a
      price in the quote currency) times the quote currency's rate (1 when the quote is the
      valuation currency, else ``marks[quote]``); with no instrument mark, at the base asset's
      own mark ``marks[base]``.
    - A :class:`BalanceLine` (a spot balance) is exposure to its currency: ``total`` units,
      priced at 1 when it is the valuation currency, else at ``line.mark`` or ``marks[currency]``.
      The valuation currency is an asset like the others and counts in the totals.
    - Lines with zero quantity are left out. ``marks`` holds ``{symbol or asset: Mark}``; a
      key with a ``/`` is an instrument, any other an asset priced in the valuation currency.

Missing and stale prices
    A line without a usable price (absent, or not a finite price > 0) has notional None, never
    zero. Every level holding such a line (the asset, its account, its venue) reports its
    notionals as None and ``mark_missing``; its quantities still count. An asset whose notional
    is None is left out of the totals and listed in ``totals.excluded_assets``. Stale prices are
    used and flagged at every level (``mark_stale``; ``totals.stale_assets``).

Sums
    ``net_qty = sum(qty)``, ``net_notional = sum(notional)``, ``gross_notional = sum(|notional|)``
    over the lines (each position and each balance is a line), at every level. A line's notional
    is quantized once to 18 places, ROUND_HALF_EVEN (``money.q18``); sums are then exact, so the
    levels add up exactly: ``asset = sum(by_account) = sum(by_venue)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from tradingstate.rules.money import CONTEXT, ZERO, Mark, check_decimal, mark_price, mark_stale, q18

DEFAULT_VALUATION_CURRENCY = "USDT"


@dataclass(frozen=True)
class PositionLine:
    """One derivative position: ``qty`` signed contracts of ``symbol`` (base/quote)."""

    account: str
    venue: str
    symbol: str
    base: str
    quote: str
    qty: Decimal
    contract_size: Decimal = Decimal(1)
    mark: Mark | tuple | None = None  # the instrument's mark, in the quote currency

    def __post_init__(self):
        object.__setattr__(self, "qty", check_decimal(self.qty, "qty"))
        size = check_decimal(self.contract_size, "contract_size", positive=True)
        object.__setattr__(self, "contract_size", size)
        object.__setattr__(self, "base", self.base.strip().upper())
        object.__setattr__(self, "quote", self.quote.strip().upper())


@dataclass(frozen=True)
class BalanceLine:
    """One spot balance: ``total`` units of ``currency`` (signed: a borrow is negative)."""

    account: str
    venue: str
    currency: str
    total: Decimal
    mark: Mark | tuple | None = None  # the currency's price in the valuation currency

    def __post_init__(self):
        object.__setattr__(self, "total", check_decimal(self.total, "total"))
        object.__setattr__(self, "currency", self.currency.strip().upper())


@dataclass(frozen=True)
class Share:
    """One account's or one venue's part of an asset (``venue`` set for an account's)."""

    net_qty: Decimal
    net_notional: Decimal | None
    gross_notional: Decimal | None
    mark_stale: bool = False
    mark_missing: bool = False
    venue: str = ""


@dataclass(frozen=True)
class AssetExposure:
    asset: str
    net_qty: Decimal
    net_notional: Decimal | None
    gross_notional: Decimal | None
    mark_stale: bool
    mark_missing: bool
    by_account: dict[str, Share] = field(default_factory=dict)
    by_venue: dict[str, Share] = field(default_factory=dict)


@dataclass(frozen=True)
class ExposureTotals:
    """Sums over the assets with a known notional; the others are listed, never counted as 0."""

    net_notional: Decimal
    gross_notional: Decimal
    excluded_assets: tuple[str, ...] = ()
    stale_assets: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.excluded_assets


@dataclass(frozen=True)
class Exposure:
    valuation_currency: str
    assets: tuple[AssetExposure, ...]
    totals: ExposureTotals

    def asset(self, name: str) -> AssetExposure | None:
        return next((a for a in self.assets if a.asset == name.upper()), None)


@dataclass(frozen=True)
class _Valued:
    account: str
    venue: str
    asset: str
    qty: Decimal
    notional: Decimal | None
    stale: bool


def _price(
    candidates: Iterable[Mark | tuple | None],
) -> tuple[Decimal | None, bool]:
    """The first usable price among ``candidates`` and its stale flag."""
    for mark in candidates:
        price = mark_price(mark)
        if price is not None:
            return price, mark_stale(mark)
    return None, False


def _value_position(line: PositionLine, marks: Mapping, currency: str) -> _Valued:
    qty = line.qty * line.contract_size
    price, stale = _price((line.mark, marks.get(line.symbol)))
    if price is not None and line.quote != currency:
        rate, rate_stale = _price((marks.get(line.quote),))
        price = None if rate is None else price * rate
        stale = stale or rate_stale
    if price is None:
        price, stale = _price((marks.get(line.base),))
    notional = None if price is None else q18(qty * price)
    return _Valued(line.account, line.venue, line.base, qty, notional, stale)


def _value_balance(line: BalanceLine, marks: Mapping, currency: str) -> _Valued:
    if line.currency == currency:
        price, stale = Decimal(1), False
    else:
        price, stale = _price((line.mark, marks.get(line.currency)))
    notional = None if price is None else q18(line.total * price)
    return _Valued(line.account, line.venue, line.currency, line.total, notional, stale)


def _share(lines: list[_Valued], venue: str = "") -> Share:
    missing = any(v.notional is None for v in lines)
    net_qty = sum((v.qty for v in lines), ZERO)
    if missing:
        net = gross = None
    else:
        net = sum((v.notional for v in lines), ZERO)
        gross = sum((abs(v.notional) for v in lines), ZERO)
    stale = any(v.stale for v in lines)
    return Share(net_qty, net, gross, stale, missing, venue)


def _group(lines: list[_Valued], key) -> dict[str, list[_Valued]]:
    groups: dict[str, list[_Valued]] = {}
    for line in lines:
        groups.setdefault(key(line), []).append(line)
    return dict(sorted(groups.items()))


def exposure(
    positions: Iterable[PositionLine] = (),
    balances: Iterable[BalanceLine] = (),
    marks: Mapping[str, Mark | tuple] | None = None,
    valuation_currency: str = DEFAULT_VALUATION_CURRENCY,
) -> Exposure:
    """Net and gross exposure per asset, with per-account and per-venue breakdowns."""
    currency = valuation_currency.strip().upper()
    marks = {(k if "/" in k else k.upper()): v for k, v in (marks or {}).items()}
    with localcontext(CONTEXT):
        valued = [_value_position(p, marks, currency) for p in positions if p.qty != 0]
        valued += [_value_balance(b, marks, currency) for b in balances if b.total != 0]
        assets = []
        for asset, lines in _group(valued, lambda v: v.asset).items():
            whole = _share(lines)
            by_account = {
                account: _share(group, venue=group[0].venue)
                for account, group in _group(lines, lambda v: v.account).items()
            }
            by_venue = {
                venue: _share(group) for venue, group in _group(lines, lambda v: v.venue).items()
            }
            assets.append(
                AssetExposure(
                    asset=asset,
                    net_qty=whole.net_qty,
                    net_notional=whole.net_notional,
                    gross_notional=whole.gross_notional,
                    mark_stale=whole.mark_stale,
                    mark_missing=whole.mark_missing,
                    by_account=by_account,
                    by_venue=by_venue,
                )
            )
        counted = [a for a in assets if a.net_notional is not None]
        totals = ExposureTotals(
            net_notional=sum((a.net_notional for a in counted), ZERO),
            gross_notional=sum((a.gross_notional for a in counted), ZERO),
            excluded_assets=tuple(a.asset for a in assets if a.net_notional is None),
            stale_assets=tuple(a.asset for a in assets if a.mark_stale),
        )
    return Exposure(currency, tuple(assets), totals)
