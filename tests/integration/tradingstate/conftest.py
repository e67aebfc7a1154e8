"""Fixtures shared by this folder's tests."""

import pytest
from django_q.conf import Conf

from tradingstate.config import NotificationChannelConfig


@pytest.fixture
def receiver(settings, monkeypatch):
    """A loopback webhook receiver configured as the one channel ("hook"); the cluster's
    tasks run inline."""
    from tests.integration.tradingstate.test_notifications import Receiver

    monkeypatch.setattr(Conf, "SYNC", True)  # the cluster's execution, inline
    rx = Receiver()
    settings.TRADINGSTATE = settings.TRADINGSTATE.model_copy(
        update={
            "notifications": [
                NotificationChannelConfig(name="hook", url=f"json://127.0.0.1:{rx.port}/hook")
            ]
        }
    )
    yield rx
    rx.close()
