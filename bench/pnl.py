"""P&L and exposure read benchmark (issue 15 "Speed"): statements and time of

- ``pnl`` for one account with 1,000 positions (each with a mark and an other-currency fee
  to convert), with ``?since=`` (the most statements: the fills since then are read too);
- ``exposure`` across 100 accounts (50 derivative accounts with 10 positions each, 50 spot
  accounts with 3 balances each).

Targets: at most 5 statements each, whatever the size. One line per case::

    pnl what=account positions=1000 statements=S target=5 ms=M
    pnl what=exposure accounts=100 positions=500 balances=150 statements=S target=5 ms=M

``ms`` is the median of 5 reads after a warm-up; ``statements`` those of one read.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_database, django_setup

RUNS = 5
TARGET = 5


def _measure(read) -> tuple[int, float]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        read()
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        read()
        times.append((time.perf_counter() - start) * 1000)
    return len(queries), statistics.median(times)


def _marks(account, symbols, price):
    from django.utils import timezone

    from tradingstate.exchanges.base import ExchangeMarkPrice
    from tradingstate.services.marks import mark_prices_record

    now = timezone.now()
    mark_prices_record(
        account=account,
        asked=symbols,
        prices=[ExchangeMarkPrice(s, Decimal(price), now, "mark") for s in symbols],
        now=now,
    )


def main() -> int:
    with bench_database():
        django_setup()
        from django.utils import timezone

        from tradingstate.models import Balance, ExchangeAccount, Position
        from tradingstate.selectors.pnl import exposure_report, pnl_report

        big = ExchangeAccount.objects.create(name="big", exchange="bybit", market_type="swap")
        symbols = [f"C{i}/USDT:USDT" for i in range(1000)]
        Position.objects.bulk_create(
            Position(account=big, symbol=s, qty=Decimal(i + 1), entry_price=Decimal("10"),
                     realized_pnl=Decimal("1.5"), fees=Decimal("0.1"), fees_other={"BNB": "0.01"})
            for i, s in enumerate(symbols)
        )  # fmt: skip
        _marks(big, symbols, "11")
        prices = ExchangeAccount.objects.create(name="prices", exchange="binance")
        _marks(prices, ["BNB/USDT"], "600")
        since = timezone.now() - timedelta(days=1)
        statements, ms = _measure(lambda: pnl_report(big, since=since))
        print(
            f"pnl what=account positions=1000 statements={statements} target={TARGET} ms={ms:.0f}",
            flush=True,
        )

        positions = balances = 0
        for i in range(100):
            derivative = i % 2 == 0
            account = ExchangeAccount.objects.create(
                name=f"desk-{i:03}", exchange="okx", market_type="swap" if derivative else "spot"
            )
            if derivative:
                mine = [f"A{j}/USDT:USDT" for j in range(10)]
                Position.objects.bulk_create(
                    Position(account=account, symbol=s, qty=Decimal(i - 50), entry_price=1)
                    for s in mine
                )
                _marks(account, mine, "2")
                positions += len(mine)
            else:
                Balance.objects.bulk_create(
                    Balance(account=account, currency=c, total=Decimal(i), free=Decimal(i))
                    for c in ("USDT", "A1", "A2")
                )
                balances += 3
        _marks(prices, ["A1/USDT", "A2/USDT"], "2")
        desk = ExchangeAccount.objects.filter(name__startswith="desk-")
        statements, ms = _measure(lambda: exposure_report(desk))
        print(
            f"pnl what=exposure accounts=100 positions={positions} balances={balances} "
            f"statements={statements} target={TARGET} ms={ms:.0f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
