"""Every operation the live server publishes in /api/schema/ has a client method, in both
clients, with the same signature; the endpoints other branches are still building are
checked against the live server as soon as the schema lists them."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import tradingstate_client as tc
from tradingstate_client import OPERATIONS, AsyncClient, Client, NotFound

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def normalized(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def served_operations(schema: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), normalized(path))
        for path, item in schema["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


@pytest.fixture(scope="module")
def schema(live):
    with Client(live.base_url, live.token) as ts:
        return ts.schema()


def test_every_served_operation_is_covered_by_a_client_method(schema):
    # given
    covered = {(method, normalized(path)): name for (method, path), name in OPERATIONS.items()}
    # when
    missing = sorted(served_operations(schema) - set(covered))
    # then
    assert not missing, f"operations served but not covered by the client: {missing}"
    assert len(served_operations(schema)) >= 18


def parameters(function) -> inspect.Signature:
    """The signature without its return annotation (``X`` vs an awaited ``X``)."""
    return inspect.signature(function).replace(return_annotation=inspect.Signature.empty)


def test_every_mapped_method_exists_on_both_clients_with_the_same_signature():
    for name in set(OPERATIONS.values()):
        sync, asynchronous = getattr(Client, name), getattr(AsyncClient, name)
        assert parameters(sync) == parameters(asynchronous), name
        assert inspect.iscoroutinefunction(asynchronous), name
    public = {n for n in dir(Client) if not n.startswith("_")} - {"close", "config"}
    apublic = {n for n in dir(AsyncClient) if not n.startswith("_")} - {"aclose", "config"}
    assert public == apublic
    for name in public:
        assert parameters(getattr(Client, name)) == parameters(getattr(AsyncClient, name)), name


def _served(schema, method: str, path: str) -> bool:
    return (method, normalized(path)) in served_operations(schema)


def test_fills_list_when_served(live, schema):
    with Client(live.base_url, live.token) as ts:
        if not _served(schema, "GET", "/api/v1/accounts/{account}/fills/"):
            with pytest.raises(tc.ApiError) as err:  # POST only today: 405
                ts.fills("paper-demo")
            assert err.value.status == 405
            return
        # SOL/USDT: the symbol test_client_orders sets a position of on this account anyway
        order = ts.register_order("client-spare", symbol="SOL/USDT", side="buy",
                                  quantity="2", price="3")  # fmt: skip
        ts.transition("client-spare", order.client_order_id, "submitted")
        for i in range(3):
            ts.post_fill("client-spare", client_order_id=order.client_order_id,
                         trade_id=f"FL-{i}-{order.client_order_id}", quantity="0.5",
                         price="3")  # fmt: skip
        fills = list(ts.iter_fills("client-spare", order=order.client_order_id, page_size=2))
        assert sorted(f.trade_id for f in fills) == sorted(
            f"FL-{i}-{order.client_order_id}" for i in range(3)
        )
        assert all(f.quantity == Decimal("0.5") and f.executed_at.tzinfo for f in fills)


@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        ("GET", "/api/v1/accounts/{account}/pnl/", lambda ts: ts.pnl("paper-demo")),
        (
            "GET",
            "/api/v1/accounts/{account}/pnl/history/",
            lambda ts: ts.pnl_history("paper-demo", start=datetime.now(UTC) - timedelta(days=1)),
        ),
        ("GET", "/api/v1/exposure/", lambda ts: ts.exposure()),
        (
            "GET",
            "/api/v1/accounts/{account}/state/",
            lambda ts: ts.state("paper-demo", datetime.now(UTC)),
        ),
        ("GET", "/api/v1/discrepancies/stats/", lambda ts: ts.discrepancy_stats()),
    ],
)
def test_endpoints_of_other_issues_when_served(live, schema, method, path, call):
    """Not served yet: the API's JSON 404 arrives as NotFound. Served: it parses."""
    with Client(live.base_url, live.token) as ts:
        if _served(schema, method, path):
            assert call(ts) is not None  # typed: a wrong shape raises ResponseFormatError
        else:
            with pytest.raises(NotFound) as err:
                call(ts)
            assert err.value.error == "not_found" and "No API endpoint" in err.value.detail
