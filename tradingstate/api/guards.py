"""Checks made before a bot's new order is registered: the account is not in restart
recovery (503), then the kill switch's guarded registration (423 while halted)."""

from __future__ import annotations

from killswitch.services import order_register_guarded
from tradingstate.errors import RecoveryInProgress
from tradingstate.models import ExchangeAccount, Order

RECOVERY_IN_PROGRESS = (
    "Account '{account}' is reconciling after a restart; new orders are refused until its "
    "first pass completes. Retry shortly."
)


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
    """``order_register``'s arguments; recovery gate, then kill switch + registration."""
    account_require_not_recovering(account)
    return order_register_guarded(account=account, **kwargs)
