"""Django settings for tradingstate.

Everything configurable comes from ``configs/*.toml`` (validated in ``tradingstate.config``)
and a handful of environment variables; code reads ``django.conf.settings.TRADINGSTATE``.
"""

from __future__ import annotations

import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url

from tradingstate.config import BASE_DIR, ConfigError, load_config, load_env
from tradingstate.logconfig import build_logging

try:
    ENV = load_env()
    TRADINGSTATE = load_config(ENV.TRADINGSTATE_CONFIG)
except ConfigError as _exc:  # stop start-up with the message, not a traceback
    sys.stderr.write(f"tradingstate: configuration error\n{_exc}\n")
    raise SystemExit(2) from None

DEBUG = ENV.DEBUG
DATA_DIR = BASE_DIR / "data"
DATA_DIR.mkdir(exist_ok=True)


def _secret_key() -> str:
    if ENV.SECRET_KEY:
        return ENV.SECRET_KEY
    # Zero-setup default: a random key kept beside the SQLite file. Production sets SECRET_KEY
    # (several hosts must share it).
    path = DATA_DIR / ".secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
SECRET_KEY_FROM_FILE = not ENV.SECRET_KEY
ALLOWED_HOSTS = list(TRADINGSTATE.allowed_hosts) + (["testserver"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, no CDN
    "django_q",
    "axes",  # admin login lockout after repeated failures
    # the console's live panels: htmx as shipped by django-htmx ({% htmx_script %}), served
    # from our static files (no CDN, no build step). No middleware: the API's hot path is
    # untouched; the panels are plain partial-template views.
    "django_htmx",
    "tradingstate",
    "killswitch",
    "reconciliation",
]

MIDDLEWARE = [
    # first: forget forwarded headers no trusted proxy set ([web] tls, trusted_proxies)
    "tradingstate.web.network.TrustedProxyMiddleware",
    # refuse what cannot be read safely: chunked bodies (411), control characters in the
    # path or query (400), over-long URLs (414): JSON, before any view or redirect
    "tradingstate.web.middleware.RequestFramingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # /static/ from STATIC_ROOT, also DEBUG=0
    "tradingstate.web.middleware.ApiRequestGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: answers locked-out logins
]

ROOT_URLCONF = "tradingstate.web.urls"
WSGI_APPLICATION = "tradingstate.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "killswitch.context_processors.killswitch_banner",
            ],
        },
    },
]


