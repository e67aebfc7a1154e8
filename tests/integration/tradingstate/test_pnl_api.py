"""Issue 15 items 4-8: the P&L and exposure figures through every door (API, CLI, console)
are the same numbers; stale and missing prices flagged everywhere; ``?since=``; bots see only
their accounts; the hourly snapshots and their history; statement counts."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal as D
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from tests.api_support import (
    api_cache_table,  # noqa: F401  (session fixture)
    assert_error,
    make_bot,
    url,
)
from tests.factories import AccountFactory, BalanceFactory, OrderFactory, StaffFactory
from tradingstate.exchanges.base import ExchangeMarkPrice
from tradingstate.models import Fill, Instrument, PnlSnapshot, Position
from tradingstate.selectors.pnl import exposure_report, pnl_report
from tradingstate.services.marks import mark_prices_record
from tradingstate.services.pnl import pnl_snapshot_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]

AMOUNT = re.compile(r"^-?[0-9]{1,20}(\.[0-9]{1,18})?$")


def _marks(account, prices: dict[str, str], *, age_seconds: int = 0):
    now = timezone.now()
    mark_prices_record(
        account=account,
        asked=list(prices),
        prices=[
            ExchangeMarkPrice(s, D(p), now - timedelta(seconds=age_seconds), "mark")
            for s, p in prices.items()
        ],
        now=now,
    )


def _position(account, symbol, qty, entry=None, **figures):
    return Position.objects.create(
        account=account, symbol=symbol, qty=D(qty), entry_price=D(entry) if entry else None,
        **figures,
    )  # fmt: skip


@pytest.fixture
def desk():
    """A perpetuals account and a spot account, with fresh, stale and missing prices."""
    perp = AccountFactory(name="perp-a", exchange="bybit", market_type="swap")
    spot = AccountFactory(name="spot-b", exchange="binance", market_type="spot")
    Instrument.objects.create(
        account=perp, symbol="BTC/USDT:USDT", base="BTC", quote="USDT", settle="USDT",
        market_type="swap", contract_size=D("0.001"),
    )  # fmt: skip
    _position(perp, "BTC/USDT:USDT", "0.5", "40000", realized_pnl=D("100"), fees=D("2.5"),
              fees_other={"BNB": "0.01"}, fill_count=4)  # fmt: skip
    _position(perp, "ETH/USDT:USDT", "-2", "3000")
    _position(perp, "SOL/USDT:USDT", "10", "20")  # no price anywhere
    _position(perp, "XRP/USDT:USDT", "0", realized_pnl=D("-5"))  # closed: realized only
    _marks(perp, {"BTC/USDT:USDT": "42000"})
    _marks(perp, {"ETH/USDT:USDT": "2900"}, age_seconds=3600)  # stale by age
    BalanceFactory(account=spot, currency="USDT", total=D("1000"), free=D("1000"))
    BalanceFactory(account=spot, currency="BTC", total=D("0.1"), free=D("0.1"))
    BalanceFactory(account=spot, currency="BNB", total=D("1"), free=D("1"))
    _marks(spot, {"BTC/USDT": "41000", "BNB/USDT": "600"})
    return perp, spot


def test_pnl_figures_and_flags(desk):
    perp, _ = desk
    report = pnl_report(perp)
    by = {p.symbol: p for p in report.positions}
    btc, eth, sol, xrp = (by[s] for s in ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT",
                                           "XRP/USDT:USDT"))  # fmt: skip
    # BTC: (42000 - 40000) * 0.5 = 1000; fees 2.5 + 0.01 BNB * 600 = 8.5; net 1091.5
    assert (btc.unrealized_pnl, btc.fees, btc.net_pnl) == (D("1000"), D("8.5"), D("1091.5"))
    assert not btc.mark_stale and btc.mark_price == D("42000")
    # ETH short: (2900 - 3000) * -2 = 200, valued at a stale price: flagged
    assert (eth.unrealized_pnl, eth.net_pnl, eth.mark_stale) == (D("200"), D("200"), True)
    # SOL: no price -> null, never 0
    assert (sol.mark_price, sol.unrealized_pnl, sol.net_pnl) == (None, None, None)
    assert (xrp.realized_pnl, xrp.unrealized_pnl, xrp.net_pnl) == (D("-5"), 0, D("-5"))
    t = report.totals
    assert (t.realized_pnl, t.unrealized_pnl, t.fees, t.net_pnl) == (D("95"), None, D("8.5"), None)
    assert t.incomplete == ("SOL/USDT:USDT",) and t.stale == ("ETH/USDT:USDT",)


def test_api_pnl_contract(desk):
    perp, _ = desk
    client, _ = make_bot("pnl-bot", perp)
    body = client.get(url(perp, "pnl")).json()
    assert set(body) == {"account", "valuation_currency", "as_of", "positions", "totals"}
    assert body["account"] == "perp-a" and body["valuation_currency"] == "USDT"
    keys = {"symbol", "qty", "avg_entry_price", "mark_price", "mark_time", "mark_stale",
            "realized_pnl", "unrealized_pnl", "fees", "net_pnl"}  # fmt: skip
    assert all(set(p) == keys for p in body["positions"])
    assert set(body["totals"]) == {"realized_pnl", "unrealized_pnl", "fees", "net_pnl"}
    amounts = [v for p in body["positions"] for k, v in p.items() if k not in
               ("symbol", "mark_time", "mark_stale") and v is not None]  # fmt: skip
    assert amounts and all(isinstance(v, str) and AMOUNT.match(v) for v in amounts)
    btc = next(p for p in body["positions"] if p["symbol"] == "BTC/USDT:USDT")
    assert btc["net_pnl"] == "1091.5" and btc["mark_stale"] is False and btc["mark_time"]
    sol = next(p for p in body["positions"] if p["symbol"] == "SOL/USDT:USDT")
    assert sol["unrealized_pnl"] is None and sol["mark_price"] is None
    assert body["totals"] == {"realized_pnl": "95", "unrealized_pnl": None, "fees": "8.5",
                              "net_pnl": None}  # fmt: skip


def test_api_pnl_since_counts_only_the_fills_since_then(desk):
    # given: two fills of BTC, one old and one recent, with their stored shares
    perp, _ = desk
    order = OrderFactory(account=perp, symbol="BTC/USDT:USDT", quantity=D("1"))
    now = timezone.now()
    for trade, hours, realized, fee_quote, fee, currency in (
        ("t-old", 48, "70", "1.5", "1.5", "USDT"),
        ("t-new", 1, "30", "1", "1", "USDT"),
        ("t-bnb", 1, "0", "0", "0.01", "BNB"),
    ):
        Fill.objects.create(
            account=perp, order=order, symbol=order.symbol, trade_id=trade, quantity=D("0.1"),
            price=D("41000"),
            fee=D(fee), fee_currency=currency, executed_at=now - timedelta(hours=hours),
            realized_pnl=D(realized), fee_quote=D(fee_quote),
        )  # fmt: skip
    client, _ = make_bot("since-bot", perp)
    since = (now - timedelta(hours=2)).isoformat()
    # when
    body = client.get(url(perp, "pnl"), {"since": since}).json()
    # then: realized and fees are those of the recent fills; unrealized is the position's now
    btc = next(p for p in body["positions"] if p["symbol"] == "BTC/USDT:USDT")
    assert btc["realized_pnl"] == "30" and btc["fees"] == "7"  # 1 + 0.01 BNB at 600
    assert btc["unrealized_pnl"] == "1000" and btc["net_pnl"] == "1023"
    eth = next(p for p in body["positions"] if p["symbol"] == "ETH/USDT:USDT")
    assert eth["realized_pnl"] == "0"
    # a naive or malformed time is a 400 naming the field
    assert_error(client.get(url(perp, "pnl"), {"since": "2026-01-01T00:00:00"}), 400,
                 "validation_error", {"since"})  # fmt: skip
    assert_error(client.get(url(perp, "pnl"), {"since": "yesterday"}), 400,
                 "validation_error", {"since"})  # fmt: skip


def test_a_bot_sees_only_its_accounts(desk):
    perp, spot = desk
    client, _ = make_bot("only-perp", perp)
    assert_error(client.get(url(spot, "pnl")), 404, "not_found")
    assert_error(client.get(url(spot, "pnl", "history")), 404, "not_found")
    body = client.get("/api/v1/exposure/").json()
    accounts = {name for a in body["assets"] for name in a["by_account"]}
    assert accounts == {"perp-a"}
    assert {a["asset"] for a in body["assets"]} == {"BTC", "ETH", "SOL"}
    staff = APIClient()
    staff.force_login(StaffFactory())
    everyone = staff.get("/api/v1/exposure/").json()
    assert {n for a in everyone["assets"] for n in a["by_account"]} == {"perp-a", "spot-b"}


def test_exposure_figures(desk):
    report = exposure_report([*desk])
    btc = report.exposure.asset("BTC")
    # perp: 0.5 BTC at its instrument's mark 42000 = 21000; the spot balance is priced at
    # the freshest BTC/USDT or BTC/USDT:USDT mark on any account
    assert btc.net_qty == D("0.6")
    assert btc.by_account["perp-a"].net_notional == D("21000")
    assert btc.by_account["spot-b"].net_qty == D("0.1")
    eth = report.exposure.asset("ETH")
    assert eth.net_notional == D("-5800") and eth.gross_notional == D("5800") and eth.mark_stale
    sol = report.exposure.asset("SOL")
    assert sol.net_notional is None and sol.mark_missing
    assert report.excluded_assets == ("SOL",) and report.net_notional is None
    usdt = report.exposure.asset("USDT")
    assert usdt.net_notional == D("1000") and usdt.by_venue["binance"].net_qty == D("1000")


def _cli(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def _cli_row(output: str, *first: str) -> list[str]:
    [line] = [x for x in output.splitlines() if x.split()[: len(first)] == list(first)]
    return line.split()


def _console_cells(html: str, row_attr: str) -> dict[str, str]:
    match = re.search(rf"<tr [^>]*{re.escape(row_attr)}[^>]*>(.*?)</tr>", html, re.S)
    assert match, row_attr
    cells = re.findall(r'<td class="(\w+)">([^<]*)', match.group(1))
    return {name: value.strip() for name, value in cells}


def test_api_console_and_cli_show_the_same_figures(desk, client):
    # given: one state, read through the three doors
    perp, _ = desk
    staff = StaffFactory()
    api = APIClient()
    api.force_login(staff)
    client.force_login(staff)
    pnl = api.get(url(perp, "pnl")).json()
    exposure = api.get("/api/v1/exposure/").json()
    cli_pnl = _cli("pnl", "--account", "perp-a")
    cli_exposure = _cli("exposure")
    page = client.get("/admin/console/pnl/")
    assert page.status_code == 200
    html = page.content.decode()
    figures = ("realized_pnl", "unrealized_pnl", "fees", "net_pnl")
    # then: every position's figures are equal (null = n/a), stale flagged in all three
    for p in pnl["positions"]:
        want = {k: p[k] if p[k] is not None else "n/a" for k in figures}
        cli = _cli_row(cli_pnl, p["symbol"])
        assert dict(zip(figures, cli[-4:], strict=True)) == want, p["symbol"]
        assert ("STALE" in cli) == p["mark_stale"]
        cells = _console_cells(html, f'data-symbol="{p["symbol"]}"')
        assert {k: cells[k] for k in figures} == want, p["symbol"]
        assert cells["avg_entry_price"] == (p["avg_entry_price"] or "n/a")
        assert cells["mark_price"] == (p["mark_price"] or "n/a")
    totals = {k: v if v is not None else "n/a" for k, v in pnl["totals"].items()}
    assert dict(zip(figures, _cli_row(cli_pnl, "TOTAL")[-4:], strict=True)) == totals
    assert "STALE" in _cli_row(cli_pnl, "ETH/USDT:USDT")
    stale_row = re.search(r'data-symbol="ETH/USDT:USDT".*?</tr>', html, re.S).group(0)
    assert "STALE" in stale_row
    # and every asset's exposure
    for a in exposure["assets"]:
        want = [a[k] if a[k] is not None else "n/a" for k in ("net_qty", "net_notional",
                                                                  "gross_notional")]  # fmt: skip
        row = _cli_row(cli_exposure, a["asset"], "all")
        assert row[2:5] == want, a["asset"]
        assert ("STALE" in row) == a["mark_stale"]
        cells = _console_cells(html, f'class="exposure-asset" data-asset="{a["asset"]}"')
        assert [cells[k] for k in ("net_qty", "net_notional", "gross_notional")] == want
        for name, share in a["by_account"].items():
            row = _cli_row(cli_exposure, a["asset"], "account", name)
            assert row[3:6] == [share[k] if share[k] is not None else "n/a"
                                for k in ("net_qty", "net_notional", "gross_notional")]  # fmt: skip
            cells = _console_cells(html, f'data-asset="{a["asset"]}" data-account="{name}"')
            assert [cells[k] for k in ("net_qty", "net_notional", "gross_notional")] == row[3:6]
    assert exposure["totals"]["net_notional"] is None  # SOL has no price
    assert _cli_row(cli_exposure, "TOTAL")[1:3] == ["n/a", "n/a"]


def test_statement_counts_pnl_1000_positions():
    account = AccountFactory(name="big", market_type="swap")
    Position.objects.bulk_create(
        Position(account=account, symbol=f"C{i}/USDT:USDT", qty=D(i + 1), entry_price=D("10"),
                 fees_other={"BNB": "0.1"})
        for i in range(1000)
    )  # fmt: skip
    _marks(account, {f"C{i}/USDT:USDT": "11" for i in range(1000)})
    _marks(AccountFactory(name="prices", market_type="spot"), {"BNB/USDT": "600"})
    with CaptureQueriesContext(connection) as queries:
        report = pnl_report(account, since=timezone.now() - timedelta(days=1))
    assert len(report.positions) == 1000 and report.totals.net_pnl is not None
    assert len(queries) <= 5, [q["sql"][:120] for q in queries]


def test_statement_counts_exposure_100_accounts():
    for i in range(100):
        market = "swap" if i % 2 else "spot"
        account = AccountFactory(name=f"acct-{i:03}", market_type=market, exchange="bybit")
        if market == "swap":
            for s in ("BTC", "ETH", "SOL"):
                _position(account, f"{s}/USDT:USDT", str(i), "1")
            _marks(account, {"BTC/USDT:USDT": "50000", "ETH/USDT:USDT": "3000"})
        else:
            BalanceFactory(account=account, currency="BTC", total=D("1"))
            BalanceFactory(account=account, currency="USDT", total=D("10"))
    from tradingstate.models import ExchangeAccount

    with CaptureQueriesContext(connection) as queries:
        report = exposure_report(ExchangeAccount.objects.all())
    assert len(report.accounts) == 100 and report.exposure.asset("BTC").net_notional
    assert len(queries) <= 5, [q["sql"][:120] for q in queries]


def test_hourly_snapshots_history_and_retention(desk, settings):
    perp, _ = desk
    now = timezone.now()
    # when: the worker records twice in one hour (django-q2 may deliver twice); the second
    # moment stays inside the hour even when the test runs at hh:59
    first = pnl_snapshot_record(now=now)
    later = min(now + timedelta(minutes=1), now.replace(minute=59, second=59, microsecond=999999))
    again = pnl_snapshot_record(now=later)
    # then: one row per account and one for the desk, once
    assert first.created == 3 and again.created == 0
    row = PnlSnapshot.objects.get(account=perp, taken_at=first.taken_at)
    report = pnl_report(perp, now=now)
    assert (row.realized_pnl, row.unrealized_pnl, row.net_pnl) == (
        report.totals.realized_pnl, report.totals.unrealized_pnl, report.totals.net_pnl
    )  # fmt: skip
    assert row.unrealized_pnl is None and row.stale  # SOL unpriced, ETH stale: never 0
    desk_row = PnlSnapshot.objects.get(account__isnull=True, taken_at=first.taken_at)
    assert desk_row.realized_pnl == D("95")
    # an older snapshot, past the retention, is pruned by the next record
    keep = settings.TRADINGSTATE.pnl_history_retention_days
    PnlSnapshot.objects.create(account=perp, taken_at=now - timedelta(days=keep + 1),
                               recorded_at=now, valuation_currency="USDT")  # fmt: skip
    PnlSnapshot.objects.create(
        account=perp, taken_at=now - timedelta(days=2), recorded_at=now,
        valuation_currency="USDT", net_pnl=D("7"),
    )  # fmt: skip
    assert pnl_snapshot_record(now=now + timedelta(hours=1)).deleted == 1
    # the API lists them newest first, bounded by from/to
    client, _ = make_bot("hist-bot", perp)
    body = client.get(url(perp, "pnl", "history")).json()
    assert [p["net_pnl"] for p in body["results"]][-1] == "7"
    frm = (now - timedelta(days=3)).isoformat()
    to = (now - timedelta(days=1)).isoformat()
    only = client.get(url(perp, "pnl", "history"), {"from": frm, "to": to}).json()["results"]
    assert [p["net_pnl"] for p in only] == ["7"]
    assert set(only[0]) == {
        "as_of", "valuation_currency", "realized_pnl", "unrealized_pnl", "fees", "net_pnl",
        "net_notional", "gross_notional", "stale",
    }  # fmt: skip
    assert_error(client.get(url(perp, "pnl", "history"), {"from": to, "to": frm}), 400,
                 "validation_error", {"from"})  # fmt: skip
    assert_error(client.get(url(perp, "pnl", "history"), {"to": "soon"}), 400,
                 "validation_error", {"to"})  # fmt: skip


def test_snapshot_schedule_is_created_once():
    from django_q.models import Schedule

    from tradingstate.services.pnl import SCHEDULE_NAME, pnl_snapshot_schedule_ensure

    pnl_snapshot_schedule_ensure()
    pnl_snapshot_schedule_ensure()
    [schedule] = Schedule.objects.filter(name=SCHEDULE_NAME)
    assert schedule.func == "tradingstate.tasks.pnl_snapshot_task"
    assert schedule.schedule_type == Schedule.HOURLY


def test_the_period_counts_trades_recorded_with_no_order():
    # ?since= read each fill's symbol through its order: a trade the pass recorded with no
    # order (external, manual) had none, and the report was a 500
    from tradingstate.actors import Actor
    from tradingstate.services.fills import fills_record_from_venue
    from tradingstate.services.sync import SyncItem

    account = AccountFactory(name="spot-y", exchange="binance", market_type="spot")
    client, _ = make_bot("b2", account)
    now = timezone.now()

    def trade(n, side, price, fee, minutes):
        return SyncItem(key=f"t{n}", values={
            "symbol": "BTC/USDT", "side": side, "trade_id": f"x{n}", "quantity": "1",
            "price": price, "fee": fee, "fee_currency": "USDT",
            "executed_at": (now - timedelta(minutes=minutes)).isoformat(),
        })  # fmt: skip

    outcomes = fills_record_from_venue(
        account=account,
        items=[trade(1, "buy", "100", "1", 30), trade(2, "sell", "150", "2", 10)],
        actor=Actor.system("tests"),
    )
    assert all(o.applied for o in outcomes) and not Fill.objects.filter(order__isnull=False)
    full = client.get(url(account, "pnl")).json()["positions"][0]
    response = client.get(url(account, "pnl"), {"since": (now - timedelta(hours=1)).isoformat()})
    assert response.status_code == 200, response.content
    period = response.json()["positions"][0]
    assert period["realized_pnl"] == full["realized_pnl"] == "50"
    assert period["fees"] == full["fees"] == "3"


def test_a_fee_paid_in_the_valuation_currency_needs_no_mark():
    # a 2 USDT fee on ETH/BTC was "unconverted" (no USDT/USDT mark): fees and net unknown
    account = AccountFactory(name="cross", exchange="binance", market_type="spot")
    client, _ = make_bot("b-cross", account)
    order = {"client_order_id": "o1", "symbol": "ETH/BTC", "side": "buy", "type": "limit",
             "quantity": "1", "price": "0.05"}  # fmt: skip
    assert client.post(url(account, "orders"), order, format="json").status_code == 201
    fill = {"client_order_id": "o1", "trade_id": "t1", "quantity": "1", "price": "0.05",
            "fee": "2", "fee_currency": "USDT"}  # fmt: skip
    assert client.post(url(account, "fills"), fill, format="json").status_code == 201
    now = timezone.now()
    prices = {"ETH/BTC": "0.06", "BTC/USDT": "50000"}
    mark_prices_record(account=account, asked=list(prices), now=now,
                       prices=[ExchangeMarkPrice(s, D(p), now, "mark")
                               for s, p in prices.items()])  # fmt: skip
    line = client.get(url(account, "pnl")).json()["positions"][0]
    # unrealized (0.06 - 0.05) x 1 BTC = 0.01 BTC = 500 USDT; fees 2 USDT; net 498
    assert (line["unrealized_pnl"], line["fees"], line["net_pnl"]) == ("500", "2", "498")
