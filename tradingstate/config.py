"""Configuration: TOML files in ``configs/`` plus environment variables.

``configs/default.toml`` is read first, then the file named by ``TRADINGSTATE_CONFIG``
(default ``configs/paper.toml``) is merged over it. Every key is validated; an unknown key
or a wrong type stops start-up with a message naming the file, the key and the expected type.
Environment variables (``DATABASE_URL``, ``REDIS_URL``, ``SECRET_KEY``, ``DEBUG``,
``TRADINGSTATE_CONFIG``, ``TRADINGSTATE_LOG_DIR``) override the database, broker and secrets.

This module has no Django imports: settings.py calls ``load_config()`` once.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from tradingstate.amounts import AMOUNT_PATTERN, parse_amount_text
from tradingstate.errors import ValidationFailed
from tradingstate.rules.values import ENV_NAME_PATTERN, SLUG_PATTERN, whole_string
from tradingstate.rules.values import ccxt_options as ccxt_options_rule
from tradingstate.rules.values import exchange_id as exchange_id_rule

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = BASE_DIR / "configs" / "default.toml"
DEFAULT_SELECTED_CONFIG = BASE_DIR / "configs" / "paper.toml"

ACCOUNT_NAME_RE = whole_string(SLUG_PATTERN)
ENV_NAME_RE = whole_string(ENV_NAME_PATTERN)
CURRENCY_RE = whole_string(r"^[A-Z0-9]{1,32}$")


def _amount_text(value: object) -> object:
    """Config amounts follow the API's pattern: a TOML string such as "0.01" (or an integer);
    a TOML float is refused (not exact), as are "1e-3", "+1", ".5" (issue 13, D6)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, Decimal):
        return value  # already parsed (a model copied in code)
    try:
        return parse_amount_text(value, "amount")
    except ValidationFailed:
        raise ValueError(
            f'expected a decimal string matching {AMOUNT_PATTERN} such as "0.01"'
        ) from None


ConfigAmount = BeforeValidator(_amount_text)
PositiveInterval = Annotated[int, Field(ge=1, le=86400)]
NonNegativeDecimal = Annotated[Decimal, ConfigAmount, Field(ge=0, allow_inf_nan=False)]


