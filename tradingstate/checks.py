"""Deployment checks of our own (``manage.py check --deploy``)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

SECRET_KEY_FILE = Warning(
    "SECRET_KEY is not set in the environment: a per-host key was generated under data/.",
    hint="Set SECRET_KEY to the same random value on every web and worker host.",
    id="tradingstate.W001",
)


@register(Tags.security, deploy=True)
def check_secret_key_source(app_configs, **kwargs):
    return [SECRET_KEY_FILE] if getattr(settings, "SECRET_KEY_FROM_FILE", False) else []
