"""D13 (issue 13): [web] tls = direct | proxy | off. Plain HTTP on loopback without DEBUG
serves the console (no redirect); X-Forwarded-Proto is believed only from trusted proxies;
`check --deploy` refuses "off" when the app answers for a non-loopback host."""

import json
import secrets
import subprocess
import sys

import pytest

from tradingstate.config import BASE_DIR

pytestmark = pytest.mark.django_db

PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps([s.TLS_MODE, s.SECURE_SSL_REDIRECT, s.SECURE_PROXY_SSL_HEADER, "
    "s.SESSION_COOKIE_SECURE]))"
)


def run(args, **env):
    base = {
        "PATH": "/usr/bin:/bin",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DJANGO_SETTINGS_MODULE": "tradingstate.settings",
        **env,
    }
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=base, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("off", ["off", False, None, False]),
        ("direct", ["direct", True, None, True]),
        ("proxy", ["proxy", True, ["HTTP_X_FORWARDED_PROTO", "https"], True]),
    ],
)
def test_each_mode_without_debug(mode, expected):
    proc = run(["-c", PROBE], TRADINGSTATE_WEB__TLS=mode)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == expected


def test_the_default_serves_plain_http_on_loopback():
    proc = run(["-c", PROBE])
    assert json.loads(proc.stdout.strip().splitlines()[-1])[:2] == ["off", False]


def test_deploy_check_refuses_off_for_a_public_host():
    proc = run(
        ["manage.py", "check", "--deploy"],
        TRADINGSTATE_ALLOWED_HOSTS='["ts.example.com"]',
    )
    assert proc.returncode != 0 and "tradingstate.E001" in proc.stderr + proc.stdout


def _proxy_mode(settings):
    current = settings.TRADINGSTATE
    web = current.web.model_copy(update={"tls": "proxy", "trusted_proxies": ["10.0.0.2"]})
    settings.TRADINGSTATE = current.model_copy(update={"web": web})
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


def test_forwarded_proto_is_believed_only_from_a_trusted_proxy(client, settings):
    _proxy_mode(settings)
    # a client claiming HTTPS itself is redirected like any plain-HTTP request
    spoof = client.get("/admin/login/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_PROTO="https")
    assert spoof.status_code == 301 and spoof["Location"].startswith("https://")
    # the proxy's word is taken
    proxied = client.get("/admin/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == 200
