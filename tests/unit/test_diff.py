from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciliation import diff as d
from tests.unit.plans import apply_plans
from tradingstate.exchanges import base as ex

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(minutes=5)
CFG = d.DiffConfig(now=NOW, grace_seconds=10, amount_steps={"BTC/USDT": Decimal("0.001")})


def lo(coid, status="submitted", filled="0", qty="1", exid="", updated=OLD, version=1, id_=None):
    return d.LocalOrder(
        id=id_ or abs(hash(coid)) % 10**6,
        client_order_id=coid,
        exchange_order_id=exid,
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        quantity=Decimal(qty),
        price=Decimal("100"),
        filled_qty=Decimal(filled),
        avg_fill_price=None,
        status=status,
        updated_at=updated,
        version=version,
    )


def xo(coid, exid=None, status=ex.OPEN, filled="0", amount="1", ts=OLD):
    return ex.ExchangeOrder(
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        amount=Decimal(amount),
        filled=Decimal(filled),
        status=status,
        exchange_order_id=exid or f"X{coid}",
        client_order_id=coid,
        price=Decimal("100"),
        timestamp=ts,
    )


def snap(orders=(), positions=(), balances=(), errors=None):
    return d.ExchangeSnapshot(
        orders=list(orders), positions=list(positions), balances=list(balances), errors=errors or {}
    )


def test_runbook_scenario_gives_the_runbook_fields():
    local = d.LocalSnapshot(
        orders=[lo("abc123")],
        positions=[d.LocalPosition(1, "BTC/USDT", Decimal("0.05"), None, 1)],
    )
    exchange = snap(
        orders=[xo("def456")],
        positions=[ex.ExchangePosition("BTC/USDT", Decimal("0.08"))],
    )
    findings = d.diff(local, exchange, CFG, {"abc123": d.NOT_FOUND})
    details = [f.detail for f in findings]
    assert {
        "type": "missing_local_order",
        "client_order_id": "def456",
        "exchange_status": "open",
    } in details
    assert {
        "type": "stale_local_order",
        "client_order_id": "abc123",
        "local_status": "submitted",
    } in details
    assert {
        "type": "position_mismatch",
        "symbol": "BTC/USDT",
        "local_qty": "0.05",
        "exchange_qty": "0.08",
        "detail": "Quantity mismatch",
    } in details
    stale = next(f for f in findings if f.type == "stale_local_order")
    assert stale.repair.values["status"] == "cancelled"  # the exchange cannot say: cancelled


def test_stale_needs_a_single_order_answer():
    local = d.LocalSnapshot(orders=[lo("a")])
    assert d.diff(local, snap(), CFG, {}) == []  # bulk "not found" alone is never enough
    assert [o.client_order_id for o in d.stale_candidates(local, snap(), CFG)] == ["a"]


def test_stale_resolves_to_true_end_state():
    local = d.LocalSnapshot(
        orders=[lo("f"), lo("c", status="partially_filled", filled="0.4"), lo("e")]
    )
    lookups = {
        "f": xo("f", status=ex.CLOSED, filled="1"),
        "c": xo("c", status=ex.CANCELED, filled="0.5"),
        "e": xo("e", status=ex.EXPIRED),
    }
    got = {f.key: f.repair.values for f in d.diff(local, snap(), CFG, lookups)}
    assert got["f"]["status"] == "filled" and got["f"]["filled_qty"] == "1"
    assert got["c"]["status"] == "cancelled" and got["c"]["filled_qty"] == "0.5"
    assert got["e"]["status"] == "expired"


def test_partially_filled_expired_becomes_cancelled():
    local = d.LocalSnapshot(orders=[lo("p", status="partially_filled", filled="0.2")])
    [f] = d.diff(local, snap(), CFG, {"p": xo("p", status=ex.EXPIRED, filled="0.2")})
    assert f.repair.values["status"] == "cancelled"


def test_grace_window_protects_recent_orders():
    recent = NOW - timedelta(seconds=3)
    local = d.LocalSnapshot(orders=[lo("new", updated=recent)])
    assert d.stale_candidates(local, snap(), CFG) == []
    assert d.diff(local, snap(orders=[xo("venue-new", ts=recent)]), CFG, {}) == []


def test_open_on_lookup_is_not_stale():
    local = d.LocalSnapshot(orders=[lo("a")])
    assert d.diff(local, snap(), CFG, {"a": xo("a")}) == []


