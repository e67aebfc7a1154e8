"""D9 (issue 13): the audit trail cannot be emptied with TRUNCATE (PostgreSQL), and the
deploy check warns when the app's role owns the audit table (it could disable triggers)."""

import pytest
from django.db import DatabaseError, connection, transaction

from tests.factories import AccountFactory
from tests.pg import requires_postgres
from tradingstate.actors import Actor
from tradingstate.checks import AUDIT_TABLE_OWNER, check_audit_table_owner
from tradingstate.models import AuditEntry
from tradingstate.services import balance_set

pytestmark = [pytest.mark.django_db, requires_postgres]

APP_ROLE = "ts_guards_test_app"
# README "Security model": the GRANTs of the app's role (it owns no table)
GRANTS = f"""
GRANT USAGE ON SCHEMA public TO {APP_ROLE};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE};
REVOKE UPDATE, DELETE, TRUNCATE ON tradingstate_auditentry FROM {APP_ROLE};
"""


@pytest.fixture
def audited():
    balance_set(
        account=AccountFactory(name="a"), currency="USDT", total="1", actor=Actor.system("t")
    )
    assert AuditEntry.objects.exists()


def test_truncate_is_refused_even_for_the_owner(audited):
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's own pending FK checks
    with (
        pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE tradingstate_auditentry CASCADE")
    assert AuditEntry.objects.exists()


@pytest.fixture
def app_role():
    with connection.cursor() as cursor:
        cursor.execute(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') "
            f"THEN CREATE ROLE {APP_ROLE} NOLOGIN; END IF; END $$"
        )
        cursor.execute(GRANTS)
    return APP_ROLE


def test_the_app_role_with_the_readme_grants_can_insert_but_not_empty(audited, app_role):
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL ROLE {app_role}")
            cursor.execute("SELECT count(*) FROM tradingstate_auditentry")
            assert cursor.fetchone()[0] >= 1
        for statement in (
            "TRUNCATE tradingstate_auditentry",
            "DELETE FROM tradingstate_auditentry",
            "ALTER TABLE tradingstate_auditentry DISABLE TRIGGER USER",
        ):
            with (
                pytest.raises(DatabaseError),
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                cursor.execute(statement)
    assert AuditEntry.objects.exists()


def test_deploy_check_warns_when_the_app_role_owns_the_audit_table():
    # the tests connect as the owner (a superuser): exactly what production must not do
    assert check_audit_table_owner(None) == [AUDIT_TABLE_OWNER]


def test_deploy_check_is_quiet_for_a_role_that_owns_nothing(app_role):
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL ROLE {app_role}")
        assert check_audit_table_owner(None) == []
