"""The bad-input catalogue, through the API and the admin correction forms: each entry is
refused with a clear 4xx naming the field (or the parse problem), and no table changes.

Some entries are also covered one by one in tests/integration/*/test_api_*.py; this is the
complete catalogue in one table.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.api_support import api_cache_table, make_bot, url  # noqa: F401
from tests.factories import AccountFactory, StaffFactory
from tests.reliability.support import dump_tables
from tradingstate.actors import Actor
from tradingstate.models import Instrument, Position
from tradingstate.services import order_register, order_transition, position_set

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]

GOOD = {
    "client_order_id": "new-1",
    "symbol": "BTC/USDT",
    "side": "buy",
    "type": "limit",
    "quantity": "0.05",
    "price": "50000",
}
FILL = {"client_order_id": "o1", "trade_id": "t-new", "quantity": "0.01", "price": "50000"}
JSON = "application/json"


def body(base: dict, **over) -> str:
    data = {**base, **over}
    return json.dumps({k: v for k, v in data.items() if v is not ...})


def raw(base: dict, key: str, literal: str) -> str:
    """``base`` with ``key`` set to a raw JSON literal (NaN, 1e309, ...)."""
    return body(base, **{key: "@@"}).replace('"@@"', literal)


def deep(n: int) -> str:
    return "[" * n + "]" * n


def years(n: int) -> str:
    return (timezone.now() + timedelta(days=365 * n)).isoformat()


# (id, method, path parts, body, content type, status, error code, field named)
ORDERS, FILLS = ("orders",), ("fills",)
TRANSITION = ("orders", "o1", "transition")
CATALOGUE = [
    # the envelope
    (
        "oversized-body",
        "post",
        ORDERS,
        body(GOOD, reason="x" * (2 * 1024 * 1024 + 10)),
        JSON,
        413,
        "request_too_large",
        None,
    ),
    (
        "charset-bz2",
        "post",
        ORDERS,
        body(GOOD),
        "application/json; charset=bz2_codec",
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "charset-utf16",
        "post",
        ORDERS,
        body(GOOD),
        "application/json; charset=utf-16",
        415,
        "unsupported_media_type",
        None,
    ),
    ("nested-10000", "post", ORDERS, deep(10_000), JSON, 400, "parse_error", None),
    (
        "nested-in-field",
        "post",
        ORDERS,
        raw(GOOD, "strategy_id", deep(10_000)),
        JSON,
        400,
        "parse_error",
        None,
    ),
    (
        "duplicate-keys",
        "post",
        ORDERS,
        '{"client_order_id": "a", "client_order_id": "b"}',
        JSON,
        400,
        "parse_error",
        None,
    ),
    ("not-json", "post", ORDERS, "client_order_id=a", JSON, 400, "parse_error", None),
    (
        "form-encoded",
        "post",
        ORDERS,
        "client_order_id=a",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
        None,
    ),
    ("array-body", "post", ORDERS, "[]", JSON, 400, None, None),
    # numbers
    ("qty-NaN", "post", ORDERS, raw(GOOD, "quantity", "NaN"), JSON, 400, "parse_error", None),
    (
        "qty-Infinity",
        "post",
        ORDERS,
        raw(GOOD, "quantity", "Infinity"),
        JSON,
        400,
        "parse_error",
        None,
    ),
    (
        "qty--Infinity",
        "post",
        ORDERS,
        raw(GOOD, "quantity", "-Infinity"),
        JSON,
        400,
        "parse_error",
        None,
    ),
    (
        "qty-str-NaN",
        "post",
        ORDERS,
        body(GOOD, quantity="NaN"),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    (
        "qty-str-inf",
        "post",
        ORDERS,
        body(GOOD, quantity="inf"),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    (
        "qty-1e309",
        "post",
        ORDERS,
        raw(GOOD, "quantity", "1e309"),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    (
        "qty-str-1e309",
        "post",
        ORDERS,
        body(GOOD, quantity="1e309"),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    (
        "qty--0",
        "post",
        ORDERS,
        body(GOOD, quantity="-0"),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    (
        "qty-0",
        "post",
        ORDERS,
        raw(GOOD, "quantity", "0"),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    (
        "qty-negative",
        "post",
        ORDERS,
        body(GOOD, quantity="-1"),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    (
        "qty-40-digits",
        "post",
        ORDERS,
        body(GOOD, quantity="1" * 40),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    (
        "qty-19-places",
        "post",
        ORDERS,
        body(GOOD, quantity="0." + "0" * 18 + "1"),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    (
        "qty-word",
        "post",
        ORDERS,
        body(GOOD, quantity="abc"),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    (
        "qty-comma",
        "post",
        ORDERS,
        body(GOOD, quantity="1,5"),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    (
        "qty-hex",
        "post",
        ORDERS,
        body(GOOD, quantity="0x10"),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    (
        "qty-underscore",
        "post",
        ORDERS,
        body(GOOD, quantity="1_000"),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    (
        "qty-spaces",
        "post",
        ORDERS,
        body(GOOD, quantity=" 1 "),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    (
        "qty-bool",
        "post",
        ORDERS,
        raw(GOOD, "quantity", "true"),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    (
        "qty-object",
        "post",
        ORDERS,
        raw(GOOD, "quantity", '{"v": 1}'),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    (
        "price-negative",
        "post",
        ORDERS,
        body(GOOD, price="-50000"),
        JSON,
        400,
        "validation_error",
        "price",
    ),
    (
        "price-NaN-string",
        "post",
        ORDERS,
        body(GOOD, price="NaN"),
        JSON,
        400,
        "validation_error",
        "price",
    ),
    # client_order_id
    (
        "coid-empty",
        "post",
        ORDERS,
        body(GOOD, client_order_id=""),
        JSON,
        400,
        "validation_error",
        "client_order_id",
    ),
    (
        "coid-too-long",
        "post",
        ORDERS,
        body(GOOD, client_order_id="a" * 65),
        JSON,
        400,
        "validation_error",
        "client_order_id",
    ),
    (
        "coid-NUL",
        "post",
        ORDERS,
        body(GOOD, client_order_id="ab\u0000c"),
        JSON,
        400,
        "validation_error",
        "client_order_id",
    ),
    (
        "coid-RTL",
        "post",
        ORDERS,
        body(GOOD, client_order_id="abc\u202edef"),
        JSON,
        400,
        "validation_error",
        "client_order_id",
    ),
    (
        "coid-space",
        "post",
        ORDERS,
        body(GOOD, client_order_id="a b"),
        JSON,
        400,
        "validation_error",
        "client_order_id",
    ),
    (
        "coid-trailing-space",
        "post",
        ORDERS,
        body(GOOD, client_order_id="abc "),
        JSON,
        400,
        "validation_error",
        "client_order_id",
    ),
    (
        "coid-number",
        "post",
        ORDERS,
        raw(GOOD, "client_order_id", "123"),
        JSON,
        400,
        "validation_error",
        "client_order_id",
    ),
    # mass assignment
    (
        "mass-status",
        "post",
        ORDERS,
        body(GOOD, status="filled"),
        JSON,
        400,
        "validation_error",
        "status",
    ),
    (
        "mass-filled_qty",
        "post",
        ORDERS,
        body(GOOD, filled_qty="0.05"),
        JSON,
        400,
        "validation_error",
        "filled_qty",
    ),
    (
        "mass-version",
        "post",
        ORDERS,
        raw(GOOD, "version", "99"),
        JSON,
        400,
        "validation_error",
        "version",
    ),
    (
        "mass-account",
        "post",
        ORDERS,
        body(GOOD, account="acct-b"),
        JSON,
        400,
        "validation_error",
        "account",
    ),
    (
        "mass-is_staff",
        "post",
        ORDERS,
        raw(GOOD, "is_staff", "true"),
        JSON,
        400,
        "validation_error",
        "is_staff",
    ),
    (
        "mass-origin",
        "post",
        ORDERS,
        body(GOOD, origin="reconciliation"),
        JSON,
        400,
        "validation_error",
        "origin",
    ),
    (
        "mass-transition-quantity",
        "post",
        TRANSITION,
        body({"status": "partially_filled", "filled_qty": "0.01"}, quantity="9"),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    # symbols and choices
    (
        "unknown-symbol",
        "post",
        ORDERS,
        body(GOOD, symbol="DOGE/USDT"),
        JSON,
        400,
        "validation_error",
        "symbol",
    ),
    (
        "symbol-spaces",
        "post",
        ORDERS,
        body(GOOD, symbol=" BTC/USDT"),
        JSON,
        400,
        "validation_error",
        "symbol",
    ),
    (
        "side-unknown",
        "post",
        ORDERS,
        body(GOOD, side="long"),
        JSON,
        400,
        "validation_error",
        "side",
    ),
    (
        "missing-quantity",
        "post",
        ORDERS,
        body(GOOD, quantity=...),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    # fills
    (
        "fill-larger-than-order",
        "post",
        FILLS,
        body(FILL, quantity="1"),
        JSON,
        409,
        "overfill",
        "quantity",
    ),
    (
        "fill-plus-10-years",
        "post",
        FILLS,
        body(FILL, executed_at=years(10)),
        JSON,
        400,
        "validation_error",
        "executed_at",
    ),
    (
        "fill-minus-10-years",
        "post",
        FILLS,
        body(FILL, executed_at=years(-10)),
        JSON,
        400,
        "validation_error",
        "executed_at",
    ),
    (
        "fill-year-9999",
        "post",
        FILLS,
        body(FILL, executed_at="9999-12-31T23:59:59Z"),
        JSON,
        400,
        "validation_error",
        "executed_at",
    ),
    (
        "fill-naive-time",
        "post",
        FILLS,
        body(FILL, executed_at="2026-01-01T00:00:00"),
        JSON,
        400,
        "validation_error",
        "executed_at",
    ),
    (
        "fill-trade-id-NUL",
        "post",
        FILLS,
        body(FILL, trade_id="t\u0000"),
        JSON,
        400,
        "validation_error",
        "trade_id",
    ),
    (
        "fill-qty-NaN",
        "post",
        FILLS,
        body(FILL, quantity="NaN"),
        JSON,
        400,
        "validation_error",
        "quantity",
    ),
    (
        "fill-mass-order",
        "post",
        FILLS,
        raw(FILL, "order", "1"),
        JSON,
        400,
        "validation_error",
        "order",
    ),
    # transitions
    (
        "transition-filled-qty-over",
        "post",
        TRANSITION,
        body({"status": "partially_filled", "filled_qty": "1"}),
        JSON,
        400,
        "validation_error",
        "filled_qty",
    ),
    (
        "transition-filled-qty--0",
        "post",
        TRANSITION,
        body({"status": "partially_filled", "filled_qty": "-0"}),
        JSON,
        400,
        "validation_error",
        "filled_qty",
    ),
    (
        "transition-version-string",
        "post",
        TRANSITION,
        body({"status": "cancelled", "expected_version": "abc"}),
        JSON,
        400,
        "validation_error",
        "expected_version",
    ),
    (
        "transition-status-unknown",
        "post",
        TRANSITION,
        body({"status": "done"}),
        JSON,
        400,
        "validation_error",
        "status",
    ),
    # books
    (
        "position-qty-Infinity",
        "put",
        ("positions", "BTC%2FUSDT"),
        raw({}, "qty", "Infinity"),
        JSON,
        400,
        "parse_error",
        None,
    ),
    (
        "position-qty-1e309",
        "put",
        ("positions", "BTC%2FUSDT"),
        body({}, qty="1e309"),
        JSON,
        400,
        "validation_error",
        "qty",
    ),
    (
        "position-mass-version",
        "put",
        ("positions", "BTC%2FUSDT"),
        body({}, qty="1", version=5),
        JSON,
        400,
        "validation_error",
        "version",
    ),
    (
        "balance-total-40-digits",
        "put",
        ("balances", "USDT"),
        body({}, total="9" * 40),
        JSON,
        400,
        "validation_error",
        "total",
    ),
    (
        "balance-currency-RTL",
        "put",
        ("balances", "US\u202eDT"),
        body({}, total="1"),
        JSON,
        400,
        "validation_error",
        "currency",
    ),
]


@pytest.fixture
def book():
    account = AccountFactory(name="acct-a")
    AccountFactory(name="acct-b")
    Instrument.objects.create(account=account, symbol="BTC/USDT", base="BTC", quote="USDT")
    actor = Actor.system("tests")
    order_register(account=account, client_order_id="o1", symbol="BTC/USDT", side="buy",
                   quantity="0.05", price="50000", actor=actor)  # fmt: skip
    order_transition(account=account, client_order_id="o1", to_status="submitted", actor=actor)
    position_set(account=account, symbol="BTC/USDT", qty="0.05", actor=actor)
    client, _ = make_bot("alpha", account)
    return account, client


@pytest.mark.bound(120)
def test_bad_input_catalogue_refused_with_the_field_named_and_nothing_changed(book, figure):
    account, client = book
    before = dump_tables()
    failures = []
    for case_id, method, parts, data, content_type, status, code, field in CATALOGUE:
        response = client.generic(
            method.upper(), url(account, *parts), data.encode("utf-8"), content_type
        )
        try:
            assert response.status_code == status, response.status_code
            payload = response.json()
            assert {"error", "detail", "fields"} <= set(payload), payload
            assert payload["detail"], payload
            if code:
                assert payload["error"] == code, payload["error"]
            if field:
                named = set(payload["fields"]) | {k.split(".")[0] for k in payload["fields"]}
                assert field in named or field in payload["detail"], payload
        except AssertionError as exc:
            failures.append((case_id, str(exc), response.content[:300]))
        if dump_tables() != before:
            failures.append((case_id, "tables changed", response.content[:300]))
            before = dump_tables()
    # a huge page size is capped, not an error, and changes nothing
    listing = client.get(url(account, "orders") + f"?page_size={10**9}")
    assert listing.status_code == 200 and len(listing.json()["results"]) <= 1000
    assert failures == [], "\n".join(map(str, failures))
    assert dump_tables() == before
    figure(ops=len(CATALOGUE) + 1, refused=len(CATALOGUE), repairs=0, lost=0, duplicates=0)


ADMIN_CASES = [
    ("qty-NaN", {"qty": "NaN"}, "qty"),
    ("qty-Infinity", {"qty": "Infinity"}, "qty"),
    ("qty-1e309", {"qty": "1e309"}, "qty"),
    ("qty-40-digits", {"qty": "1" * 40}, "qty"),
    ("qty-19-places", {"qty": "0." + "0" * 18 + "1"}, "qty"),
    ("qty-word", {"qty": "abc"}, "qty"),
    ("qty-empty", {"qty": ""}, "qty"),
    ("entry-negative", {"entry_price": "-1"}, "entry_price"),
    ("reason-empty", {"reason": "   "}, "reason"),
    ("version-string", {"version": "abc"}, "version"),
]


@pytest.mark.bound(60)
def test_admin_correction_form_refuses_bad_input_and_changes_nothing(book, client, figure):
    account, _ = book
    client.force_login(StaffFactory(username="root", is_superuser=True))
    position = Position.objects.get(account=account, symbol="BTC/USDT")
    path = f"/admin/tradingstate/position/{position.pk}/correct/"
    before = dump_tables()
    failures = []
    for case_id, over, field in ADMIN_CASES:
        data = {"qty": "0.07", "entry_price": "", "reason": "fix", "version": position.version,
                **over}  # fmt: skip
        response = client.post(path, data)
        form = (
            response.context["form"] if response.status_code == 200 and response.context else None
        )
        if form is None or field not in form.errors:
            failures.append((case_id, response.status_code, form.errors if form else None))
        if dump_tables() != before:
            failures.append((case_id, "tables changed"))
            before = dump_tables()
    assert failures == [], failures
    figure(ops=len(ADMIN_CASES), refused=len(ADMIN_CASES), repairs=0, lost=0, duplicates=0)