def test_lookup_error_is_a_fetch_error_without_repair():
    local = d.LocalSnapshot(orders=[lo("a")])
    [f] = d.diff(local, snap(), CFG, {"a": "RateLimited: slow down"})
    assert f.type == "fetch_error" and f.repair is None


def test_order_state_mismatch_and_terminal_local():
    local = d.LocalSnapshot(orders=[lo("a"), lo("b", status="cancelled")])
    exchange = snap(orders=[xo("a", filled="0.3"), xo("b")])
    got = {f.key: f for f in d.diff(local, exchange, CFG, {})}
    assert got["a"].type == "order_state_mismatch"
    assert got["a"].repair.values == {
        "status": "partially_filled",
        "filled_qty": "0.3",
        "avg_fill_price": None,
        "exchange_order_id": "Xa",
    }
    assert got["b"].repair is None and "terminal" in got["b"].note


def test_positions_both_directions_and_step_tolerance():
    local = d.LocalSnapshot(
        positions=[
            d.LocalPosition(1, "BTC/USDT", Decimal("0.0505"), None, 1),  # within step
            d.LocalPosition(2, "ETH/USDT", Decimal("2"), None, 1),  # gone on exchange
        ]
    )
    exchange = snap(
        positions=[
            ex.ExchangePosition("BTC/USDT", Decimal("0.051")),
            ex.ExchangePosition("SOL/USDT", Decimal("-3")),  # unknown locally
        ]
    )
    got = {f.key: f.detail for f in d.diff(local, exchange, CFG, {})}
    assert set(got) == {"ETH/USDT", "SOL/USDT"}
    assert got["ETH/USDT"]["exchange_qty"] == "0"
    assert got["SOL/USDT"]["local_qty"] == "0" and got["SOL/USDT"]["exchange_qty"] == "-3"


def test_balances_tolerance_and_vanished_currency():
    cfg = d.DiffConfig(now=NOW, balance_tolerances={"BTC": Decimal("0.0001")})
    local = d.LocalSnapshot(
        balances=[
            d.LocalBalance(1, "USDT", Decimal("1000"), Decimal(0), Decimal("1000"), 1),
            d.LocalBalance(2, "BTC", Decimal("1"), Decimal(0), Decimal("1"), 1),
            d.LocalBalance(3, "ETH", Decimal("5"), Decimal(0), Decimal("5"), 1),
        ]
    )
    exchange = snap(
        balances=[
            ex.ExchangeBalance("USDT", Decimal("1000.005"), Decimal(0), Decimal("1000.005")),
            ex.ExchangeBalance("BTC", Decimal("1.001"), Decimal(0), Decimal("1.001")),
        ]
    )
    got = {f.key: f.detail for f in d.diff(local, exchange, cfg, {})}
    assert set(got) == {"BTC", "ETH"}
    assert got["BTC"]["detail"] == "Difference of 0.001"
    assert got["ETH"]["exchange_total"] == "0"


def test_failed_entity_gives_fetch_error_and_no_repairs():
    local = d.LocalSnapshot(
        orders=[lo("a")], positions=[d.LocalPosition(1, "BTC/USDT", Decimal(1), None, 1)]
    )
    exchange = d.ExchangeSnapshot(
        orders=None,
        positions=None,
        balances=[],
        errors={"orders": "timeout", "positions": "timeout"},
    )
    findings = d.diff(local, exchange, CFG, {"a": d.NOT_FOUND})
    assert [f.type for f in findings] == ["fetch_error", "fetch_error"]
    assert all(f.repair is None for f in findings)


def test_spot_accounts_skip_positions():
    cfg = d.DiffConfig(now=NOW, check_positions=False)
    local = d.LocalSnapshot(positions=[d.LocalPosition(1, "BTC/USDT", Decimal(1), None, 1)])
    assert d.diff(local, snap(), cfg, {}) == []


def test_venue_order_without_client_id_gets_safe_local_id():
    order = xo("", exid="12 34/5")
    assert d.local_id_for(order) == "ex-12_34_5"


# --- property: repairs converge, and never touch an entity whose fetch failed -------------
amount = st.decimals(min_value=0, max_value=10, places=3, allow_nan=False, allow_infinity=False)
signed = st.decimals(min_value=-10, max_value=10, places=3, allow_nan=False, allow_infinity=False)
symbols = st.sampled_from(["BTC/USDT", "ETH/USDT", "SOL/USDT"])
currencies = st.sampled_from(["USDT", "BTC", "ETH"])
statuses = st.sampled_from(["pending", "submitted", "partially_filled", "filled", "cancelled"])
ends = st.sampled_from([ex.OPEN, ex.CLOSED, ex.CANCELED, ex.EXPIRED, "missing"])


