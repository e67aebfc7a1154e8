"""The database going away answers 503 service_unavailable (never a 500, never "allowed")."""

import pytest
from django.db import InternalError, OperationalError, ProgrammingError, connection

from tests.api_support import api_cache_table, assert_error, make_bot  # noqa: F401
from tests.factories import AccountFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]


def test_database_error_in_a_view_is_503_with_retry_after(monkeypatch):
    # given
    client, _ = make_bot("bot-a", AccountFactory(name="acct-a"))

    def down(**_kwargs):
        raise OperationalError("connection to server failed")

    monkeypatch.setattr("killswitch.api.views.killswitch_view", down)
    # when
    response = client.get("/api/v1/killswitch/")
    # then
    body = assert_error(response, 503, "service_unavailable")
    assert "nothing was changed" in body["detail"]
    assert response["Retry-After"] == "5"


@pytest.mark.parametrize(
    "error",
    [
        ProgrammingError('permission denied for table "killswitch_killswitch"'),
        ProgrammingError('relation "killswitch_killswitch" does not exist'),
        InternalError("current transaction is aborted"),
    ],
    ids=["privilege", "table", "internal"],
)
def test_the_switch_state_unreadable_for_any_database_reason_is_503(error):
    # a missing privilege or table was a 500 (only a lost connection was a 503)
    if connection.vendor == "postgresql":
        pytest.skip("the bot's switch read rides the token statement, below Django's cursor")
    client, _ = make_bot("bot-a", AccountFactory(name="acct-a"))

    def refuse(execute, sql, params, many, context):
        if "killswitch" in sql:
            raise error
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse):
        response = client.get("/api/v1/killswitch/")
    body = assert_error(response, 503, "service_unavailable")
    assert "trading_allowed" not in body and response["Retry-After"] == "5"


def test_the_switch_table_gone_is_503_on_every_database():
    # for real: the table renamed away inside the test's transaction (both databases' DDL is
    # transactional, so the rollback brings it back). PostgreSQL raised ProgrammingError: 500
    from killswitch.models import KillSwitch

    client, _ = make_bot("bot-a", AccountFactory(name="acct-a"))
    table = connection.ops.quote_name(KillSwitch._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO ks_gone")
    response = client.get("/api/v1/killswitch/")
    assert_error(response, 503, "service_unavailable")


def test_a_transaction_misuse_is_a_bug_not_an_outage(monkeypatch):
    # a lock taken outside a transaction (balance_set without its @transaction.atomic) was
    # answered 503 "retry shortly", which a client retries as if the database were down
    from django.db.transaction import TransactionManagementError

    client, _ = make_bot("bot-a", AccountFactory(name="acct-a"))
    client.raise_request_exception = False

    def misuse(**_kwargs):
        raise TransactionManagementError(
            "select_for_update cannot be used outside of a transaction."
        )

    monkeypatch.setattr("killswitch.api.views.killswitch_view", misuse)
    response = client.get("/api/v1/killswitch/")
    assert response.status_code == 500 and "Retry-After" not in response
