"""The shared core without a server: decoding the API's documented shapes (including the
P&L and exposure contract of issue 15, whose endpoints are not served yet), the retry
policy's arithmetic, Retry-After, and request encoding."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from tradingstate_client import _core as core
from tradingstate_client import models as m
from tradingstate_client.errors import (
    ApiError,
    ClientError,
    Conflict,
    KillSwitchActive,
    RateLimited,
    RecoveryInProgress,
    ResponseFormatError,
    ServerError,
    ServiceUnavailable,
    TradingStateError,
    TransitionNotAllowed,
    TransportError,
    TransportTimeout,
    UnexpectedStatus,
    VersionConflict,
    error_class,
)
from tradingstate_client.retry import RetryPolicy, parse_retry_after

PNL = {
    "account": "paper-demo",
    "valuation_currency": "USDT",
    "as_of": "2026-03-01T12:00:00Z",
    "positions": [
        {
            "symbol": "BTC/USDT:USDT",
            "qty": "0.08",
            "avg_entry_price": "60000",
            "mark_price": "61000.5",
            "mark_time": "2026-03-01T11:59:58+00:00",
            "mark_stale": False,
            "realized_pnl": "12.5",
            "unrealized_pnl": "80.04",
            "fees": "1.25",
            "net_pnl": "91.29",
        }
    ],
    "totals": {
        "realized_pnl": "12.5",
        "unrealized_pnl": "80.04",
        "fees": "1.25",
        "net_pnl": "91.29",
    },
}

EXPOSURE = {
    "as_of": "2026-03-01T12:00:00Z",
    "valuation_currency": "USDT",
    "assets": [
        {
            "asset": "BTC",
            "net_qty": "0.5",
            "net_notional": "30500.25",
            "gross_notional": "42700.35",
            "by_account": {"paper-demo": {"net_qty": "0.7", "net_notional": "42700.35"}},
        }
    ],
    "totals": {"net_notional": "30500.25", "gross_notional": "42700.35"},
}


def test_pnl_contract_decodes_to_decimals_and_aware_times():
    pnl = m.decode(m.Pnl, PNL)
    (btc,) = pnl.positions
    assert btc.mark_price == Decimal("61000.5") and isinstance(btc.net_pnl, Decimal)
    assert btc.mark_time == datetime(2026, 3, 1, 11, 59, 58, tzinfo=UTC)
    assert pnl.totals.net_pnl == btc.realized_pnl + btc.unrealized_pnl - btc.fees
    assert pnl.as_of.tzinfo is not None and pnl.raw == PNL


def test_exposure_contract_decodes():
    exposure = m.decode(m.Exposure, EXPOSURE)
    assert exposure.assets[0].gross_notional == Decimal("42700.35")
    assert exposure.totals.net_notional == Decimal("30500.25")


def test_exposure_breakdowns_decode_to_typed_shares():
    # given: the server's ExposureShare, per account and per venue
    share = {"venue": "paper", "net_qty": "0.7", "net_notional": "42700.35",
             "gross_notional": None, "mark_stale": True}  # fmt: skip
    asset = {**EXPOSURE["assets"][0], "by_account": {"paper-demo": share},
             "by_venue": {"paper": {**share, "net_qty": "-1"}}}  # fmt: skip
    # when
    exposure = m.decode(m.Exposure, {**EXPOSURE, "assets": [asset]})
    # then: money is Decimal at every level
    by_account = exposure.assets[0].by_account["paper-demo"]
    assert isinstance(by_account, m.ExposureShare) and by_account.net_qty == Decimal("0.7")
    assert by_account.net_notional == Decimal("42700.35") and by_account.gross_notional is None
    assert by_account.mark_stale is True and by_account.venue == "paper"
    assert exposure.assets[0].by_venue["paper"].net_qty == Decimal("-1")
    with pytest.raises(ResponseFormatError, match=r"by_account\.paper-demo\.net_qty"):
        m.decode(m.Exposure, {**EXPOSURE, "assets": [{**asset, "by_account": {
            "paper-demo": {**share, "net_qty": "lots"}}}]})  # fmt: skip


def test_json_numbers_never_become_floats():
    data = core.json.loads(b'{"a": 0.1, "b": 3}', parse_float=Decimal)
    assert data == {"a": Decimal("0.1"), "b": 3}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("qty", "abc", "decimal"),
        ("qty", None, "null"),
        ("as_of", "2026-03-01T12:00:00", "zone"),  # naive: refused, never guessed
        ("as_of", 5, "ISO 8601"),
    ],
)
def test_a_wrong_shape_is_a_response_format_error_naming_the_field(field, value, message):
    bad = {**PNL, "positions": [{**PNL["positions"][0]}]}
    if field == "qty":
        bad["positions"][0]["qty"] = value
    else:
        bad[field] = value
    with pytest.raises(ResponseFormatError, match=message) as err:
        m.decode(m.Pnl, bad)
    assert field in str(err.value)


def test_missing_required_field_is_named_and_unknown_fields_are_kept():
    with pytest.raises(ResponseFormatError, match="missing field 'totals'"):
        m.decode(m.Pnl, {k: v for k, v in PNL.items() if k != "totals"})
    pnl = m.decode(m.Pnl, {**PNL, "new_figure": "1"})
    assert pnl.raw["new_figure"] == "1"


def test_page_reads_the_cursor_not_the_host():
    page = core.page_of(m.HaltedAccount)(
        {
            "next": "http://internal-host:9999/api/v1/x/?cursor=cD0xMjM%3D&page_size=2",
            "previous": None,
            "results": [],
        }
    )
    assert page.next_cursor == "cD0xMjM=" and page.previous_cursor is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1E-7"), "0.0000001"),
        (Decimal("60000.10"), "60000.1"),
        (Decimal("-0"), "0"),
        # trailing fractional zeros (Decimal arithmetic adds them) are not sent: the API
        # takes at most 18 places, and they change nothing
        (Decimal("0.001000000000") * Decimal("1.000000000"), "0.001"),
        (Decimal("60000.000000000000000000000"), "60000"),
        (Decimal("-0.000000000000000000000"), "0"),
        (Decimal("0E-30"), "0"),
        (Decimal("1E+3"), "1000"),
        (Decimal("100"), "100"),
        (Decimal("-2.50"), "-2.5"),
        (Decimal("1." + "0" * 40), "1"),  # more digits than the context's 28: not rounded
        (Decimal("1234567890123456789012345678901.1000"), "1234567890123456789012345678901.1"),
        (5, "5"),
        ("0.5", "0.5"),
    ],
)
def test_amounts_are_sent_as_plain_decimal_strings(value, text):
    assert core.amount(value, "q") == text


@pytest.mark.parametrize("value", [0.1, True, Decimal("NaN"), Decimal("Infinity"), None])
def test_floats_and_non_amounts_are_refused(value):
    with pytest.raises((TypeError, ValueError), match="q"):
        core.amount(value, "q")


@pytest.mark.parametrize(
    ("value", "text"), [(".", "%2E"), ("..", "%2E%2E"), ("...", "..."), ("a.b", "a.b")]
)
def test_dot_segments_are_encoded_so_no_url_normalisation_removes_them(value, text):
    assert core.seg(value, "client_order_id") == text


@pytest.mark.parametrize("value", ["", None, 5])
def test_a_bad_path_segment_names_its_field(value):
    with pytest.raises(ValueError, match=r"^symbol: "):
        core.seg(value, "symbol")


def test_paths_are_percent_encoded():
    call = core.set_position_call(
        "acct one", "BTC/USDT:USDT", qty="1", entry_price=None, expected_version=None, reason=None
    )
    assert call.path == "/api/v1/accounts/acct%20one/positions/BTC%2FUSDT%3AUSDT/"


def test_times_must_be_aware():
    assert core.aware(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2))), "at") == (
        "2026-01-01T00:00:00+02:00"
    )
    with pytest.raises(ValueError, match="at"):
        core.state_call("a", datetime(2026, 1, 1))


def test_which_writes_are_replay_safe():
    # replay-safe: the server recognises the resend (same client_order_id / trade_id)
    reg = core.register_order_call(
        "a", client_order_id="x", symbol="S", side="buy", quantity="1",
        type=None, price=None, strategy_id=None, reason=None,
    )  # fmt: skip
    assert reg.replay_safe and reg.success == {200, 201}
    fill = core.post_fill_call(
        "a", client_order_id="x", trade_id="t", quantity="1", price="1",
        fee=None, fee_currency=None, executed_at=None, reason=None,
    )  # fmt: skip
    assert fill.replay_safe and fill.success == {200, 201}
    # not replay-safe: a resend after a lost answer could undo a change made since, or be
    # refused although the first one was applied
    assert not core.transition_call("a", "x", "submitted").replay_safe
    assert not core.bulk_transition_call("a", []).replay_safe
    assert not core.reconcile_call("a", wait=True, dry_run=False, timeout=None).replay_safe
    put = dict(entry_price=None, reason=None)
    assert not core.set_position_call("a", "S", qty="1", expected_version=None, **put).replay_safe
    assert not core.set_position_call("a", "S", qty="1", expected_version=3, **put).replay_safe
    money = dict(free=None, used=None, reason=None)
    assert not core.set_balance_call(
        "a", "USDT", total="1", expected_version=None, **money
    ).replay_safe
    assert not core.killswitch_activate_call(
        "r", account=None, cancel_open_orders=False
    ).replay_safe
    assert not core.killswitch_deactivate_call("r", account=None).replay_safe
    assert core.killswitch_call().replay_safe and core.orders_call("a").replay_safe


def test_generated_client_order_ids_are_unique_and_valid():
    ids = {core.new_client_order_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) <= 64 and i.replace("-", "").isalnum() for i in ids)


# --- retry policy ------------------------------------------------------------------------


def test_retry_after_is_honoured_and_the_budget_bounds_it():
    policy = RetryPolicy(max_attempts=4, max_wait=10)
    kw = dict(resend_safe=True, status=429)
    assert policy.next_delay(attempt=1, waited=0, retry_after=3, **kw) == 3
    assert policy.next_delay(attempt=2, waited=3, retry_after=7, **kw) == 7  # exactly 10
    assert policy.next_delay(attempt=2, waited=3, retry_after=8, **kw) is None  # over budget
    assert policy.next_delay(attempt=4, waited=0, retry_after=1, **kw) is None  # attempts


def test_backoff_without_retry_after_grows_and_is_capped():
    policy = RetryPolicy(max_attempts=20, max_wait=1000, backoff_base=0.5, backoff_max=4)
    delays = [
        policy.next_delay(attempt=a, waited=0, resend_safe=True, status=503) for a in range(1, 8)
    ]
    assert all(d is not None for d in delays)
    assert 0.375 <= delays[0] <= 0.5 and 3 <= delays[-1] <= 4
    assert delays[3] > delays[0]


@pytest.mark.parametrize("status", [400, 404, 409, 423, 500, 502])
def test_other_statuses_are_not_retried(status):
    assert RetryPolicy().next_delay(attempt=1, waited=0, resend_safe=True, status=status) is None


def test_an_outcome_that_is_not_safe_to_resend_is_never_retried():
    policy = RetryPolicy()
    assert policy.next_delay(attempt=1, waited=0, resend_safe=False, status=429) is None
    assert policy.next_delay(attempt=1, waited=0, resend_safe=False, transport_error=True) is None
    assert policy.next_delay(attempt=1, waited=0, resend_safe=True, transport_error=True)


def test_retry_after_header_forms():
    now = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert parse_retry_after("5") == 5
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now=now) == 30
    assert parse_retry_after("Wed, 31 Dec 2025 23:00:00 GMT", now=now) == 0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1.5", 2),  # fractions are rounded up: never sooner than asked
        ("0.2", 1),
        ("3.0", 3),
        (" 7 ", 7),
        ("0", 0),
        ("²", None),  # str.isdigit() says yes, int() says no
        ("\u0661", None),
        ("\uff15", None),  # int() would take it: ASCII only
        ("5" * 5000, None),  # beyond int()'s digit limit
        ("1" * 40, None),
        ("1.", None),
        (".5", None),
        ("1e3", None),
        ("-1", None),
        ("+1", None),
        ("inf", None),
        ("NaN", None),
        ("0x10", None),
        ("\x00", None),
        ("Thu, 01 Jan 99999 00:00:30 GMT", None),
        ("Thu, 32 Foo 2026 00:00:30 GMT", None),
        ("A" * 100_000, None),
    ],
)
def test_retry_after_never_raises_and_never_shortens_the_wait(value, seconds):
    assert parse_retry_after(value) == seconds


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(max_wait=-1)


# --- error classes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (409, "conflict", Conflict),
        (409, "transition_not_allowed", TransitionNotAllowed),
        (409, "version_conflict", VersionConflict),
        (423, "kill_switch_active", KillSwitchActive),
        (429, "throttled", RateLimited),
        (503, "service_unavailable", ServiceUnavailable),
        (503, "reconciliation_in_progress", RecoveryInProgress),
        (413, "request_too_large", ClientError),
        (502, "http_502", ServerError),
        (400, "kill_switch_active", error_class(400, "validation_error")),  # status decides
    ],
)
def test_error_class_by_status_and_code(status, code, cls):
    assert error_class(status, code) is cls


@pytest.mark.parametrize("status", [101, 204, 302, 304, 399, 600])
def test_a_status_outside_4xx_and_5xx_has_no_api_error_class(status):
    # the client raises UnexpectedStatus (a ResponseFormatError) for those, never ServerError
    with pytest.raises(ValueError, match=str(status)):
        error_class(status, f"http_{status}")


# --- exceptions survive pickle and copy (a bot's worker pool, a task queue) --------------


def subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]


def every_error() -> list[TradingStateError]:
    api = dict(status=409, error="conflict", detail="no", fields={"quantity": ["differs"]},
               body={"error": "conflict", "detail": "no", "reason": "r"}, method="POST",
               url="/api/v1/x/", retry_after=2.0, attempts=3)  # fmt: skip
    errors = [
        TradingStateError("base"),
        TransportError("gone", method="GET", url="/api/v1/x/", attempts=2),
        TransportTimeout("late", method="GET", url="/api/v1/x/", attempts=1, maybe_sent=False),
        ResponseFormatError("bad", status=200, body={"a": 1}),
        UnexpectedStatus("moved", status=302, body="", location="/elsewhere"),
        *(cls(**api) for cls in [ApiError, *subclasses(ApiError)]),
    ]
    assert {type(e) for e in errors} == {TradingStateError, *subclasses(TradingStateError)}
    for error in errors:
        error.client_order_id = "cl-1"
        error.trade_id = "T-1"
    return errors


@pytest.mark.parametrize("error", every_error(), ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("how", ["pickle", "copy", "deepcopy"])
def test_every_error_round_trips_with_all_its_attributes(error, how):
    twin = {
        "pickle": lambda e: pickle.loads(pickle.dumps(e)),  # noqa: S301
        "copy": copy.copy,
        "deepcopy": copy.deepcopy,
    }[how](error)
    assert type(twin) is type(error) and str(twin) == str(error) and twin.args == error.args
    assert vars(twin) == vars(error) and vars(twin)
    assert twin.client_order_id == "cl-1" and twin.trade_id == "T-1"