@st.composite
def worlds(draw):
    local_orders, venue_orders, lookups = [], [], {}
    for i in range(draw(st.integers(0, 6))):
        coid = f"o{i}"
        qty = Decimal("1")
        status = draw(statuses)
        lfilled = {"partially_filled": Decimal("0.3"), "filled": qty}.get(status, Decimal(0))
        if draw(st.booleans()):
            local_orders.append(lo(coid, status=status, filled=str(lfilled), id_=i + 1))
        end = draw(ends)
        if end == "missing":
            lookups[coid] = d.NOT_FOUND
            continue
        xfilled = {
            ex.CLOSED: qty,
            ex.OPEN: draw(st.sampled_from([Decimal(0), Decimal("0.5")])),
        }.get(end, Decimal("0.5"))
        order = xo(coid, status=end, filled=str(xfilled))
        lookups[coid] = order
        if end == ex.OPEN:
            venue_orders.append(order)
    positions = {s: draw(signed) for s in draw(st.sets(symbols))}
    local_positions = [
        d.LocalPosition(i + 1, s, draw(signed), None, 1)
        for i, s in enumerate(draw(st.sets(symbols)))
    ]
    balances = {c: draw(amount) for c in draw(st.sets(currencies))}
    local_balances = [
        d.LocalBalance(i + 1, c, v, Decimal(0), v, 1)
        for i, (c, v) in enumerate((c, draw(amount)) for c in draw(st.sets(currencies)))
    ]
    failed = draw(st.sets(st.sampled_from(["orders", "positions", "balances"])))
    exchange = d.ExchangeSnapshot(
        orders=None if "orders" in failed else venue_orders,
        positions=None
        if "positions" in failed
        else [ex.ExchangePosition(s, q) for s, q in positions.items()],
        balances=None
        if "balances" in failed
        else [ex.ExchangeBalance(c, v, Decimal(0), v) for c, v in balances.items()],
        errors={e: "boom" for e in failed},
    )
    local = d.LocalSnapshot(orders=local_orders, positions=local_positions, balances=local_balances)
    return local, exchange, lookups


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_applying_every_repair_converges(world):
    local, exchange, lookups = world
    cfg = d.DiffConfig(now=NOW, grace_seconds=10, balance_tolerance=Decimal("0.01"))
    findings = d.diff(local, exchange, cfg, lookups)
    plans = [f.repair for f in findings if f.repair]
    # no repair ever touches an entity whose fetch failed
    kinds = {
        "order_create": "orders",
        "order_state": "orders",
        "position_set": "positions",
        "balance_set": "balances",
    }
    assert not any(kinds[p.kind] in exchange.errors for p in plans)
    after = apply_plans(local, plans, now=OLD)
    again = [
        f
        for f in d.diff(after, exchange, cfg, lookups)
        if f.type != "fetch_error" and f.repair is not None
    ]
    assert again == [], again


def test_the_diff_is_exact_on_38_digit_amounts_whatever_the_callers_context():
    # a hedge-mode venue lists two legs of one symbol; their sum has 38 digits, which
    # Python's default context (28 digits) rounds: a desync that is not there
    leg = Decimal("12345678901234567890.123456789012345678")
    local = d.LocalSnapshot(
        positions=[
            d.LocalPosition(
                1, "BTC/USDT", Decimal("12345678901234567890.123456789012345679"), None, 1
            )
        ]
    )
    exchange = snap(
        positions=[
            ex.ExchangePosition("BTC/USDT", leg),
            ex.ExchangePosition("BTC/USDT", Decimal("0.000000000000000001")),
        ]
    )
    cfg = d.DiffConfig(now=NOW)
    with localcontext() as ctx:
        ctx.prec = 28  # a caller's (the default) context
        assert d.diff(local, exchange, cfg, {}) == []
        # and a true desync in the last place is found
        off = d.LocalSnapshot(positions=[d.LocalPosition(1, "BTC/USDT", leg, None, 1)])
        assert [f.key for f in d.diff(off, exchange, cfg, {})] == ["BTC/USDT"]
