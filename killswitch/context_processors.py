"""The kill switch banner shown on every admin page (``templates/admin/base_site.html``).

Lazy: the state is read only when a template renders the banner, so non-admin pages pay
nothing. Fails visible: if the state cannot be read, the banner says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.utils.functional import SimpleLazyObject

logger = logging.getLogger("killswitch")

BANNER_ACTIVE = "KILL SWITCH ACTIVE — new orders are refused. Reason: {reason}"
BANNER_ACCOUNT = "Trading halted on account {account} — new orders are refused. Reason: {reason}"
BANNER_UNAVAILABLE = "Kill switch state unavailable — new orders are refused until it can be read."


@dataclass(frozen=True)
class Banner:
    lines: list[str]

    def __bool__(self) -> bool:
        return bool(self.lines)


def banner_lines() -> list[str]:
    from killswitch.selectors import killswitch_state

    try:
        status = killswitch_state()
    except Exception:
        logger.exception("Kill switch banner: state unavailable")
        return [BANNER_UNAVAILABLE]
    lines = [BANNER_ACTIVE.format(reason=status.reason)] if status.active else []
    lines += [
        BANNER_ACCOUNT.format(account=h.account, reason=h.reason) for h in status.halted_accounts
    ]
    return lines


def killswitch_banner(request) -> dict:
    user = getattr(request, "user", None)
    if not (user and user.is_authenticated and user.is_staff):
        # the reason is internal: not shown on the login page to anonymous visitors
        return {"killswitch_banner": Banner([])}
    return {"killswitch_banner": SimpleLazyObject(lambda: Banner(banner_lines()))}
