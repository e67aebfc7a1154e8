"""Configuration: TOML files in ``configs/`` plus environment variables.

``configs/default.toml`` is read first, then the file named by ``TRADINGSTATE_CONFIG``
(default ``configs/paper.toml``) is merged over it. Every key is validated; an unknown key
or a wrong type stops start-up with a message naming the file, the key and the expected type.
Environment variables (``DATABASE_URL``, ``REDIS_URL``, ``SECRET_KEY``, ``DEBUG``,
``TRADINGSTATE_CONFIG``, ``TRADINGSTATE_LOG_DIR``) override the database, broker and secrets.

This module has no Django imports: settings.py calls ``load_config()`` once.
"""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = BASE_DIR / "configs" / "default.toml"
DEFAULT_SELECTED_CONFIG = BASE_DIR / "configs" / "paper.toml"

ACCOUNT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
CURRENCY_RE = re.compile(r"^[A-Z0-9]{1,32}$")

PositiveInterval = Annotated[int, Field(ge=1, le=86400)]
NonNegativeDecimal = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]


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
        if not re.match(r"^[a-z0-9]+$", value):
            raise ValueError("must be a ccxt exchange id such as 'binance' or 'paper'")
        return value

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


class WorkerConfig(_Strict):
    workers: Annotated[int, Field(ge=1, le=64)] = 2
    task_timeout_seconds: Annotated[int, Field(ge=5, le=3600)] = 60
    retry_seconds: Annotated[int, Field(ge=6, le=7200)] = 90
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 1


class AppConfig(_Strict):
    mode: Literal["paper", "live"] = "paper"
    reconciliation_interval_seconds: PositiveInterval = 30
    auto_repair: bool = True
    balance_tolerance: NonNegativeDecimal = Decimal("0.01")
    balance_tolerances: dict[str, NonNegativeDecimal] = Field(default_factory=dict)
    stale_order_grace_seconds: Annotated[int, Field(ge=0, le=86400)] = 10
    persistent_desync_runs: Annotated[int, Field(ge=2, le=100)] = 3
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
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    exchanges: list[ExchangeConfig] = Field(default_factory=list)

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
        msg = err["msg"]
        if expected and kind != "literal_error":
            lines.append(f"  {key}: expected {expected}, got {got!r}")
        else:
            lines.append(f"  {key}: {msg} (got {got!r})")
    return "\n".join(lines)


def resolve_config_path(value: str | None) -> Path:
    if not value:
        return DEFAULT_SELECTED_CONFIG
    path = Path(value)
    if not path.is_absolute():
        path = (Path.cwd() / path) if (Path.cwd() / path).exists() else BASE_DIR / path
    return path


def load_config(path: str | Path | None = None) -> AppConfig:
    """Read default.toml, merge the selected file over it and validate."""
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
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(selected, exc)) from exc


def load_env() -> EnvSettings:
    try:
        return EnvSettings()
    except ValidationError as exc:
        lines = ["invalid environment"]
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("\n".join(lines)) from exc
