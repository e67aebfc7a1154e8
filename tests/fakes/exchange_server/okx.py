"""OKX v5 (``/api/v5``) routes of the fake exchange, in OKX's wire format.

Swap sizes are in contracts (``sz``, ``accFillSz``, ``pos``, ``fillSz`` = base quantity /
``ctVal``), lists are newest first and paged with ``after`` (``ordId`` for orders, ``billId``
for fills), every body is ``{"code", "msg", "data"}``, and private calls need the API key,
a signature and the passphrase headers.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import TYPE_CHECKING

from tests.fakes.exchange_server.state import NOW_MS, FakeMarket, FakeOrder, VenueState

if TYPE_CHECKING:  # pragma: no cover
    from tests.fakes.exchange_server import FakeExchangeServer

PAGE_MAX = 100
DAY_MS = 24 * 3_600_000
FILLS_DAYS = 3  # /trade/fills: the last 3 days
FILLS_HISTORY_DAYS = 90  # /trade/fills-history: the last 3 months
_INST_TYPES = {"spot": "SPOT", "linear": "SWAP"}
_KINDS = {v: k for k, v in _INST_TYPES.items()}
_ORD_TYPES = {"market": "market", "limit": "limit"}  # stop kinds are algo orders on OKX


def _okx_error(code: str, msg: str) -> str:
    return json.dumps({"code": code, "msg": msg, "data": []})


def _ok(data: list) -> dict:
    return {"code": "0", "msg": "", "data": data}


def _fail(code: str, msg: str, status: int = 200) -> tuple[int, dict]:
    return status, json.loads(_okx_error(code, msg))


def inst_id(market: FakeMarket) -> str:
    return f"{market.base}-{market.quote}" + ("-SWAP" if market.kind == "linear" else "")


def _contracts(qty: str, market: FakeMarket | None) -> str:
    """Base quantity -> OKX size (contracts for swaps)."""
    if market is None or market.kind == "spot":
        return qty
    return str(Decimal(qty) / Decimal(market.contract_size))


def _find_market(state: VenueState, instrument: str) -> FakeMarket | None:
    for market in state.markets:
        if inst_id(market) == instrument:
            return market
    return None


def _instrument(m: FakeMarket) -> dict:
    swap = m.kind == "linear"
    lot = str(Decimal(m.amount_step) / Decimal(m.contract_size)) if swap else m.amount_step
    return {
        "instType": _INST_TYPES[m.kind], "instId": inst_id(m),
        "uly": f"{m.base}-{m.quote}" if swap else "",
        "instFamily": f"{m.base}-{m.quote}" if swap else "",
        "baseCcy": "" if swap else m.base, "quoteCcy": "" if swap else m.quote,
        "settleCcy": m.quote if swap else "", "ctVal": m.contract_size if swap else "",
        "ctMult": "1" if swap else "", "ctValCcy": m.base if swap else "",
        "ctType": "linear" if swap else "", "optType": "", "stk": "", "alias": "",
        "listTime": "1606468572000", "expTime": "", "lever": "100" if swap else "10",
        "tickSz": m.price_step, "lotSz": lot, "minSz": lot, "maxLmtSz": "100000000",
        "maxMktSz": "100000000", "state": "live", "ruleType": "normal",
    }  # fmt: skip


def _state(order: FakeOrder) -> str:
    filled = Decimal(order.filled)
    if order.status == "open":
        return "partially_filled" if filled > 0 else "live"
    if order.status == "closed":
        return "filled"
    return "canceled"  # canceled, expired and rejected orders all end "canceled" on OKX


def _order(state: VenueState, order: FakeOrder) -> dict:
    market = state.market_by_id(order.symbol, order.kind)
    filled = Decimal(order.filled)
    return {
        "accFillSz": _contracts(order.filled, market), "algoClOrdId": "", "algoId": "",
        "attachAlgoClOrdId": "", "attachAlgoOrds": [],
        "avgPx": (order.average or order.price or "") if filled > 0 else "",
        "cTime": str(order.timestamp), "cancelSource": "", "cancelSourceReason": "",
        "category": "normal", "ccy": "", "clOrdId": order.client_order_id, "fee": "0",
        "feeCcy": market.quote if market else "USDT", "fillPx": "", "fillSz": "0",
        "fillTime": "", "instId": inst_id(market) if market else order.symbol,
        "instType": _INST_TYPES.get(order.kind, "SWAP"), "lever": "10",
        "ordId": order.order_id, "ordType": _ORD_TYPES.get(order.type, "limit"),
        "pnl": "0", "posSide": "net", "px": order.price or "", "pxType": "", "pxUsd": "",
        "pxVol": "", "quickMgnType": "", "rebate": "0", "rebateCcy": "USDT",
        "reduceOnly": "false", "side": order.side, "slOrdPx": "", "slTriggerPx": "",
        "slTriggerPxType": "", "source": "", "state": _state(order), "stpId": "",
        "stpMode": "", "sz": _contracts(order.amount, market), "tag": "",
        "tdMode": "cross" if order.kind == "linear" else "cash", "tgtCcy": "",
        "tpOrdPx": "", "tpTriggerPx": "", "tpTriggerPxType": "", "tradeId": "",
        "uTime": str(order.timestamp),
    }  # fmt: skip


def _signed(fake: FakeExchangeServer, headers) -> tuple[int, dict] | None:
    if headers.get("OK-ACCESS-KEY") != fake.api_key or not headers.get("OK-ACCESS-SIGN"):
        return _fail("50111", "Invalid OK-ACCESS-KEY", 401)
    if headers.get("OK-ACCESS-PASSPHRASE") != fake.passphrase:
        return _fail("50105", "Invalid OK-ACCESS-PASSPHRASE", 401)
    return None


def _orders_of(state: VenueState, query: dict, want_open: bool) -> list[FakeOrder]:
    kind = _KINDS.get(query.get("instType") or "")
    rows = []
    for o in state.orders:
        market = state.market_by_id(o.symbol, o.kind)
        if (o.status == "open") != want_open or market is None:
            continue
        if kind is not None and o.kind != kind:
            continue
        if query.get("instId") and inst_id(market) != query["instId"]:
            continue
        rows.append(o)
    return sorted(rows, key=lambda o: int(o.order_id), reverse=True)


def _page_after(rows: list, key, query: dict) -> list:
    """Newest-first rows, ``after`` (exclusive) and ``limit`` (<= 100) applied."""
    if query.get("after"):
        rows = [r for r in rows if key(r) < int(query["after"])]
    limit = min(int(query.get("limit") or PAGE_MAX), PAGE_MAX)
    return rows[:limit]


def _okx_route(fake: FakeExchangeServer, method, path, query, headers) -> tuple[int, dict]:
    state = fake.okx
    if path == "/api/v5/public/time":
        return 200, _ok([{"ts": str(int(time.time() * 1000))}])
    if path == "/api/v5/public/instruments":
        kind = _KINDS.get(query.get("instType") or "")
        return 200, _ok([_instrument(m) for m in state.markets if m.kind == kind])
    if path == "/api/v5/market/tickers":
        return 200, _ok(_tickers(state, query))
    if path == "/api/v5/public/mark-price":
        kind = _KINDS.get(query.get("instType") or "SWAP")
        rows = [
            {"instType": _INST_TYPES[t.kind], "instId": inst_id(m), "markPx": t.mark or t.last,
             "ts": str(t.time_ms)}
            for t in state.tickers
            if t.kind == kind and (m := state.market_by_id(t.symbol, t.kind)) is not None
        ]  # fmt: skip
        return 200, _ok(rows)
    denied = _signed(fake, headers)
    if denied is not None:
        return denied
    if path == "/api/v5/trade/orders-pending":
        rows = _page_after(_orders_of(state, query, True), lambda o: int(o.order_id), query)
        return 200, _ok([_order(state, o) for o in rows])
    if path == "/api/v5/trade/order":
        market = _find_market(state, query.get("instId") or "")
        for o in state.orders:
            if market is None or state.market_by_id(o.symbol, o.kind) is not market:
                continue
            if (query.get("ordId") and o.order_id == query["ordId"]) or (
                query.get("clOrdId") and o.client_order_id == query["clOrdId"]
            ):
                return 200, _ok([_order(state, o)])
        return _fail("51603", "Order does not exist")
    if path == "/api/v5/trade/cancel-order" and method == "POST":
        market = _find_market(state, query.get("instId") or "")
        for o in state.orders:
            if market is None or state.market_by_id(o.symbol, o.kind) is not market:
                continue
            if (query.get("ordId") and o.order_id == query["ordId"]) or (
                query.get("clOrdId") and o.client_order_id == query["clOrdId"]
            ):
                if o.status != "open":
                    break
                o.status = "canceled"
                row = {"clOrdId": o.client_order_id, "ordId": o.order_id, "sCode": "0",
                       "sMsg": "", "ts": str(NOW_MS)}  # fmt: skip
                return 200, _ok([row])
        row = {"clOrdId": query.get("clOrdId", ""), "ordId": query.get("ordId", ""),
               "sCode": "51400", "sMsg": "Order cancellation failed as the order has been "
               "filled, canceled or does not exist.", "ts": str(NOW_MS)}  # fmt: skip
        return 200, {"code": "1", "msg": "Operation failed.", "data": [row]}
    if path == "/api/v5/account/positions":
        return 200, _ok(_positions(state, query))
    if path == "/api/v5/account/balance":
        return 200, _ok([_balance(state)])
    if path in ("/api/v5/trade/fills", "/api/v5/trade/fills-history"):
        return _fills(state, path, query)
    if path == "/api/v5/account/config":
        return 200, _ok([{"acctLv": "2", "posMode": "net_mode", "uid": "1"}])
    return _fail("50000", f"fake: no route for {method} {path}", 404)


def _positions(state: VenueState, query: dict) -> list[dict]:
    rows = []
    for p in state.positions:
        market = state.market_by_id(p.symbol, p.kind)
        if market is None or p.kind != "linear":
            continue  # OKX positions: derivatives only
        if query.get("instType") and query["instType"] != "SWAP":
            continue
        if query.get("instId") and inst_id(market) not in query["instId"].split(","):
            continue
        rows.append(
            {
                "adl": "1", "availPos": "", "avgPx": p.entry_price, "cTime": str(NOW_MS),
                "ccy": market.quote, "instId": inst_id(market), "instType": "SWAP",
                "lever": "10", "liqPx": "", "markPx": p.entry_price, "mgnMode": "cross",
                "mgnRatio": "", "mmr": "0", "imr": "0", "notionalUsd": "0", "margin": "",
                "pos": _contracts(p.qty, market), "posCcy": "", "posId": f"9{len(rows)}",
                "posSide": "net", "upl": "0", "uplRatio": "0", "realizedPnl": "0",
                "fee": "0", "fundingFee": "0", "last": p.entry_price, "uTime": str(NOW_MS),
                "tradeId": "1", "bePx": p.entry_price, "idxPx": p.entry_price,
            }
        )  # fmt: skip
    return rows


def _balance(state: VenueState) -> dict:
    details = [
        {
            "availBal": b.free, "availEq": b.free, "cashBal": b.total, "ccy": b.currency,
            "crossLiab": "0", "disEq": "0", "eq": b.total, "eqUsd": "0", "fixedBal": "0",
            "frozenBal": b.used, "interest": "0", "isoEq": "0", "isoLiab": "0", "liab": "0",
            "maxLoan": "0", "mgnRatio": "", "notionalLever": "", "ordFrozen": b.used,
            "stgyEq": "0", "twap": "0", "uTime": str(NOW_MS), "upl": "0", "uplLiab": "0",
        }
        for b in state.balances
    ]  # fmt: skip
    return {"adjEq": "", "details": details, "imr": "", "isoEq": "0", "mgnRatio": "",
            "mmr": "", "notionalUsd": "", "ordFroz": "", "totalEq": "0",
            "uTime": str(NOW_MS)}  # fmt: skip


def _fills(state: VenueState, path: str, query: dict) -> tuple[int, dict]:
    """fills (3 days) and fills-history (3 months, instType required): newest first by
    billId, ``begin``/``end`` on ``ts``, ``after``/``limit`` paging."""
    history = path.endswith("fills-history")
    kind = _KINDS.get(query.get("instType") or "")
    if history and kind is None:
        return _fail("51000", "Parameter instType error")
    now = int(time.time() * 1000)
    oldest = now - (FILLS_HISTORY_DAYS if history else FILLS_DAYS) * DAY_MS
    begin = max(int(query.get("begin") or 0), oldest)
    end = int(query.get("end") or now)
    rows = []
    for t in state.trades:
        market = state.market_by_id(t.symbol, t.kind)
        if market is None or (kind is not None and t.kind != kind):
            continue
        if query.get("instId") and inst_id(market) != query["instId"]:
            continue
        if begin <= t.time_ms <= end:
            rows.append((t, market))
    rows.sort(key=lambda pair: pair[0].bill, reverse=True)
    page = _page_after(rows, lambda pair: pair[0].bill, query)
    return 200, _ok([_fill(t, market) for t, market in page])


def _fill(t, market: FakeMarket) -> dict:
    fee = str(-Decimal(t.fee)) if Decimal(t.fee) else "0"  # OKX: a charge is negative
    return {
        "side": t.side, "fillSz": _contracts(t.qty, market), "fillPx": t.price,
        "fillPxVol": "", "fillFwdPx": "", "fee": fee, "fillPnl": "0", "ordId": t.order_id,
        "feeRate": "-0.001", "instType": _INST_TYPES[t.kind], "fillPxUsd": "",
        "instId": inst_id(market), "clOrdId": t.client_order_id, "posSide": "net",
        "billId": str(t.bill), "fillMarkVol": "", "tag": "", "fillTime": str(t.time_ms),
        "execType": "M" if t.maker else "T", "fillIdxPx": "", "tradeId": t.trade_id,
        "fillMarkPx": "", "feeCcy": t.fee_currency, "ts": str(t.time_ms),
    }  # fmt: skip


def _tickers(state: VenueState, query: dict) -> list[dict]:
    kind = _KINDS.get(query.get("instType") or "")
    rows = []
    for t in state.tickers:
        market = state.market_by_id(t.symbol, t.kind)
        if market is None or t.kind != kind:
            continue
        rows.append(
            {
                "instType": _INST_TYPES[t.kind], "instId": inst_id(market), "last": t.last,
                "lastSz": "1", "askPx": t.last, "askSz": "1", "bidPx": t.last, "bidSz": "1",
                "open24h": t.last, "high24h": t.last, "low24h": t.last, "volCcy24h": "0",
                "vol24h": "0", "ts": str(t.time_ms), "sodUtc0": t.last, "sodUtc8": t.last,
            }
        )  # fmt: skip
    return rows
