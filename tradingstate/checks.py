"""Deployment checks of our own (``manage.py check --deploy``)."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, connection

SECRET_KEY_FILE = Warning(
    "SECRET_KEY is not set in the environment: a per-host key was generated under data/.",
    hint="Set SECRET_KEY to the same random value on every web and worker host.",
    id="tradingstate.W001",
)
AUDIT_TABLE_OWNER = Warning(
    "The application's database role owns the audit table (or is a superuser): it could "
    "ALTER TABLE tradingstate_auditentry DISABLE TRIGGER and then edit or empty the trail.",
    hint=(
        "Run migrations as an owner role and the app as a role that owns no tables, with "
        "the GRANTs in README 'Security model'."
    ),
    id="tradingstate.W002",
)
TLS_OFF_NOT_LOOPBACK = Error(
    '[web] tls = "off" serves plain HTTP, but allowed_hosts names hosts other than the '
    "loopback ones: plain HTTP is for loopback development only.",
    hint='Set [web] tls = "direct" (the app terminates TLS) or "proxy" with trusted_proxies.',
    id="tradingstate.E001",
)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

AUDIT_OWNER_SQL = """
SELECT pg_has_role(current_user, c.relowner, 'USAGE') OR r.rolsuper
FROM pg_class c JOIN pg_roles r ON r.rolname = current_user
WHERE c.oid = to_regclass('tradingstate_auditentry')
"""


@register(Tags.security, deploy=True)
def check_secret_key_source(app_configs, **kwargs):
    return [SECRET_KEY_FILE] if getattr(settings, "SECRET_KEY_FROM_FILE", False) else []


@register(Tags.security, deploy=True)
def check_audit_table_owner(app_configs, **kwargs):
    """W002: the app's role may disable the audit triggers (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute(AUDIT_OWNER_SQL)
            row = cursor.fetchone()
    except DatabaseError:
        return []  # not migrated yet, or unreachable: other checks say so
    return [AUDIT_TABLE_OWNER] if row and row[0] else []


@register(Tags.security, deploy=True)
def check_tls_mode(app_configs, **kwargs):
    """E001: ``tls = "off"`` only while every allowed host is a loopback one."""
    web = getattr(settings, "TRADINGSTATE", None)
    mode = getattr(getattr(web, "web", None), "tls", None)
    if mode != "off":
        return []
    hosts = set(getattr(settings, "ALLOWED_HOSTS", []))
    return [TLS_OFF_NOT_LOOPBACK] if hosts - LOOPBACK_HOSTS - {"testserver"} else []