class ConfigError(Exception):
    """A configuration file or environment variable is invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class ExchangeConfig(_Strict):
    """One exchange account (``[[exchanges]]``)."""

    name: str
    exchange: str = "paper"
    market_type: Literal["spot", "swap", "future"] = "spot"
    api_key_env: str = ""
    secret_env: str = ""
    password_env: str = ""
    testnet: bool = False
    demo: bool = False
    enabled: bool = True
    auto_repair: bool | None = None
    reconciliation_interval_seconds: PositiveInterval | None = None
    balance_tolerance: NonNegativeDecimal | None = None
    stale_order_grace_seconds: Annotated[int, Field(ge=0, le=86400)] | None = None
    ccxt_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name_is_slug(cls, value: str) -> str:
        if not ACCOUNT_NAME_RE.match(value):
            raise ValueError(
                "must be a slug: lowercase letters, digits, '-' or '_', 1-63 characters"
            )
        return value

    @field_validator("exchange")
    @classmethod
    def _exchange_id(cls, value: str) -> str:
        try:
            return exchange_id_rule(value)
        except ValidationFailed as exc:
            raise ValueError(exc.fields["exchange"][0]) from None

    @field_validator("ccxt_options")
    @classmethod
    def _ccxt_options(cls, value: dict) -> dict:
        try:
            return ccxt_options_rule(value)  # never a credential: those are named env vars
        except ValidationFailed as exc:
            raise ValueError(exc.fields["ccxt_options"][0]) from None

    @field_validator("api_key_env", "secret_env", "password_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if value and not ENV_NAME_RE.match(value):
            raise ValueError(
                "must be the NAME of an environment variable (A-Z, 0-9, _), never the secret"
            )
        return value


class LoggingConfig(_Strict):
    dir: str = "data/logs"
    file: str = "tradingstate.log"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    console: bool = True


# what tradingstate.web.throttling reads: a count, then a period by its first letter
BOT_RATE = re.compile(r"[0-9]+/(s|sec|second|m|min|minute|h|hour|d|day)")


class ApiConfig(_Strict):
    max_body_bytes: Annotated[int, Field(ge=1024, le=50 * 1024 * 1024)] = 2 * 1024 * 1024
    page_size: Annotated[int, Field(ge=1, le=1000)] = 100
    max_page_size: Annotated[int, Field(ge=1, le=5000)] = 1000
    bot_rate: str = "6000/min"
    bulk_max_items: Annotated[int, Field(ge=1, le=10000)] = 1000
    reconcile_wait_seconds: Annotated[int, Field(ge=1, le=300)] = 30

    @field_validator("bot_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        if not BOT_RATE.fullmatch(value):
            raise ValueError(
                "expected '<requests>/<period>' with period s, min, hour or day, e.g. '6000/min'"
            )
        return value


def _networks(value: list[str]) -> list[str]:
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(
                f"{item!r} is not an IP address or network such as '10.0.0.0/8'"
            ) from None
    return value


class WebConfig(_Strict):
    """How the web server meets the network (issue 13, D13).

    ``tls``: "direct" (the app's server terminates TLS: plain HTTP is redirected to HTTPS,
    X-Forwarded-Proto is never trusted), "proxy" (a TLS proxy in front: X-Forwarded-Proto
    and X-Forwarded-For are trusted only from ``trusted_proxies``), "off" (plain HTTP for
    loopback development: ``check --deploy`` refuses it when ``allowed_hosts`` names a
    non-loopback host, and ``run_paper.py --web`` refuses a non-loopback bind).
    ``max_url_bytes``: a longer path + query string is answered 414 in JSON.
    """

    tls: Literal["direct", "proxy", "off"] = "off"
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    max_url_bytes: Annotated[int, Field(ge=256, le=8000)] = 4096

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        return _networks(value)


class MetricsConfig(_Strict):
    """Who may scrape ``/metrics`` (issue 13, D10): a request carrying
    ``Authorization: Bearer <token>`` with the token held in the environment variable named
    by ``token_env``, or one from ``allow_networks``. Default: loopback only."""

    token_env: str = ""
    allow_networks: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])

    @field_validator("allow_networks")
    @classmethod
    def _allow(cls, value: list[str]) -> list[str]:
        return _networks(value)

    @field_validator("token_env")
    @classmethod
    def _token_env(cls, value: str) -> str:
        if value and not ENV_NAME_RE.match(value):
            raise ValueError("must be the NAME of an environment variable (A-Z, 0-9, _)")
        return value


class WorkerConfig(_Strict):
    workers: Annotated[int, Field(ge=1, le=64)] = 2
    task_timeout_seconds: Annotated[int, Field(ge=5, le=3600)] = 60
    retry_seconds: Annotated[int, Field(ge=6, le=7200)] = 90
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 1
    # reconciliation passes one worker process runs at once (threads, each with its own
    # database connection; a pass mostly waits on the venue), and the ticker's batch size:
    # reconciliation/passes/batch.py, bench/accounts.py
    passes_per_worker: Annotated[int, Field(ge=1, le=64)] = 32
    # the CPU priority of the threads that run passes (0-19; 0: the default): below the
    # bots' API on a shared host (reconciliation/priority.py)
    nice: Annotated[int, Field(ge=0, le=19)] = 10
    # tasks a worker process runs before django-q2 replaces it ("recycle"): a new process
    # starts cold (ccxt clients ~7 ms each, 3 per account a pass; markets refetched), so this
    # is high; the pools that grow with use are bounded (tradingstate/exchanges/pool.py)
    recycle_tasks: Annotated[int, Field(ge=1, le=100_000_000)] = 1_000_000


NOTIFICATION_EVENTS = (
    "desync.persistent",  # a persistent desync opened / closed
    "killswitch",  # the kill switch activated / deactivated (global or an account)
    "account.stopped",  # passes stopped by an auth error or missing credentials / resumed
    "pass.overdue",  # no completed pass for an account in `overdue_intervals` intervals
    "repair.failed",  # a repair was not applied / later applied
    "worker.lost",  # the ticker's heartbeat is lost / back
)
ENV_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


class NotificationChannelConfig(_Strict):
    """One ``[[notifications]]`` channel: an apprise URL and the events it receives.

    Secrets stay out of the file: ``url`` may hold ``${ENV_NAME}`` placeholders, or
    ``url_env`` names an environment variable holding the whole URL. Both are read when a
    message is sent; the URL is never stored or logged (sends are recorded by ``name``).
    """

    name: Annotated[str, Field(max_length=64)] = ""
    url: str = ""
    url_env: str = ""
    events: list[Literal[NOTIFICATION_EVENTS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(NOTIFICATION_EVENTS)
    )
    rate_limit_per_minute: Annotated[int, Field(ge=1, le=600)] = 20
    # how long a send waits for the receiver's answer (seconds); connecting waits at most
    # 4 s of it. A receiver that answers later is recorded "timed out (may have been
    # delivered)" and the message is sent again with the same idempotency key
    # (tradingstate.services.notifications). Keep it well below [worker] task_timeout_seconds.
    timeout_seconds: Annotated[int, Field(ge=1, le=30)] = 10

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and "://" not in value:
            raise ValueError("must be an apprise URL such as 'json://host/path' or 'tgram://…'")
        for name in ENV_PLACEHOLDER.findall(value):
            if not ENV_NAME_RE.match(name):
                raise ValueError(f"${{{name}}} is not an environment variable name (A-Z, 0-9, _)")
        return value

    @field_validator("url_env")
    @classmethod
    def _url_env(cls, value: str) -> str:
        if value and not ENV_NAME_RE.match(value):
            raise ValueError("must be the NAME of an environment variable (A-Z, 0-9, _)")
        return value

    @model_validator(mode="after")
    def _one_url(self) -> NotificationChannelConfig:
        if bool(self.url) == bool(self.url_env):
            raise ValueError("set exactly one of 'url' or 'url_env'")
        return self


class AlertsConfig(_Strict):
    overdue_intervals: Annotated[int, Field(ge=2, le=100)] = 3
    heartbeat_lost_seconds: Annotated[int, Field(ge=10, le=3600)] = 60
    retry_max_attempts: Annotated[int, Field(ge=1, le=20)] = 6


class RetentionConfig(_Strict):
    """How long `manage.py prune` keeps each table (days; 0 keeps forever)."""

    runs_days: Annotated[int, Field(ge=0, le=3650)] = 14
    discrepancies_days: Annotated[int, Field(ge=0, le=3650)] = 90
    repairs_days: Annotated[int, Field(ge=0, le=3650)] = 90
    heartbeats_days: Annotated[int, Field(ge=0, le=3650)] = 7
    notifications_days: Annotated[int, Field(ge=0, le=3650)] = 30
    batch_size: Annotated[int, Field(ge=100, le=100000)] = 5000
    pause_ms: Annotated[int, Field(ge=0, le=10000)] = 20
    daily_at: str = "03:30"

    @field_validator("daily_at")
    @classmethod
    def _time(cls, value: str) -> str:
        if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
            raise ValueError("expected HH:MM (24 h, the configured time zone), e.g. '03:30'")
        return value


class AppConfig(_Strict):
    mode: Literal["paper", "live"] = "paper"
    reconciliation_interval_seconds: PositiveInterval = 30
    auto_repair: bool = True
    balance_tolerance: NonNegativeDecimal = Decimal("0.01")
    balance_tolerances: dict[str, NonNegativeDecimal] = Field(default_factory=dict)
    stale_order_grace_seconds: Annotated[int, Field(ge=0, le=86400)] = 10
    persistent_desync_runs: Annotated[int, Field(ge=2, le=100)] = 3
    # fills (issue 14): each pass reads the venue's trades from the account's watermark minus
    # this overlap; the first pass looks back fill_lookback_hours (default: the venue's
    # maximum). A stale order the venue says it does not know is cancelled only after this
    # many consecutive "not found" passes, at least stale_order_grace_seconds apart.
    fill_overlap_seconds: Annotated[int, Field(ge=0, le=86400)] = 120
    fill_lookback_hours: Annotated[int, Field(ge=1, le=24 * 730)] | None = None
    stale_not_found_passes: Annotated[int, Field(ge=1, le=100)] = 3
    # the paper venue (tradingstate.services.paper): fee per trade as a fraction of its
    # notional, and the seeded random walk of its mark prices (0 s: off)
    paper_fee_rate: Annotated[
        Decimal, ConfigAmount, Field(ge=0, le=Decimal("0.1"), allow_inf_nan=False)
    ] = Decimal("0.0005")
    paper_walk_interval_seconds: Annotated[int, Field(ge=0, le=3600)] = 0
    paper_walk_seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 1
    paper_walk_max_step: Annotated[
        Decimal, ConfigAmount, Field(gt=0, le=Decimal("0.1"), allow_inf_nan=False)
    ] = Decimal("0.001")
    # P&L and exposure (issue 15)
    mark_price_max_age_seconds: Annotated[int, Field(ge=1, le=86400)] = 300
    entry_price_tolerance: NonNegativeDecimal = Decimal("0.0001")
    valuation_currency: str = "USDT"
    pnl_history_retention_days: Annotated[int, Field(ge=1, le=3650)] = 90
    database_url: str = "sqlite:///data/tradingstate.sqlite3"
    database_prepared_statements: bool = True
    time_zone: str = "UTC"
    allowed_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost"])
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    exchanges: list[ExchangeConfig] = Field(default_factory=list)
    notifications: list[NotificationChannelConfig] = Field(default_factory=list)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @field_validator("notifications")
    @classmethod
    def _channel_names(
        cls, value: list[NotificationChannelConfig]
    ) -> list[NotificationChannelConfig]:
        seen: set[str] = set()
        for i, channel in enumerate(value, start=1):
            if not channel.name:
                scheme = (channel.url.split("://", 1)[0] if channel.url else "env") or "url"
                channel.name = f"{scheme}-{i}"
            if channel.name in seen:
                raise ValueError(f"duplicate notification channel name {channel.name!r}")
            seen.add(channel.name)
        return value

    @field_validator("valuation_currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not CURRENCY_RE.match(value):
            raise ValueError("must be a currency code in capitals, e.g. 'USDT'")
        return value

    @field_validator("exchanges")
    @classmethod
    def _unique_names(cls, value: list[ExchangeConfig]) -> list[ExchangeConfig]:
        seen: set[str] = set()
        for item in value:
            if item.name in seen:
                raise ValueError(f"duplicate account name {item.name!r}")
            seen.add(item.name)
        return value


class EnvSettings(BaseSettings):
    """Environment variables that override the files."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True)

    DATABASE_URL: str | None = None
    REDIS_URL: str | None = None
    SECRET_KEY: str | None = None
    DEBUG: bool = False
    TRADINGSTATE_CONFIG: str | None = None
    TRADINGSTATE_LOG_DIR: str | None = None
    TRADINGSTATE_STATIC_ROOT: str | None = None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "ccxt_options":
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: configuration file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


