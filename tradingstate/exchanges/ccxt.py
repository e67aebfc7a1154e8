"""CcxtExchange: any ccxt (sync) exchange behind the ExchangeAdapter interface.

What differs between venues (market routing, paging, id fields, history windows, retention,
raw shapes, parsing quirks) lives in the venue's dialect (``tradingstate/exchanges/venues/``);
this module keeps what every venue shares.

Credentials come from the environment variables the account names; their values are never
stored, logged or put in exception text (every message is redacted). ccxt errors become the
adapter's error classes, numbers become ``Decimal`` via ``str()``, and each raw response is
checked for the shape the call needs: a 200 whose body is HTML, ``{}``, ``null`` or lacks
the data keys raises ``BadExchangeResponse`` instead of being read as "nothing there".
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import ccxt

from tradingstate.amounts import CONTEXT
from tradingstate.exchanges import pool
from tradingstate.exchanges.base import (
    CANCELED,
    CLOSED,
    LAST,
    MARK,
    AuthenticationFailed,
    BadExchangeResponse,
    ConfigurationError,
    ExchangeAdapter,
    ExchangeBalance,
    ExchangeError,
    ExchangeMarkPrice,
    ExchangeOrder,
    ExchangePosition,
    ExchangeTrade,
    ExchangeUnavailable,
    FetchResult,
    InstrumentInfo,
    MissingCredentials,
    OrderNotFound,
    OrderRetention,
    RateLimited,
    TradeHistoryPolicy,
    TransientExchangeError,
)
from tradingstate.exchanges.ccxt_support import (
    _STATUS,
    RedactingLogger,
    deep_merge,
    local_order_type,
    millis,
    millis_to_datetime,
    raw_position_side,
    remember_parsed_orders,
    scaled,
    step_from_precision,
    to_decimal,
)
from tradingstate.exchanges.transport import LeanSession
from tradingstate.exchanges.venues import dialect_for

__all__ = [
    "CcxtExchange",
    "deep_merge",
    "local_order_type",
    "step_from_precision",
    "to_decimal",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 10_000
DEFAULT_MAX_PAGES = 20
MAX_MESSAGE = 400

MISSING_VARIABLE = "environment variable {variable} ({field}) is not set for account {account}"
UNKNOWN_EXCHANGE = "unknown ccxt exchange id {exchange!r} for account {account}"
UNKNOWN_STATUS = "{exchange}: unknown order status {status!r} for order {order_id}"
NAIVE_SINCE = "fetch_my_trades: since must be timezone-aware, got {since!r}"
UNKNOWN_SYMBOL = "{exchange}: {symbol!r} is not a {market_type} market of account {account}"
SYMBOLS_REQUIRED = "{exchange} lists trades per symbol only: name the symbols to read"
LOOKBACK_CLAMPED = "{exchange} keeps {days} days of trades: read from {start}"
NO_PRICE = "no price for {symbols}"

_CREDENTIALS = (("api_key_env", "apiKey"), ("secret_env", "secret"), ("password_env", "password"))
_BALANCE_META_KEYS = {"info", "timestamp", "datetime", "free", "used", "total", "debt"}
_SIGNATURE = re.compile(r"(signature|sign)=[^&\s]+", re.IGNORECASE)


class CcxtExchange(ExchangeAdapter):
    """One account on one ccxt exchange, one ccxt client: one thread at a time (``fork``
    gives another). Clients and markets are reused across passes (``exchanges.pool``)."""

    def __init__(self, account, *, max_pages: int = DEFAULT_MAX_PAGES):
        self.account = account
        self.max_pages = max_pages
        exchange_id = (account.exchange or "").strip()
        exchange_class = getattr(ccxt, exchange_id, None) if exchange_id in ccxt.exchanges else None
        if exchange_class is None:
            raise ConfigurationError(UNKNOWN_EXCHANGE.format(exchange=exchange_id, account=account))
        self.exchange_id = exchange_id
        self.dialect = dialect_for(exchange_id)
        self._secrets: list[str] = []
        credentials = self._read_credentials()
        options = account.ccxt_options or {}
        if not isinstance(options, dict):
            raise ConfigurationError(f"ccxt_options of account {account} must be an object")
        config = deep_merge(self._default_config(), options)
        shape = json.dumps(
            [exchange_id, bool(account.sandbox), config], sort_keys=True, default=str
        )
        # markets are shared per venue configuration; clients per account configuration
        self._markets_key = pool.fingerprint(shape)
        self._client_key = pool.fingerprint(shape, *(f"{k}={v}" for k, v in credentials.items()))
        self._markets: dict | None = None
        self._markets_shared = False
        self._exchange = pool.client_take(self._client_key)
        if self._exchange is None:
            self._exchange = self._client_build(exchange_class, config, credentials, options)
        # one request spacing per venue and key across concurrent passes (exchanges.pool),
        # set from this configuration each time, a client taken from the pool included
        self._exchange.throttle = pool.throttle_for(
            exchange_id,
            credentials.get("apiKey"),
            self._exchange.rateLimit,
            self.dialect.rate_limit_burst,
        ).throttle

    def _client_build(self, exchange_class, config: dict, credentials: dict, options: dict):
        """A new ccxt client of this configuration (``__init__``, when none is idle): a copy
        of the venue configuration's pristine client (built once per process) with this
        account's keys, state of its own, and its own HTTP session and redacting logger."""
        template = pool.template_get(self._markets_key)
        if template is None:
            template = self._client_construct(exchange_class, config, options)
            pool.template_put(self._markets_key, template)
        logger = RedactingLogger(logging.getLogger("ccxt.wire"), _redactor(self._secrets))
        return client_clone(template, credentials, logger)

    def _client_construct(self, exchange_class, config: dict, options: dict):
        """A ccxt client of this venue configuration, without credentials."""
        account = self.account
        exchange_id = self.exchange_id
        try:
            client = exchange_class(config)
            if account.sandbox:
                client.set_sandbox_mode(True)
                # the test URLs replace urls.api; explicit overrides still win
                api_override = (options.get("urls") or {}).get("api")
                if isinstance(api_override, dict) and isinstance(client.urls["api"], dict):
                    client.urls["api"] = deep_merge(client.urls["api"], api_override)
                elif api_override:
                    client.urls["api"] = copy.deepcopy(api_override)
        except ccxt.BaseError as exc:
            raise ConfigurationError(self.redact(f"{exchange_id}: {exc}")) from None
        return client

    def fork(self) -> CcxtExchange:
        """Another adapter for the same account with its own ccxt client (clients keep
        per-call state: one thread each), sharing this one's markets. Close it after use.

        An idle client of this configuration is taken as the constructor would take it,
        without working the configuration out again (its keys are this adapter's: the same
        account, read at the same pass); else the constructor builds one."""
        client = pool.client_take(self._client_key)
        if client is None:
            return CcxtExchange(self.account, max_pages=self.max_pages)
        twin = copy.copy(self)  # the configuration this one worked out; per client:
        twin.dialect = dialect_for(self.exchange_id)
        twin._secrets = list(self._secrets)
        twin._markets, twin._markets_shared = None, False
        twin._exchange = client
        return twin

    # --- construction -------------------------------------------------------------------
    def _read_credentials(self) -> dict:
        credentials = {}
        for field_name, ccxt_key in _CREDENTIALS:
            variable = getattr(self.account, field_name, "") or ""
            if not variable:
                continue
            value = os.environ.get(variable)
            if not value:
                raise MissingCredentials(
                    MISSING_VARIABLE.format(
                        variable=variable, field=field_name, account=self.account.name
                    )
                )
            credentials[ccxt_key] = value
            self._secrets.append(value)
        return credentials

    def _default_config(self) -> dict:
        market_type = self.account.market_type or "spot"
        options: dict = {
            "defaultType": market_type,
            "warnOnFetchOpenOrdersWithoutSymbol": False,
            "fetchCurrencies": False,  # a signed call per load_markets we do not need
            "fetchMargins": False,  # Binance: margin pairs, not needed to read an account
            **self.dialect.ccxt_options(self.account),
        }
        return {
            "enableRateLimit": True,
            "timeout": DEFAULT_TIMEOUT_MS,
            "enableLastJsonResponse": True,
            "enableLastHttpResponse": True,
            "enableLastResponseHeaders": True,
            "has": {"fetchCurrencies": False},
            "options": options,
        }

    # --- plumbing -----------------------------------------------------------------------
    def redact(self, text: str) -> str:
        return _redact(text, self._secrets)

    def _message(self, exc: BaseException) -> str:
        text = self.redact(f"{type(exc).__name__}: {exc}")
        if len(text) > MAX_MESSAGE:
            text = text[:MAX_MESSAGE] + "..."
        return text

    def _retry_after(self) -> float | None:
        headers = getattr(self._exchange, "last_response_headers", None) or {}
        value = headers.get("Retry-After") if hasattr(headers, "get") else None
        try:
            return float(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    def _map_error(self, exc: Exception, check: Callable[[object], str | None] | None):
        message = self._message(exc)
        if isinstance(exc, ExchangeError):
            return exc
        if isinstance(exc, ccxt.AuthenticationError | ccxt.AccountSuspended):
            return AuthenticationFailed(message)
        if isinstance(exc, ccxt.OrderNotFound):
            return OrderNotFound(message)
        if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
            return RateLimited(message, retry_after=self._retry_after())
        if isinstance(exc, ccxt.ExchangeNotAvailable):  # includes OnMaintenance
            return ExchangeUnavailable(message, retry_after=self._retry_after())
        if isinstance(exc, ccxt.BadResponse):  # includes NullResponse
            return BadExchangeResponse(message)
        if isinstance(exc, ccxt.NetworkError):  # RequestTimeout, InvalidNonce, ...
            return TransientExchangeError(message, retry_after=self._retry_after())
        if isinstance(exc, ccxt.BaseError):
            problem = self._garbage_problem()
            if problem is not None:
                return BadExchangeResponse(f"{problem} ({message})")
            return ExchangeError(message)
        # ccxt choked on the body (TypeError, KeyError, ...): an unparseable response
        return BadExchangeResponse(f"unparseable response: {message}")

    # --- what dialects use ------------------------------------------------------------------
    @property
    def exchange(self):
        """The ccxt client (dialects parse raw rows with it)."""
        return self._exchange

    @property
    def markets(self) -> dict | None:
        return self._markets

    def last_json(self):
        """The parsed JSON body of the last call (checked by the call's shape check)."""
        return self._exchange.last_json_response

    def market(self, symbol: str) -> dict:
        """The account's market for a unified symbol; an unknown symbol is an ExchangeError."""
        markets = self._ensure_markets()
        market = markets.get(symbol)
        if market is None and self._markets_shared:  # listed since the copy was loaded?
            market = self._ensure_markets(fresh=True).get(symbol)
        wanted = self.account.market_type or "spot"
        if market is None or market.get("type") != wanted:
            raise ExchangeError(
                UNKNOWN_SYMBOL.format(
                    exchange=self.exchange_id,
                    symbol=symbol,
                    market_type=wanted,
                    account=self.account.name,
                )
            )
        return market

    def market_by_id(self, market_id: str, *, spot: bool) -> dict | None:
        """The loaded market with this venue id, spot or not (None when not loaded)."""
        for market in (self._exchange.markets_by_id or {}).get(market_id) or []:
            if bool(market.get("spot")) == spot:
                return market
        return None

    def log_incomplete(self, note: str) -> None:
        logger.warning("%s %s: %s", self.exchange_id, self.account.name, note)

    def call(self, method: str, *args, check=None, **kwargs):
        """Call one ccxt method; map its errors; check the raw response's shape."""
        exchange = self._exchange
        exchange.last_json_response = None
        exchange.last_http_response = None
        try:
            result = getattr(exchange, method)(*args, **kwargs)
        except Exception as exc:  # every failure becomes an adapter error, none is swallowed
            raise self._map_error(exc, check) from None
        problem = self._shape_problem(check)
        if problem is not None:
            raise BadExchangeResponse(f"{self.exchange_id} {method}: {problem}")
        return result

    def _garbage_problem(self) -> str | None:
        """Why the last body is no answer at all (not an error the exchange reported)."""
        raw = self._exchange.last_json_response
        if raw is None or raw == {}:
            return self._shape_problem(None)
        return self.dialect.envelope_problem(raw)

    def _shape_problem(self, check) -> str | None:
        raw = self._exchange.last_json_response
        text = self._exchange.last_http_response
        if raw is None:
            shown = (text or "").strip()[:60]
            return f"response is not a JSON object or array: {self.redact(shown)!r}"
        if raw == {}:
            return "response is an empty object"
        if check is not None:
            return check(raw)
        return None

    def _ensure_markets(self, *, fresh: bool = False) -> dict:
        """The venue's markets: this process's copy for the venue configuration while it is
        younger than ``pool.MARKETS_TTL_SECONDS`` (``fresh``: ask the venue now)."""
        if self._markets is not None and not fresh:
            return self._markets
        donor = None if fresh else pool.markets_get(self._markets_key)
        if donor is not None:
            if donor is not self._exchange:
                self._exchange.set_markets_from_exchange(donor)
            self._markets = self._exchange.markets
            self._markets_shared = True
            return self._markets
        markets = self.call("load_markets", True, check=self.dialect.check_markets)
        if not markets:
            raise BadExchangeResponse(f"{self.exchange_id}: no markets in the response")
        self._markets = markets
        self._markets_shared = False
        pool.markets_put(self._markets_key, self._exchange)
        return self._markets

    # --- the interface --------------------------------------------------------------------
    def fetch_open_orders(self) -> FetchResult[ExchangeOrder]:
        self._ensure_markets()
        raw_orders, complete, note = self.dialect.fetch_open_orders(self)
        orders = [self._order(o) for o in raw_orders]
        return FetchResult(orders, complete=complete, note=note, fetched_at=_now())

    def fetch_positions(self) -> FetchResult[ExchangePosition]:
        if not self.account.is_derivative:
            return FetchResult([], complete=True, note="spot account", fetched_at=_now())
        self._ensure_markets()
        raw_positions, complete, note = self.dialect.fetch_positions(self)
        positions = []
        for raw in raw_positions:
            position = self._position(raw)
            if position is not None:
                positions.append(position)
        return FetchResult(positions, complete=complete, note=note, fetched_at=_now())

    def fetch_balances(self) -> FetchResult[ExchangeBalance]:
        self._ensure_markets()
        balance = self.call(
            "fetch_balance", self.dialect.balance_params(self), check=self.dialect.check_balances
        )
        if not isinstance(balance, dict):
            raise BadExchangeResponse(f"{self.exchange_id} fetch_balance: not a balance")
        items = []
        for currency in sorted(k for k in balance if k not in _BALANCE_META_KEYS):
            entry = balance[currency]
            if isinstance(entry, dict):
                items.append(self._balance(currency, entry))
        return FetchResult(items, complete=True, fetched_at=_now())

    def fetch_order(
        self, client_order_id: str, exchange_order_id: str, symbol: str
    ) -> ExchangeOrder:
        self._ensure_markets()
        if not (client_order_id or exchange_order_id):
            raise OrderNotFound("fetch_order needs a client or an exchange order id")
        raw = self.dialect.fetch_order(self, client_order_id, exchange_order_id, symbol)
        return self._order(raw)

    def cancel_order(self, client_order_id: str, exchange_order_id: str, symbol: str) -> None:
        self._ensure_markets()
        params: dict = {}
        if not exchange_order_id:
            if not client_order_id:
                raise OrderNotFound("cancel_order needs a client or an exchange order id")
            params = self.dialect.cancel_params(client_order_id)
        self.call("cancel_order", exchange_order_id or None, symbol, params)

    def trade_history_policy(self) -> TradeHistoryPolicy:
        return self.dialect.trade_policy(self.account.market_type or "spot")

    def order_retention(self) -> OrderRetention:
        return self.dialect.order_retention(self.account.market_type or "spot")

    def fetch_my_trades(
        self, since: datetime, symbols: list[str] | None = None
    ) -> FetchResult[ExchangeTrade]:
        if not isinstance(since, datetime) or since.tzinfo is None:
            raise ValueError(NAIVE_SINCE.format(since=since))
        self._ensure_markets()
        policy = self.trade_history_policy()
        now = _now()
        start = since
        notes = []
        if policy.max_lookback is not None and start < now - policy.max_lookback:
            start = now - policy.max_lookback
            notes.append(
                LOOKBACK_CLAMPED.format(
                    exchange=self.exchange_id,
                    days=policy.max_lookback.days,
                    start=start.isoformat(timespec="seconds"),
                )
            )
        if symbols is not None:
            symbols = sorted(set(symbols))
            for symbol in symbols:
                self.market(symbol)  # an unknown symbol is an error, never "no trades"
            if not symbols:
                return FetchResult([], complete=True, fetched_at=now, covered_from=start)
        elif policy.symbol_required:
            note = SYMBOLS_REQUIRED.format(exchange=self.exchange_id)
            return FetchResult([], complete=False, note=note, fetched_at=now, covered_from=start)
        raw_trades, complete, note = self.dialect.fetch_trades(
            self, millis(start), millis(now), symbols, policy
        )
        if note:
            notes.append(note)
            if not complete:
                self.log_incomplete(note)
        seen: dict[tuple[str, str], ExchangeTrade] = {}
        for raw in raw_trades:
            if not self.dialect.is_fill(raw):
                continue
            trade = self._trade(raw)
            if trade.executed_at >= start:
                seen[(trade.symbol, trade.trade_id)] = trade
        trades = sorted(seen.values(), key=lambda t: (t.executed_at, t.symbol, t.trade_id))
        return FetchResult(
            trades, complete=complete, note="; ".join(notes), fetched_at=now, covered_from=start
        )

    def fetch_mark_prices(self, symbols: list[str]) -> FetchResult[ExchangeMarkPrice]:
        self._ensure_markets()
        wanted = sorted(set(symbols))
        now = _now()
        if not wanted:
            return FetchResult([], complete=True, fetched_at=now)
        for symbol in wanted:
            self.market(symbol)
        method, source = self.dialect.mark_price_call(self.account.market_type or "spot")
        tickers = self.call(
            method, wanted, self.dialect.mark_price_params(self), check=self.dialect.check_tickers
        )
        if not isinstance(tickers, dict):
            raise BadExchangeResponse(f"{self.exchange_id} {method}: not a ticker map")
        items, missing = [], []
        for symbol in wanted:
            price = self._mark_price(symbol, tickers.get(symbol), source, now)
            if price is None:
                missing.append(symbol)
            else:
                items.append(price)
        note = NO_PRICE.format(symbols=", ".join(missing)) if missing else ""
        return FetchResult(items, complete=not missing, note=note, fetched_at=now)

    def load_instruments(self) -> list[InstrumentInfo]:
        # the instruments' terms: read from the venue by this adapter, never a kept copy
        markets = self._ensure_markets(fresh=self._markets is None or self._markets_shared)
        wanted = self.account.market_type or "spot"
        mode = self._exchange.precisionMode
        instruments = []
        for symbol in sorted(markets):
            market = markets[symbol]
            if market.get("type") != wanted:
                continue
            precision = market.get("precision") or {}
            amount_step = step_from_precision(precision.get("amount"), mode)
            size = self._contract_size(symbol)
            if size is not None:  # the venue's lot is in contracts: the step in base units
                amount_step = CONTEXT.multiply(amount_step, size)
            instruments.append(
                InstrumentInfo(
                    symbol=symbol,
                    base=market.get("base") or "",
                    quote=market.get("quote") or "",
                    settle=market.get("settle") or "",
                    market_type=wanted,
                    amount_step=amount_step,
                    price_step=step_from_precision(precision.get("price"), mode),
                    contract_size=to_decimal(market.get("contractSize")) or Decimal(1),
                    active=market.get("active") is not False,
                )
            )
        return instruments

    def close(self) -> None:
        """Hand the ccxt client back for the account's next pass (its HTTP session stays
        open: keep-alive); the adapter is not used after this."""
        exchange, self._exchange = self._exchange, None
        if exchange is not None:
            exchange.last_json_response = exchange.last_http_response = None
            pool.client_give(self._client_key, exchange, _close_client)

    # --- parsing ----------------------------------------------------------------------------
    def _order(self, order: dict) -> ExchangeOrder:
        if not isinstance(order, dict) or order.get("id") is None:
            raise BadExchangeResponse(f"{self.exchange_id}: an order without an id")
        size = self._contract_size(order.get("symbol"))
        amount = scaled(to_decimal(order.get("amount")), size)
        filled = scaled(to_decimal(order.get("filled")), size) or Decimal(0)
        if amount is None:
            raise BadExchangeResponse(f"{self.exchange_id}: order {order['id']} has no amount")
        raw_status = order.get("status")
        status = _STATUS.get(str(raw_status).lower()) if raw_status is not None else None
        if status is None:
            raise BadExchangeResponse(
                UNKNOWN_STATUS.format(
                    exchange=self.exchange_id, status=raw_status, order_id=order["id"]
                )
            )
        if status == CLOSED and filled < amount:
            status = CANCELED  # partially filled, then cancelled
        remaining = scaled(to_decimal(order.get("remaining")), size)
        return ExchangeOrder(
            symbol=order.get("symbol") or "",
            side=str(order.get("side") or "").lower(),
            type=local_order_type(order, dialect=self.dialect),
            amount=amount,
            filled=filled,
            status=status,
            exchange_order_id=str(order["id"]),
            client_order_id=order.get("clientOrderId") or "",
            price=to_decimal(order.get("price")),
            average=to_decimal(order.get("average")),
            remaining=remaining,
            timestamp=millis_to_datetime(order.get("timestamp")),
            raw=order.get("info") or {},
        )

    def _position(self, position: dict) -> ExchangePosition | None:
        contracts = to_decimal(position.get("contracts")) or Decimal(0)
        if contracts == 0:
            return None
        size = to_decimal(position.get("contractSize")) or Decimal(1)
        qty = CONTEXT.multiply(contracts.copy_abs(), size)
        side = str(position.get("side") or "").lower()
        if side not in ("long", "short"):
            side = raw_position_side(position.get("info") or {})
        if side == "short" or (side not in ("long", "short") and contracts < 0):
            qty = -qty
        return ExchangePosition(
            symbol=position.get("symbol") or "",
            qty=qty,
            entry_price=to_decimal(position.get("entryPrice")),
            raw=position.get("info") or {},
        )

    def _balance(self, currency: str, entry: dict) -> ExchangeBalance:
        free = to_decimal(entry.get("free"))
        used = to_decimal(entry.get("used"))
        total = to_decimal(entry.get("total"))
        if total is None:  # in the wide context: 38-digit amounts are summed exactly
            total = CONTEXT.add(free or Decimal(0), used or Decimal(0))
        if free is None:
            free = CONTEXT.subtract(total, used or Decimal(0))
        if used is None:
            used = CONTEXT.subtract(total, free)
        return ExchangeBalance(currency=currency, free=free, used=used, total=total)

    def _contract_size(self, symbol) -> Decimal | None:
        """The multiplier from ccxt amounts to base units: the contract size where the dialect
        says ccxt counts contracts (OKX swaps), else None (amounts are base units already)."""
        if not self.dialect.contract_amounts:
            return None
        market = (self._markets or {}).get(symbol) or {}
        if not market.get("contract"):
            return None
        return to_decimal(market.get("contractSize")) or Decimal(1)

    def _trade(self, trade: dict) -> ExchangeTrade:
        if not isinstance(trade, dict) or trade.get("id") in (None, ""):
            raise BadExchangeResponse(f"{self.exchange_id}: a trade without an id")
        trade_id = str(trade["id"])
        executed_at = millis_to_datetime(trade.get("timestamp"))
        amount = to_decimal(trade.get("amount"))
        price = to_decimal(trade.get("price"))
        side = str(trade.get("side") or "").lower()
        if executed_at is None or amount is None or price is None or side not in ("buy", "sell"):
            raise BadExchangeResponse(
                f"{self.exchange_id}: trade {trade_id} lacks its time, amount, price or side"
            )
        fee = trade.get("fee") or {}
        liquidity = str(trade.get("takerOrMaker") or "").lower()
        return ExchangeTrade(
            trade_id=trade_id,
            exchange_order_id=str(trade.get("order") or ""),
            symbol=trade.get("symbol") or "",
            side=side,
            quantity=scaled(amount, self._contract_size(trade.get("symbol"))),
            price=price,
            fee=to_decimal(fee.get("cost")) or Decimal(0),
            fee_currency=self.dialect.trade_fee_currency(trade),
            executed_at=executed_at,
            client_order_id=self.dialect.trade_client_order_id(trade),
            liquidity=liquidity if liquidity in ("maker", "taker") else "",
            raw=trade.get("info") or {},
        )

    def _mark_price(self, symbol, ticker, source, now) -> ExchangeMarkPrice | None:
        if not isinstance(ticker, dict):
            return None
        price, used = None, source
        if source == MARK:
            price = to_decimal(ticker.get("markPrice"))
        if price is None or price <= 0:
            price, used = to_decimal(ticker.get("last")), LAST
        if price is None or price <= 0:
            return None
        return ExchangeMarkPrice(
            symbol=symbol,
            price=price,
            time=millis_to_datetime(ticker.get("timestamp")) or now,
            source=used,
            raw=ticker.get("info") or {},
        )


def _now() -> datetime:
    return datetime.now(tz=UTC)


# what a client's construction sets once from the venue's description and ccxt never
# changes afterwards: shared by a template's copies (deep copies of them would cost about
# what the construction saves); every other dict, list or set a client holds is its own
SHARED_DESCRIPTION = frozenset(
    {"api", "exceptions", "httpExceptions", "features", "has", "timeframes", "countries"}
)


def client_clone(template, credentials: dict, logger):
    """A client equal to one ccxt builds from the template's configuration plus
    ``credentials``: the template's attributes, each dict, list and set deep-copied (options
    included: some venues keep per-key facts there, e.g. Bybit's unified-account flags)
    except the description parts in ``SHARED_DESCRIPTION``, with a new HTTP session."""
    client = copy.copy(template)
    for name, value in vars(template).items():
        if name not in SHARED_DESCRIPTION and isinstance(value, dict | list | set):
            setattr(client, name, copy.deepcopy(value))
    session = LeanSession()  # requests' Session, plain calls prepared directly
    session.trust_env = template.session.trust_env
    client.session = session
    client.origin = client.uuid()
    client.logger = logger
    for key, value in credentials.items():
        setattr(client, key, value)
    remember_parsed_orders(client)  # its own (the template's parse_order is ccxt's)
    return client


def _close_client(exchange) -> None:
    session = getattr(exchange, "session", None)
    if session is not None:
        session.close()


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _SIGNATURE.sub(r"\1=***", text)


def _redactor(secrets: list[str]) -> Callable[[str], str]:
    """The client's wire-log redaction: its account's secrets, not the adapter (a client
    outlives the adapter that built it)."""
    secrets = list(secrets)
    return lambda text: _redact(text, secrets)
