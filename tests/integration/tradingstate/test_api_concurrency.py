"""Concurrent identical registrations over the API (PostgreSQL, real transactions)."""

import threading

import pytest
from django.db import connection

from tests.api_support import api_cache_table, make_bot, order_body, url  # noqa: F401
from tests.factories import AccountFactory
from tests.pg import requires_postgres
from tradingstate.models import AuditEntry, Order

N = 50


@requires_postgres
@pytest.mark.usefixtures("api_cache_table")
@pytest.mark.django_db(transaction=True)
def test_50_concurrent_identical_registrations_make_one_order():
    # given
    account = AccountFactory(name="acct-a")
    clients = [make_bot("alpha", account)[0] for _ in range(N)]  # one token per thread
    barrier = threading.Barrier(N)
    responses = [None] * N

    def register(i):
        try:
            barrier.wait(timeout=30)
            responses[i] = clients[i].post(url(account, "orders"), order_body(), format="json")
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=register, args=(i,)) for i in range(N)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # then
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * (N - 1) + [201], codes
    bodies = {r.content for r in responses}
    assert len(bodies) == 1, bodies
    assert Order.objects.count() == 1
    assert AuditEntry.objects.filter(action="order.register").count() == 1
