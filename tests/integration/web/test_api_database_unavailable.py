"""The database going away answers 503 service_unavailable (never a 500, never "allowed")."""

import pytest
from django.db import OperationalError

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
