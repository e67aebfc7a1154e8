"""The async client against a live server: the same operations, awaited."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from tradingstate_client import AsyncClient, Conflict, KillSwitchActive, RetryPolicy

ACCOUNT = "paper-demo"
SPARE = "client-spare"


def run(coro):
    return asyncio.run(coro)


def test_async_order_lifecycle(live):
    async def scenario():
        async with AsyncClient(live.base_url, live.token) as ts:
            assert await ts.trading_allowed(ACCOUNT)
            order = await ts.register_order(
                ACCOUNT, symbol="BTC/USDT", side="buy", type="limit", quantity="0.01", price="59000"
            )
            again = await ts.register_order(ACCOUNT, symbol="BTC/USDT", side="buy",
                                            type="limit", quantity="0.01", price="59000",
                                            client_order_id=order.client_order_id)  # fmt: skip
            with pytest.raises(Conflict):
                await ts.register_order(ACCOUNT, symbol="BTC/USDT", side="buy", type="limit",
                                        quantity="0.02", price="59000",
                                        client_order_id=order.client_order_id)  # fmt: skip
            submitted = await ts.transition(ACCOUNT, order.client_order_id, "submitted")
            fill = await ts.post_fill(ACCOUNT, client_order_id=order.client_order_id,
                                      trade_id="AT-" + order.client_order_id,
                                      quantity="0.01", price="58990")  # fmt: skip
            detail = await ts.order(ACCOUNT, order.client_order_id)
            positions = await ts.positions(ACCOUNT)
            return order, again, submitted, fill, detail, positions

    order, again, submitted, fill, detail, positions = run(scenario())
    assert again == order and submitted.status == "submitted"
    assert fill.order.status == "filled" and detail.status == "filled"
    assert detail.avg_fill_price == Decimal("58990")
    assert any(p.symbol == "BTC/USDT" for p in positions)


def test_async_concurrent_registrations_share_one_connection_pool(live):
    async def scenario():
        async with AsyncClient(live.base_url, live.token) as ts:
            orders = await asyncio.gather(
                *[
                    ts.register_order(
                        SPARE,
                        symbol="XRP/USDT",
                        side="buy",
                        quantity=str(i + 1),
                        price="0.5",
                        strategy_id="async-gather",
                    )
                    for i in range(20)
                ]
            )
            listed = [o async for o in ts.iter_orders(SPARE, symbol="XRP/USDT", page_size=7)]
            return orders, listed

    orders, listed = run(scenario())
    assert len({o.client_order_id for o in orders}) == 20
    assert {o.client_order_id for o in listed} == {o.client_order_id for o in orders}
    assert sorted(o.quantity for o in listed) == [Decimal(i + 1) for i in range(20)]


def test_async_burst_over_the_rate_limit_is_retried(throttled):
    async def scenario():
        policy = RetryPolicy(max_attempts=10, max_wait=30)
        async with AsyncClient(throttled.base_url, throttled.tokens["throttled"],
                               retry=policy) as ts:  # fmt: skip
            return await asyncio.gather(*[ts.balances(ACCOUNT) for _ in range(10)])

    results = run(scenario())
    assert len(results) == 10 and all(r == results[0] for r in results)


def test_async_kill_switch_and_reconcile(live):
    async def scenario():
        async with (
            AsyncClient(live.base_url, live.token) as ts,
            AsyncClient(live.base_url, live.tokens["staff"]) as staff,
        ):
            await ts.killswitch_activate("async drill", account=SPARE)
            try:
                allowed = await ts.trading_allowed(SPARE)
                with pytest.raises(KillSwitchActive):
                    await ts.register_order(SPARE, symbol="BTC/USDT", side="buy", quantity="1")
            finally:
                await staff.killswitch_deactivate("async drill over", account=SPARE)
            run_ = await ts.reconcile(ACCOUNT, timeout=60)
            health = await ts.health()
            return allowed, run_, health

    allowed, run_, health = run(scenario())
    assert allowed is False
    assert run_.finished and run_.status == "completed"
    assert health.db == "ok"
