"""examples/paper_bot.py against the live server: its orders are placed on the paper venue,
filled there and recorded from the venue's trades, a resting order is cancelled when asked,
and it places nothing while the kill switch is active."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tradingstate_client import Client

BOT = Path(__file__).resolve().parents[1] / "examples" / "paper_bot.py"
ACCOUNT = "paper-demo"


def run_bot(live, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BOT), "--url", live.base_url, "--account", ACCOUNT, *args],
        env={"TRADINGSTATE_TOKEN": live.tokens["paperbot"], "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_paper_bot_trades_and_records_the_venues_executions(live):
    # when: two market orders; the paper venue fills them at its mark
    result = run_bot(live, "--orders", "2", "--fill-timeout", "20", "--poll-interval", "0.2")
    # then each is filled, with exactly the venue's trades recorded as its fills
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["halted"] is False and len(summary["orders"]) == 2
    with Client(live.base_url, live.token) as ts:
        for entry in summary["orders"]:
            order = ts.order(ACCOUNT, entry["client_order_id"])
            assert order.strategy_id == "paper-bot" and order.type == "market"
            assert order.status == entry["status"] == "filled"
            assert order.exchange_order_id.startswith("PAPER-")
            assert order.filled_qty == order.quantity
            venue = list(ts.iter_paper_trades(ACCOUNT, order=order.client_order_id))
            assert [t.trade_id for t in venue] == entry["fills_posted"]
            assert venue[0].quantity == order.quantity and venue[0].liquidity == "taker"
        sides = [ts.order(ACCOUNT, e["client_order_id"]).side for e in summary["orders"]]
    assert sides == ["buy", "sell"]
    assert "registered" in result.stderr and "submitted" in result.stderr
    assert "fill PT-" in result.stderr
    assert "positions:" in result.stderr and summary["position"] != ""


def test_paper_bot_cancels_what_the_venue_did_not_fill_when_asked(live):
    # a buy limit far below the venue's mark rests on the venue until cancelled
    result = run_bot(live, "--orders", "1", "--type", "limit", "--price", "1000",
                     "--fill-timeout", "0.2", "--cancel-unfilled")  # fmt: skip
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout.strip().splitlines()[-1])["orders"]
    assert entry["status"] == "cancelled" and entry["fills_posted"] == []


def test_paper_bot_places_nothing_while_the_kill_switch_is_active(live):
    with Client(live.base_url, live.token) as ts, Client(live.base_url, live.tokens["staff"]) as s:
        before = {o.client_order_id for o in ts.iter_orders(ACCOUNT)}
        ts.killswitch_activate("paper bot drill", account=ACCOUNT)
        try:
            result = run_bot(live, "--orders", "2", "--fill-timeout", "0")
        finally:
            s.killswitch_deactivate("drill over", account=ACCOUNT)
        after = {o.client_order_id for o in ts.iter_orders(ACCOUNT)}
    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["halted"] is True
    assert after == before
