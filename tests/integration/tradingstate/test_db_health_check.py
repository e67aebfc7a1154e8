"""The PostgreSQL backend's health check (tradingstate/db/backends/postgresql).

An idle, healthy persistent connection is found usable without a round trip; one the
server has closed (here: ``pg_terminate_backend``, as a restart or an idle timeout does) is
found unusable, and the next request gets a new connection instead of an error.
"""

import time

import psycopg
import pytest
from django.core.signals import request_started
from django.db import connection, connections
from django.db.backends.postgresql.base import DatabaseWrapper as DjangoPostgres

from tests.pg import requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def _kill(pid: int) -> None:
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        dbname=settings["NAME"],
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def _wait_for_hangup(timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and connection.is_usable():
        time.sleep(0.05)


def test_the_backend_is_ours_and_health_checks_are_on():
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True
    assert type(connections["default"]).__module__ == "tradingstate.db.backends.postgresql.base"


def test_an_idle_healthy_connection_costs_no_round_trip(monkeypatch):
    connection.ensure_connection()
    asked = []
    monkeypatch.setattr(DjangoPostgres, "is_usable", lambda self: asked.append(1) or True)
    assert connection.is_usable()
    assert asked == []


def test_a_connection_in_a_transaction_is_asked_about(monkeypatch):
    connection.ensure_connection()
    connection.connection.execute("BEGIN")
    try:
        asked = []
        monkeypatch.setattr(DjangoPostgres, "is_usable", lambda self: asked.append(1) or True)
        assert connection.is_usable()
        assert asked == [1]
    finally:
        connection.connection.execute("ROLLBACK")


def test_a_connection_the_server_closed_is_unusable_and_replaced():
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    _kill(pid)
    _wait_for_hangup()
    assert not connection.is_usable()
    # the next request: Django's health check (once per request) replaces the connection
    request_started.send(sender=None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (new_pid,) = cursor.fetchone()
    assert new_pid != pid