def _database() -> dict:
    url = ENV.DATABASE_URL or TRADINGSTATE.database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        # relative SQLite paths are relative to the project root, not the working directory
        url = "sqlite:///" + str(BASE_DIR / url.removeprefix("sqlite:///"))
    try:
        db = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        sys.stderr.write(f"tradingstate: configuration error\n  DATABASE_URL: {exc}\n")
        raise SystemExit(2) from None
    if db["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, with a health check that needs no round trip on an idle
        # connection (tradingstate/db/backends/postgresql)
        db["ENGINE"] = "tradingstate.db.backends.postgresql"
        # psycopg prepares a server-bound statement after this many runs on a connection;
        # None (Django's default) never does. Only tradingstate.db's hot reads are bound
        # server-side: the ORM's own queries stay client-bound and unprepared.
        prepare = 5 if TRADINGSTATE.database_prepared_statements else None
        db.setdefault("OPTIONS", {})["prepare_threshold"] = prepare
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db["CONN_MAX_AGE"] = 0
        db["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        Path(db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    return db


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = TRADINGSTATE.time_zone
USE_I18N = True
USE_TZ = True
# every moment shown with seconds and the UTC offset (tradingstate/formats/en/formats.py)
FORMAT_MODULE_PATH = ["tradingstate.formats"]

STATIC_URL = "static/"
STATIC_ROOT = Path(ENV.TRADINGSTATE_STATIC_ROOT or DATA_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# whitenoise serves STATIC_ROOT (filled by `manage.py collectstatic`) with hashed, compressed
# names and far-future caching; `make run`, the supervisor, the image and the production
# steps run collectstatic.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

LOGIN_URL = "/admin/login/"

# --- Login lockout (django-axes): 5 failures for one username from one IP lock it for 15 min.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out credentials
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

# Request bodies are capped (DRF's own parsers honour this too).
DATA_UPLOAD_MAX_MEMORY_SIZE = TRADINGSTATE.api.max_body_bytes
DATA_UPLOAD_MAX_NUMBER_FIELDS = 2000

# --- Caches (shared across processes when Redis is configured: throttling, locks) ---
if ENV.REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": ENV.REDIS_URL,
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "tradingstate_cache",
        }
    }

# --- django-q2 -------------------------------------------------------------------
_worker = TRADINGSTATE.worker
Q_CLUSTER = {
    "name": "tradingstate",
    "workers": _worker.workers,
    "timeout": _worker.task_timeout_seconds,
    "retry": _worker.retry_seconds,
    "max_attempts": _worker.max_attempts,
    "recycle": _worker.recycle_tasks,
    "catch_up": False,
    "save_limit": 1000,
    "ack_failures": True,
    "poll": 0.5,
    "label": "Task queue",
}
if ENV.REDIS_URL:
    Q_CLUSTER["redis"] = ENV.REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- REST framework -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tradingstate.web.auth.BotTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "tradingstate.web.schema.ApiAutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["tradingstate.web.parsers.StrictJSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "tradingstate.web.negotiation.JSONFirstNegotiation",
    "COERCE_DECIMAL_TO_STRING": True,
    "DEFAULT_THROTTLE_CLASSES": ["tradingstate.web.throttling.BotRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"bot": TRADINGSTATE.api.bot_rate},
    "EXCEPTION_HANDLER": "tradingstate.web.errors.exception_handler",
}
REST_KNOX = {
    "TOKEN_TTL": None,
    "AUTO_REFRESH": False,
    "AUTH_HEADER_PREFIX": "Token",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "tradingstate API",
    "DESCRIPTION": "State of record and reconciliation for automated crypto trading.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tradingstate.web.schema.closed_request_bodies",
    ],
    "ENUM_NAME_OVERRIDES": {
        "HaltScopeEnum": ["global", "account", ""],
        "ActivateScopeEnum": ["global", "accounts"],
        "ChangeScopeEnum": ["global", "account", "accounts"],
    },
}

# --- Logging --------------------------------------------------------------------------
_log_dir = Path(ENV.TRADINGSTATE_LOG_DIR or TRADINGSTATE.logging.dir)
if not _log_dir.is_absolute():
    _log_dir = BASE_DIR / _log_dir
_log_dir.mkdir(parents=True, exist_ok=True)
LOG_DIR = _log_dir
LOGGING = build_logging(
    log_dir=str(_log_dir),
    log_file=TRADINGSTATE.logging.file,
    level=TRADINGSTATE.logging.level,
    console=TRADINGSTATE.logging.console,
)

# --- Security (production) -------------------------------------------------------------
# [web] tls (README "Security model"): "direct" and "proxy" redirect plain HTTP to HTTPS and
# mark cookies secure (unless DEBUG); only "proxy" believes X-Forwarded-Proto, and only from
# [web] trusted_proxies (tradingstate.web.network). "off" is plain HTTP for loopback: the
# deploy check tradingstate.E001 refuses it when allowed_hosts names another host, which is
# why Django's own HTTPS warnings are silenced in that mode.
TLS_MODE = TRADINGSTATE.web.tls
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG and TLS_MODE != "off":
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = os.environ.get("SECURE_SSL_REDIRECT", "1") not in ("0", "false", "")
    SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$", r"^metrics$"]
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if TLS_MODE == "proxy":
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if TLS_MODE == "off":
    SILENCED_SYSTEM_CHECKS = ["security.W004", "security.W008", "security.W012", "security.W016"]
