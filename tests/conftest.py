import os

import pytest
from django.conf import settings
from django.test import override_settings

from tests.factories import AccountFactory, BotFactory, StaffFactory
from tests.fakes.fixtures import fake_credentials, fake_exchange, make_fake_account  # noqa: F401
from tests.flush import flush_past_the_audit_truncate_trigger
from tradingstate.actors import Actor

flush_past_the_audit_truncate_trigger()


def _keep_the_runners_priority() -> None:
    """Passes run in the test process (and in the servers tests start) would lower its CPU
    priority for good (``[worker] nice``, reconciliation/priority.py): a suite's runner keeps
    its own. tests/integration/reconciliation/test_worker_priority.py sets it explicitly."""
    os.environ["TRADINGSTATE_WORKER__NICE"] = "0"
    cfg = settings.TRADINGSTATE
    settings.TRADINGSTATE = cfg.model_copy(
        update={"worker": cfg.worker.model_copy(update={"nice": 0})}
    )


_keep_the_runners_priority()


def _row_locks_need_a_transaction_on_every_database() -> None:
    """PostgreSQL refuses ``select_for_update`` outside a transaction; SQLite, which has no
    row locks, silently ran it. A service that lost its ``@transaction.atomic`` then passed
    every SQLite test and failed in production (balance_set: a 503 on every PUT). In the
    tests SQLite refuses it too, as Django does on PostgreSQL."""
    from django.db import transaction
    from django.db.models.sql.compiler import SQLCompiler

    as_sql = SQLCompiler.as_sql

    def refusing(self, *args, **kwargs):
        if self.query.select_for_update and self.connection.get_autocommit():
            raise transaction.TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        return as_sql(self, *args, **kwargs)

    SQLCompiler.as_sql = refusing


_row_locks_need_a_transaction_on_every_database()


@pytest.fixture
def account(db):
    return AccountFactory(name="test-acct")


@pytest.fixture
def bot_profile(db, account):
    profile = BotFactory(user__username="alpha-bot")
    profile.accounts.add(account)
    return profile


@pytest.fixture
def bot_actor(bot_profile):
    return Actor.for_user(bot_profile.user, correlation_id="req-1")


@pytest.fixture
def staff_user(db):
    return StaffFactory(username="alice")


@pytest.fixture
def staff_actor(staff_user):
    return Actor.for_user(staff_user, correlation_id="req-2")


@pytest.fixture
def system_actor():
    return Actor.system("reconciliation", 42)


@pytest.fixture(autouse=True)
def _plain_http_in_tests(settings):
    # production settings redirect to HTTPS; the test client speaks plain HTTP
    settings.SECURE_SSL_REDIRECT = False


@pytest.fixture(autouse=True)
def _paper_walk_off(settings):
    # the paper venue's random walk is off in tests unless a test turns it on
    settings.TRADINGSTATE = settings.TRADINGSTATE.model_copy(
        update={"paper_walk_interval_seconds": 0}
    )


@pytest.fixture(scope="session", autouse=True)
def _static_without_manifest():
    # Production serves hashed names from a collected manifest (whitenoise); in-process tests
    # render `{% static %}` without running collectstatic. The manifest storage itself is
    # exercised against a real server in tests/e2e/test_static_files.py.
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages):
        yield
