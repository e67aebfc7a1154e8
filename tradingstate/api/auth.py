"""Bot token authentication: knox tokens (hashed at rest), read in one statement.

knox's own ``TokenAuthentication`` costs three statements per request before the view
runs: the token with its user, a sweep of all the user's other tokens for expired ones,
and (in our permission and throttle) the user's bot profile. Bots call the API before
every order, so this class reads the token, its user and the bot profile together and
checks only the presented token's expiry. An expired token is deleted when presented,
as knox does; the user's other expired tokens are never valid either (this check refuses
them), so sweeping them on every request bought nothing.
"""

from __future__ import annotations

import binascii
from hmac import compare_digest

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS
from knox.signals import token_expired
from rest_framework import exceptions

INVALID_TOKEN = _("Invalid token.")


class BotTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, token: bytes):
        try:
            text = token.decode("ascii")
            digest = hash_token(text)
        except (UnicodeDecodeError, TypeError, ValueError, binascii.Error):
            raise exceptions.AuthenticationFailed(INVALID_TOKEN) from None
        candidates = (
            get_token_model()
            .objects.filter(token_key=text[: CONSTANTS.TOKEN_KEY_LENGTH])
            .select_related("user", "user__bot")
        )
        for auth_token in candidates:
            if not compare_digest(digest, auth_token.digest):
                continue
            if auth_token.expiry is not None and auth_token.expiry < timezone.now():
                username = auth_token.user.get_username()
                auth_token.delete()
                token_expired.send(sender=type(self), username=username, source="auth_token")
                break
            return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)