_TYPE_WORDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "a boolean (true/false)",
    "bool_parsing": "a boolean (true/false)",
    "string_type": "a string",
    "decimal_type": "a decimal number",
    "decimal_parsing": "a decimal number",
    "dict_type": "a table",
    "list_type": "an array",
    "model_type": "a table",
    "literal_error": "one of the allowed values",
    "extra_forbidden": "no such key",
}


# keys whose values may carry a secret (a webhook's token, a credential put in the ccxt
# options by mistake): an error names the key and the problem, never echoes the value
SECRET_KEYS = frozenset({"ccxt_options", "url"})
VALUE_NOT_SHOWN = "a value not shown: it may hold a secret"


def _may_hold_a_secret(loc) -> bool:
    return any(str(part) in SECRET_KEYS for part in loc)


def format_validation_error(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid configuration"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        kind = err["type"]
        if kind == "extra_forbidden":
            lines.append(f"  {key}: unknown key")
            continue
        expected = _TYPE_WORDS.get(kind)
        got = err.get("input")
        shown = VALUE_NOT_SHOWN if _may_hold_a_secret(err["loc"]) else repr(got)
        msg = err["msg"]
        if expected and kind != "literal_error":
            lines.append(f"  {key}: expected {expected}, got {shown}")
        else:
            lines.append(f"  {key}: {msg} (got {shown})")
    return "\n".join(lines)


def resolve_config_path(value: str | None) -> Path:
    if not value:
        return DEFAULT_SELECTED_CONFIG
    path = Path(value)
    if not path.is_absolute():
        path = (Path.cwd() / path) if (Path.cwd() / path).exists() else BASE_DIR / path
    return path


ENV_PREFIX = "TRADINGSTATE_"
ENV_DELIMITER = "__"


def _field_type(model: type[BaseModel], name: str):
    info = model.model_fields.get(name)
    if info is None:
        return None
    annotation = info.annotation
    # unwrap Optional / Annotated to the class that decides how to descend
    for arg in (*get_args(annotation), annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    origin = get_origin(annotation)
    if origin is dict or annotation is dict:
        return dict
    if origin is list or annotation is list:
        return list
    return str


def env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple, str]]:
    """Config keys set by ``TRADINGSTATE_<SECTION>__<KEY>`` variables.

    ``TRADINGSTATE_API__BOT_RATE=100/min`` sets ``[api] bot_rate``;
    ``TRADINGSTATE_RECONCILIATION_INTERVAL_SECONDS=15`` a top-level key;
    ``TRADINGSTATE_BALANCE_TOLERANCES__BTC=0.0001`` one entry of a table. Arrays and whole
    tables take JSON (``TRADINGSTATE_ALLOWED_HOSTS='["ts.example"]'``). Names are
    case-insensitive except table entries. A name with ``__`` must name a key; a name without
    one that is not a top-level key is another setting (``TRADINGSTATE_CONFIG``) and is skipped.
    Returns the overrides as nested data and, for error messages, each key path's variable.
    """
    data: dict[str, Any] = {}
    names: dict[tuple, str] = {}
    errors: list[str] = []
    for var in sorted(environ):
        if not var.upper().startswith(ENV_PREFIX):
            continue
        raw_parts = var[len(ENV_PREFIX) :].split(ENV_DELIMITER)
        nested = len(raw_parts) > 1
        model: type[BaseModel] | type = AppConfig
        path: list[str] = []
        kind = None
        for i, raw in enumerate(raw_parts):
            if model is dict:
                if i != len(raw_parts) - 1 or not raw:
                    kind = None
                    break
                path.append(raw)  # a table entry: its own case (currency codes)
                kind = str
                break
            part = raw.lower()
            kind = (
                _field_type(model, part)
                if isinstance(model, type) and issubclass(model, BaseModel)
                else None
            )
            if kind is None:
                break
            path.append(part)
            model = kind
        if kind is None or len(path) != len(raw_parts):
            if nested:
                errors.append(f"  {var}: no such configuration key")
            continue
        value: Any = environ[var]
        if kind in (list, dict) or (isinstance(kind, type) and issubclass(kind, BaseModel)):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                errors.append(f"  {var}: expected JSON for this array or table ({exc.msg})")
                continue
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
        names[tuple(path)] = var
    if errors:
        raise ConfigError("environment: invalid configuration\n" + "\n".join(errors))
    return data, names


