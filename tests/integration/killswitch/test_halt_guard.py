"""The registration's one-statement guard (PostgreSQL) and the kill switch's rule agree.

``order_register_guarded`` on PostgreSQL decides in SQL (``halt_guard``: the switch rows,
share-locked in the inserting statement); ``trading_allowed`` decides in Python. Every
combination of global and account halts (and another account's halt, which must not count)
gives the same answer through both, and the one-statement path writes nothing when it
refuses. Real transactions: the registration runs in autocommit, as in a request.
"""

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from killswitch.models import KillSwitch
from killswitch.services import (
    killswitch_activate,
    killswitch_deactivate,
    order_register_guarded,
    trading_allowed,
)
from tests.factories import AccountFactory
from tests.integration.killswitch.support import order_kwargs
from tests.pg import requires_postgres
from tradingstate.actors import Actor
from tradingstate.errors import TradingHalted, ValidationFailed
from tradingstate.models import AuditEntry, Order

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]
STAFF = Actor.system("test")


@pytest.mark.parametrize(
    ("global_on", "account_on", "other_on"), list(itertools.product([False, True], repeat=3))
)
def test_sql_guard_and_trading_allowed_agree(global_on, account_on, other_on):
    account, other = AccountFactory(name="mine"), AccountFactory(name="other")
    KillSwitch.objects.get_or_create(account=None)
    for on, scope in ((global_on, None), (account_on, account), (other_on, other)):
        if on:
            killswitch_activate(reason="halt", actor=STAFF, account=scope)
    expected = trading_allowed(account)
    assert expected.allowed == (not global_on and not account_on)
    with CaptureQueriesContext(connection) as ctx:
        try:
            order, created = order_register_guarded(**order_kwargs(account, "o-1"))
            allowed = True
        except TradingHalted as exc:
            allowed = False
            assert exc.extra == {"reason": expected.reason, "scope": expected.scope}
    assert allowed == expected.allowed
    # the decision was the inserting statement's: no BEGIN, no separate guard read first
    first_write = next(q["sql"] for q in ctx.captured_queries if "INSERT" in q["sql"])
    assert "FOR SHARE" in first_write
    assert ctx.captured_queries[0]["sql"] == first_write
    if allowed:
        assert created and Order.objects.filter(pk=order.pk).exists()
        assert AuditEntry.objects.filter(action="order.register").count() == 1
    else:
        assert not Order.objects.exists()
        assert not AuditEntry.objects.filter(action="order.register").exists()


def test_a_retry_during_a_halt_gets_the_order_registered_before_it():
    account = AccountFactory(name="mine")
    first, created = order_register_guarded(**order_kwargs(account, "o-1"))
    killswitch_activate(reason="halt", actor=STAFF, account=account)
    again, created_again = order_register_guarded(**order_kwargs(account, "o-1"))
    assert created and not created_again and again.pk == first.pk
    with pytest.raises(TradingHalted):
        order_register_guarded(**order_kwargs(account, "o-2"))
    killswitch_deactivate(reason="back", actor=STAFF, account=account)
    _order, created = order_register_guarded(**order_kwargs(account, "o-2"))
    assert created
    assert Order.objects.count() == 2


def test_an_invalid_new_order_during_a_halt_is_refused_as_halted():
    # the order's own checks run before the statement that reads the switch: while halted
    # the answer is still the halt's (423), as on the transaction path, not the content's
    account = AccountFactory(name="mine")
    killswitch_activate(reason="halt", actor=STAFF, account=account)
    kwargs = {**order_kwargs(account, "no-price"), "price": None}
    with pytest.raises(TradingHalted):
        order_register_guarded(**kwargs)
    killswitch_deactivate(reason="back", actor=STAFF, account=account)
    with pytest.raises(ValidationFailed):  # not halted: the content's own error
        order_register_guarded(**kwargs)
    assert not Order.objects.exists()
