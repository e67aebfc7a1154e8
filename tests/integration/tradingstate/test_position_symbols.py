"""D7 (issue 13): a new position's symbol follows the rule a bot's new order follows: one of
the account's instruments when it lists any, and always the strict ccxt unified syntax."""

from decimal import Decimal

import pytest

from tests.api_support import (
    api_cache_table,  # noqa: F401  (session fixture)
    assert_error,
    make_bot,
    order_body,
    two_accounts,
    url,
)
from tradingstate.actors import Actor
from tradingstate.models import Instrument, Order, Position
from tradingstate.rules.values import SYMBOL_SYNTAX_INVALID, UNKNOWN_SYMBOL
from tradingstate.services import position_set

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]

HOSTILE = [
    "BTC%01%2FUSDT",  # (refused earlier, by the framing middleware: a control character)
    "%F0%9F%9A%80%2FUSDT",  # an emoji base
    "BTC%252FUSDT",  # double-encoded: arrives as 'BTC%2FUSDT'
    "ETHUSD",  # no quote
    "BTC%2FUSDT%20",  # trailing space
    "btc%2Fusdt%3A",  # empty settle
]


@pytest.fixture
def setup():
    a, _b = two_accounts()
    client, _ = make_bot("alpha", a)
    return a, client


@pytest.mark.parametrize("encoded", HOSTILE)
def test_hostile_symbols_never_become_positions(setup, encoded):
    a, client = setup
    response = client.put(url(a, "positions", encoded), {"qty": "1"}, format="json")
    assert response.status_code == 400, response.content
    assert not Position.objects.exists()


def test_with_instruments_a_new_position_needs_one_of_them(setup):
    a, client = setup
    Instrument.objects.create(account=a, symbol="BTC/USDT", base="BTC", quote="USDT")
    body = assert_error(
        client.put(url(a, "positions", "ETH%2FUSDT"), {"qty": "1"}, format="json"),
        400,
        "validation_error",
        fields={"symbol"},
    )
    assert body["fields"]["symbol"] == [UNKNOWN_SYMBOL.format(symbol="ETH/USDT", account=a.name)]
    ok = client.put(url(a, "positions", "BTC%2FUSDT"), {"qty": "1"}, format="json")
    assert ok.status_code == 200 and Position.objects.get().qty == Decimal(1)


def test_orders_and_positions_share_the_syntax(setup):
    a, client = setup
    order = client.post(url(a, "orders"), order_body(symbol="ETHUSD"), format="json")
    position = client.put(url(a, "positions", "ETHUSD"), {"qty": "1"}, format="json")
    for response in (order, position):
        body = assert_error(response, 400, "validation_error", fields={"symbol"})
        assert body["fields"]["symbol"] == [SYMBOL_SYNTAX_INVALID]
    assert not Order.objects.exists() and not Position.objects.exists()


def test_an_existing_position_keeps_its_symbol(setup):
    # a venue-only symbol adopted by the reconciler can still be corrected
    a, _ = setup
    Position.objects.create(account=a, symbol="WEIRD-PERP", qty=Decimal(2))
    moved = position_set(account=a, symbol="WEIRD-PERP", qty="0", actor=Actor.system("t"))
    assert moved.qty == 0
