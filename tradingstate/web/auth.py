"""Bot token authentication: knox tokens (hashed at rest), read in one plain statement.

knox's own ``TokenAuthentication`` costs three statements per request before the view
runs: the token with its user, a sweep of all the user's other tokens for expired ones,
and (in our permission and throttle) the user's bot profile. Bots call the API before
every order, so this class reads the token, its user and the bot profile in one statement
(SQL built once from the models: compiling the ORM query on every request cost more than
running it) and checks only the presented token's expiry. An expired token is deleted when
presented, as knox does; the user's other expired tokens are never valid either (this
check refuses them), so sweeping them on every request bought nothing.
"""

from __future__ import annotations

import binascii
from functools import cache
from hmac import compare_digest

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS
from knox.signals import token_expired
from rest_framework import exceptions

from tradingstate.db import fetch_all, python_values
from tradingstate.models import BotProfile

INVALID_TOKEN = _("Invalid token.")


class BotTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, token: bytes):
        try:
            text = token.decode("ascii")
            digest = hash_token(text)
        except (UnicodeDecodeError, TypeError, ValueError, binascii.Error):
            raise exceptions.AuthenticationFailed(INVALID_TOKEN) from None
        for auth_token in _tokens(text[: CONSTANTS.TOKEN_KEY_LENGTH]):
            if not compare_digest(digest, auth_token.digest):
                continue
            if auth_token.expiry is not None and auth_token.expiry < timezone.now():
                username = auth_token.user.get_username()
                auth_token.delete()
                token_expired.send(sender=type(self), username=username, source="auth_token")
                break
            return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)


def _tokens(token_key: str) -> list:
    """The tokens under ``token_key`` with their user and the user's bot profile (or its
    absence) in the ORM's relation caches, as ``select_related`` would leave them."""
    sql, token_fields, user_fields, bot_fields = _token_query(connection.vendor)
    rows = fetch_all(sql, [token_key])
    out = []
    n_token, n_user = len(token_fields), len(user_fields)
    for row in rows:
        token = _instance(get_token_model(), token_fields, row[:n_token])
        user = _instance(get_user_model(), user_fields, row[n_token : n_token + n_user])
        bot_values = row[n_token + n_user :]
        bot = None if bot_values[0] is None else _instance(BotProfile, bot_fields, bot_values)
        _user_link().set_cached_value(token, user)
        _bot_link().remote_field.set_cached_value(user, bot)
        if bot is not None:
            _bot_link().set_cached_value(bot, user)
        out.append(token)
    return out


def _instance(model, fields, values):
    return model.from_db(
        connection.alias, [f.attname for f in fields], python_values(fields, values)
    )


@cache
def _user_link():
    return get_token_model()._meta.get_field("user")


@cache
def _bot_link():
    return BotProfile._meta.get_field("user")


@cache
def _token_query(vendor: str):
    # identifiers come from the models; the token key is the one value, a parameter
    qn = connection.ops.quote_name
    token_model, user_model = get_token_model(), get_user_model()
    token_fields = list(token_model._meta.concrete_fields)
    user_fields = list(user_model._meta.concrete_fields)
    bot_fields = list(BotProfile._meta.concrete_fields)
    columns = ", ".join(
        [f"t.{qn(f.column)}" for f in token_fields]
        + [f"u.{qn(f.column)}" for f in user_fields]
        + [f"b.{qn(f.column)}" for f in bot_fields]
    )
    user_fk = _user_link().column
    sql = (
        f"SELECT {columns} FROM {qn(token_model._meta.db_table)} t "  # noqa: S608
        f"JOIN {qn(user_model._meta.db_table)} u "
        f"ON u.{qn(user_model._meta.pk.column)} = t.{qn(user_fk)} "
        f"LEFT JOIN {qn(BotProfile._meta.db_table)} b "
        f"ON b.{qn(_bot_link().column)} = u.{qn(user_model._meta.pk.column)} "
        f"WHERE t.{qn('token_key')} = %s"
    )
    return sql, token_fields, user_fields, bot_fields