def _env_error(exc: ValidationError, names: dict[tuple, str], file: Path) -> ConfigError:
    lines: list[str] = []
    file_errors: list[dict] = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        var = next((v for p, v in names.items() if loc[: len(p)] == p), None)
        if var is None:
            file_errors.append(err)
            continue
        inner = ValidationError.from_exception_data("config", [err])  # type: ignore[list-item]
        text = format_validation_error(file, inner).splitlines()[1].strip()
        lines.append(f"  {var}: {text.split(': ', 1)[1]}")
    if file_errors:
        lines.append(f"  (with {file}) " + "; ".join(e["msg"] for e in file_errors))
    return ConfigError("environment: invalid configuration\n" + "\n".join(lines))


def load_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> AppConfig:
    """Read default.toml, merge the selected file over it, then the environment's
    ``TRADINGSTATE_<SECTION>__<KEY>`` overrides, and validate."""
    environ = os.environ if environ is None else environ
    selected = resolve_config_path(str(path) if path else None)
    data: dict[str, Any] = {}
    if DEFAULT_CONFIG.exists() and selected.resolve() != DEFAULT_CONFIG.resolve():
        base = _read_toml(DEFAULT_CONFIG)
        try:
            AppConfig.model_validate(base)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(DEFAULT_CONFIG, exc)) from exc
        data = base
    data = _merge(data, _read_toml(selected))
    try:
        config = AppConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(selected, exc)) from exc
    overrides, names = env_overrides(environ)
    if not overrides:
        return config
    try:
        return AppConfig.model_validate(_merge(data, overrides))
    except ValidationError as exc:
        raise _env_error(exc, names, selected) from exc


def load_env() -> EnvSettings:
    try:
        return EnvSettings()
    except ValidationError as exc:
        lines = ["invalid environment"]
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("\n".join(lines)) from exc
