#!/usr/bin/env python3
"""A minimal bot trading tradingstate's paper venue through tradingstate-client.

For each order it:
1. checks ``trading_allowed(account)`` (the kill switch) and stops if trading is halted;
2. registers the order (a fresh ``client_order_id``; safe to retry);
3. moves it to ``submitted``: on a paper account that places it on the paper venue;
4. watches the venue for executions and posts each one as a fill (idempotent on
   ``trade_id``, so a fill the reconciler already recorded is not counted twice);
5. reads its positions.

Where the executions come from is the ``Venue`` below. On a live account a bot learns its
trades from the exchange (ccxt ``fetch_order_trades`` / ``watch_my_trades``) and posts them.
On a paper account the venue is tradingstate's paper venue: ``PaperVenue`` reads its trades
from ``GET /api/v1/accounts/{account}/paper/trades/?order=<client_order_id>`` (the venue's
own trade list, not tradingstate's fills), over its own connection as a bot's exchange
connection would be. Market orders fill at the venue's mark; a limit order fills when the
mark crosses it (or is cancelled with ``--cancel-unfilled`` after ``--fill-timeout``).

    python clients/python/examples/paper_bot.py --url http://127.0.0.1:8000 \\
        --token "$TRADINGSTATE_TOKEN" --account paper-demo --symbol BTC/USDT --orders 3

Exit status: 0 done, 3 stopped by the kill switch, 1 an error. The last line printed is a
JSON summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal

from tradingstate_client import ApiError, Client, KillSwitchActive, Order

log = logging.getLogger("paper_bot")
STRATEGY = "paper-bot"
EXIT_HALTED = 3


@dataclass(frozen=True)
class Execution:
    trade_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal | None
    fee_currency: str
    executed_at: object  # aware datetime


class PaperVenue:
    """The paper venue's executions of one order: the venue's trade list
    (``Client.iter_paper_trades``: ``GET /api/v1/accounts/{account}/paper/trades/``), read
    over a connection of its own, as a bot reads a real exchange. Trades already recorded
    are filtered by the caller (``trade_id``)."""

    def __init__(self, url: str, token: str, account: str, timeout: float):
        self.account = account
        self.client = Client(url, token, timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def executions(self, order: Order) -> list[Execution]:
        return [
            Execution(t.trade_id, t.quantity, t.price, t.fee, t.fee_currency, t.executed_at)
            for t in self.client.iter_paper_trades(self.account, order=order.client_order_id)
        ]


def trade_one(ts: Client, venue: PaperVenue, args, index: int) -> dict:
    side = args.side if args.side != "alternate" else ("buy" if index % 2 == 0 else "sell")
    order = ts.register_order(
        args.account,
        symbol=args.symbol,
        side=side,
        type=args.type,
        quantity=Decimal(args.quantity),
        price=Decimal(args.price) if args.price else None,
        strategy_id=STRATEGY,
        reason="paper bot",
    )
    log.info("order %s registered: %s %s %s", order.client_order_id, side, order.quantity,
             args.symbol)  # fmt: skip
    order = ts.transition(args.account, order.client_order_id, "submitted", reason="paper bot")
    log.info("order %s submitted", order.client_order_id)

    posted: set[str] = set()

    def post_new_executions() -> None:
        for ex in venue.executions(order):
            if ex.trade_id in posted:
                continue
            fill = ts.post_fill(
                args.account,
                client_order_id=order.client_order_id,
                trade_id=ex.trade_id,
                quantity=ex.quantity,
                price=ex.price,
                fee=ex.fee,
                fee_currency=ex.fee_currency or None,
                executed_at=ex.executed_at,
                reason="paper bot",
            )
            posted.add(ex.trade_id)
            log.info("fill %s: %s @ %s", fill.trade_id, fill.quantity, fill.price)

    deadline = time.monotonic() + args.fill_timeout
    while True:
        post_new_executions()
        order = ts.order(args.account, order.client_order_id)
        if order.is_terminal or time.monotonic() >= deadline:
            break
        time.sleep(args.poll_interval)

    if order.is_active and args.cancel_unfilled:
        try:
            order = ts.transition(args.account, order.client_order_id, "cancelled",
                                  reason="paper bot: not filled in time")  # fmt: skip
            log.info("order %s cancelled (not filled within %ss)", order.client_order_id,
                     args.fill_timeout)  # fmt: skip
        except ApiError as exc:
            if exc.status != 409:
                raise
            # the venue filled it meanwhile (it refuses the cancel): record what it did
            log.info("order %s filled before the cancel: %s", order.client_order_id, exc)
            post_new_executions()
            order = ts.order(args.account, order.client_order_id)
    elif order.is_active:
        log.info("order %s still %s; left working", order.client_order_id, order.status)
    return {
        "client_order_id": order.client_order_id,
        "status": order.status,
        "filled_qty": str(order.filled_qty),
        "fills_posted": sorted(posted),
    }


def run(args) -> int:
    summary: dict = {"account": args.account, "orders": [], "halted": False}
    venue = PaperVenue(args.url, args.token, args.account, args.timeout)
    with Client(args.url, args.token, timeout=args.timeout) as ts, closing(venue):
        for index in range(args.orders):
            if not ts.trading_allowed(args.account):
                log.warning("trading halted on %s (kill switch): no new orders", args.account)
                summary["halted"] = True
                break
            try:
                summary["orders"].append(trade_one(ts, venue, args, index))
            except KillSwitchActive as exc:  # halted between the check and the order
                log.warning("order refused: kill switch active (%s)", exc.reason)
                summary["halted"] = True
                break
        positions = {p.symbol: str(p.qty) for p in ts.positions(args.account)}
        log.info("positions: %s", positions)
        summary["position"] = positions.get(args.symbol, "0")
    print(json.dumps(summary))
    return EXIT_HALTED if summary["halted"] else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default=os.environ.get("TRADINGSTATE_URL", "http://127.0.0.1:8000"))
    p.add_argument("--token", default=os.environ.get("TRADINGSTATE_TOKEN"))
    p.add_argument("--account", default="paper-demo")
    p.add_argument("--symbol", default="BTC/USDT")
    p.add_argument("--side", choices=["buy", "sell", "alternate"], default="alternate")
    p.add_argument("--type", choices=["market", "limit"], default="market")
    p.add_argument("--quantity", default="0.001")
    p.add_argument("--price", default=None, help="for limit orders")
    p.add_argument("--orders", type=int, default=3)
    p.add_argument("--fill-timeout", type=float, default=30.0,
                   help="seconds to wait for each order's executions")  # fmt: skip
    p.add_argument("--poll-interval", type=float, default=1.0)
    p.add_argument("--cancel-unfilled", action="store_true")
    p.add_argument("--timeout", type=float, default=10.0, help="HTTP timeout, seconds")
    args = p.parse_args(argv)
    if not args.token:
        p.error("--token (or TRADINGSTATE_TOKEN) is required")
    if args.type == "limit" and not args.price:
        p.error("--price is required for limit orders")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    try:
        return run(args)
    except ApiError as exc:
        log.error("API error: %s %s", exc, exc.fields or "")
        return 1


if __name__ == "__main__":
    sys.exit(main())
