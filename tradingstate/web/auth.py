"""Bot token authentication: knox tokens (hashed at rest), read in one plain statement.

knox's own ``TokenAuthentication`` costs three statements per request before the view
runs: the token with its user, a sweep of all the user's other tokens for expired ones,
and (in our permission and throttle) the user's bot profile. Bots call the API before
every order, so this class reads the token, its user and the bot profile in one statement
(SQL built once from the models: compiling the ORM query on every request cost more than
running it) and checks only the presented token's expiry. An expired token is deleted when
presented, as knox does; the user's other expired tokens are never valid either (this
check refuses them), so sweeping them on every request bought nothing.

When the URL names an account (``/accounts/{account}/...``), the same statement reads that
account if it is granted to the bot (``tradingstate.db.auth``); the view's account lookup
then costs nothing (``tradingstate.web.base.AccountScopedMixin``). When the view's rate
limit counts in the database (``BotRateThrottle.token_statement_plan``), the same statement
counts the request too; if that part fails (the counter's table unreachable), the token is
read on its own and the throttle's own path lets the request through, as it always does.
"""

from __future__ import annotations

import binascii
from hmac import compare_digest

from django.db import DatabaseError, connection
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.settings import CONSTANTS
from knox.signals import token_expired
from rest_framework import exceptions

from tradingstate.db.auth import RateCount, token_rows
from tradingstate.web.throttling import BotRateThrottle

INVALID_TOKEN = _("Invalid token.")


class BotTokenAuthentication(TokenAuthentication):
    """A view whose first read depends only on the bot can have it in the token's statement:
    its ``token_with_bot_sql()`` returns the SQL (see ``tradingstate.db.auth.token_rows``),
    and the view finds the value on ``request.user.with_bot``."""

    def authenticate(self, request):
        self._account_name = _account_name(request)
        view = (getattr(request, "parser_context", None) or {}).get("view")
        hook = getattr(view, "token_with_bot_sql", None)
        self._with_bot = hook() if hook is not None else None
        self._plan = _rate_plan(view)
        return super().authenticate(request)

    def authenticate_credentials(self, token: bytes):
        try:
            text = token.decode("ascii")
            digest = hash_token(text)
        except (UnicodeDecodeError, TypeError, ValueError, binascii.Error):
            raise exceptions.AuthenticationFailed(INVALID_TOKEN) from None
        name = getattr(self, "_account_name", None)
        with_bot = getattr(self, "_with_bot", None)
        plan = getattr(self, "_plan", None)
        key = text[: CONSTANTS.TOKEN_KEY_LENGTH]
        rate = None if plan is None else RateCount(plan.key_prefix, digest, plan.params)
        try:
            tokens = token_rows(key, name, with_bot, rate)
        except DatabaseError as exc:
            if rate is None or connection.in_atomic_block:
                raise
            BotRateThrottle.log_failure(exc)  # the counter failed: read the token alone
            plan = None
            tokens = token_rows(key, name, with_bot)
        for auth_token in tokens:
            if not compare_digest(digest, auth_token.digest):
                continue
            if auth_token.expiry is not None and auth_token.expiry < timezone.now():
                username = auth_token.user.get_username()
                auth_token.delete()
                token_expired.send(sender=type(self), username=username, source="auth_token")
                break
            if name is not None:
                # the account in the URL, read with the token (see AccountScopedMixin)
                auth_token.user.visible_account = (name, auth_token.visible_account)
            if with_bot is not None:
                auth_token.user.with_bot = auth_token.with_bot
            if plan is not None and auth_token.rate_count is not None:
                auth_token.user.rate_counted = (plan, auth_token.rate_count)
            return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)


def _rate_plan(view):
    """The view's rate limit, if it counts in the token's statement."""
    if view is None:
        return None
    for throttle in view.get_throttles():
        hook = getattr(throttle, "token_statement_plan", None)
        plan = hook() if hook is not None else None
        if plan is not None:
            return plan
    return None


def _account_name(request) -> str | None:
    """The ``{account}`` URL argument, if well formed (a name with a control character or
    too long for the column is left to the view's own lookup and its error)."""
    kwargs = (getattr(request, "parser_context", None) or {}).get("kwargs") or {}
    name = kwargs.get("account")
    if not isinstance(name, str) or not name or len(name) > 100:
        return None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return None
    return name
