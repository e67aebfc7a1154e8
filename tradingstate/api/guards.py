"""Checks made on a bot's new order: the kill switch's guarded registration (423 while
halted), which also refuses it while the account is in restart recovery (503)."""

from __future__ import annotations

from killswitch.services import order_register_guarded
from tradingstate.errors import RecoveryInProgress
from tradingstate.models import ExchangeAccount, Order
from tradingstate.services.orders import RECOVERY_IN_PROGRESS


def account_require_not_recovering(account: ExchangeAccount) -> None:
    """Refuse (503) while ``recover`` has started and the account's first pass has not ended.

    Reads the row afresh: the request's copy may predate ``recover``.
    """
    recovering = ExchangeAccount.objects.filter(
        pk=account.pk, recovery_started_at__isnull=False
    ).exists()
    if recovering:
        raise RecoveryInProgress(RECOVERY_IN_PROGRESS.format(account=account.name))


def order_register_checked(*, account: ExchangeAccount, **kwargs) -> tuple[Order, bool]:
    """``order_register``'s arguments; kill switch + registration with the recovery gate
    (read afresh in the inserting statement: the request's copy may predate ``recover``)."""
    return order_register_guarded(account=account, recovery_gate=True, **kwargs)
