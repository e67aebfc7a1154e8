"""CcxtExchange: any ccxt (sync) exchange behind the ExchangeAdapter interface.

Credentials come from the environment variables the account names; their values are never
stored, logged or put in exception text (every message is redacted). ccxt errors become the
adapter's error classes, numbers become ``Decimal`` via ``str()``, and each raw response is
checked for the shape the call needs: a 200 whose body is HTML, ``{}``, ``null`` or lacks
the data keys raises ``BadExchangeResponse`` instead of being read as "nothing there".
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import ccxt

from tradingstate.exchanges.base import (
    CANCELED,
    CLOSED,
    EXPIRED,
    OPEN,
    REJECTED,
    AuthenticationFailed,
    BadExchangeResponse,
    ConfigurationError,
    ExchangeAdapter,
    ExchangeBalance,
    ExchangeError,
    ExchangeOrder,
    ExchangePosition,
    ExchangeUnavailable,
    FetchResult,
    InstrumentInfo,
    MissingCredentials,
    OrderNotFound,
    RateLimited,
    TransientExchangeError,
)

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 10_000
DEFAULT_MAX_PAGES = 20
BYBIT_PAGE_LIMIT = 50
MAX_MESSAGE = 400

MISSING_VARIABLE = "environment variable {variable} ({field}) is not set for account {account}"
UNKNOWN_EXCHANGE = "unknown ccxt exchange id {exchange!r} for account {account}"
PAGE_CAP_HIT = "{what}: stopped after {pages} pages, the exchange still had more"
UNKNOWN_STATUS = "{exchange}: unknown order status {status!r} for order {order_id}"

_CREDENTIALS = (("api_key_env", "apiKey"), ("secret_env", "secret"), ("password_env", "password"))
_BALANCE_META_KEYS = {"info", "timestamp", "datetime", "free", "used", "total", "debt"}
_SIGNATURE = re.compile(r"(signature|sign)=[^&\s]+", re.IGNORECASE)

_STATUS = {
    "open": OPEN,
    "canceling": OPEN,
    "closed": CLOSED,
    "canceled": CANCELED,
    "cancelled": CANCELED,
    "expired": EXPIRED,
    "rejected": REJECTED,
}

# Raw or ccxt order types -> local Order.Type values.
_TYPES = {
    "market": "market",
    "limit": "limit",
    "limit_maker": "limit",
    "stop": "stop",
    "stop_market": "stop",
    "stop_loss": "stop",
    "stop_limit": "stop_limit",
    "stop_loss_limit": "stop_limit",
    "take_profit": "take_profit",
    "take_profit_market": "take_profit",
    "take_profit_limit": "take_profit_limit",
    "trailing_stop": "trailing_stop",
    "trailing_stop_market": "trailing_stop",
}
# Binance futures name limit variants without the suffix: STOP is a stop-limit order.
_BINANCE_FUTURES_TYPES = {"stop": "stop_limit", "take_profit": "take_profit_limit"}
# Bybit v5 stopOrderType -> (local type when the order is market, when limit).
_BYBIT_STOP_TYPES = {
    "stoploss": ("stop", "stop_limit"),
    "partialstoploss": ("stop", "stop_limit"),
    "stop": ("stop", "stop_limit"),
    "takeprofit": ("take_profit", "take_profit_limit"),
    "partialtakeprofit": ("take_profit", "take_profit_limit"),
    "trailingstop": ("trailing_stop", "trailing_stop"),
}


def deep_merge(base: dict, override: dict) -> dict:
    """A new dict: ``override`` merged into ``base``, nested dicts merged key by key."""
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def to_decimal(value) -> Decimal | None:
    """ccxt number (float, int or str) -> Decimal through ``str()``; None stays None."""
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise BadExchangeResponse(f"not a number: {str(value)[:40]!r}") from exc
    if not result.is_finite():
        raise BadExchangeResponse(f"not a finite number: {value!r}")
    return result


def step_from_precision(value, precision_mode: int) -> Decimal:
    """ccxt ``precision`` entry -> a step (0.001). TICK_SIZE gives the step itself."""
    if value is None:
        return Decimal(0)
    if precision_mode == ccxt.DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(value))
    if precision_mode == ccxt.TICK_SIZE:
        return to_decimal(value) or Decimal(0)
    return Decimal(0)  # SIGNIFICANT_DIGITS: no fixed step


def local_order_type(order: dict, exchange_id: str = "") -> str:
    """The local Order.Type for a ccxt order, using the raw type where ccxt collapses it."""
    info = order.get("info") or {}
    ccxt_type = str(order.get("type") or "").lower()
    if isinstance(info, dict) and "orderType" in info and "stopOrderType" in info:  # Bybit v5
        base = str(info.get("orderType") or ccxt_type).lower()
        stop = str(info.get("stopOrderType") or "").lower()
        if stop in _BYBIT_STOP_TYPES:
            market_type, limit_type = _BYBIT_STOP_TYPES[stop]
            return limit_type if base == "limit" else market_type
        return _TYPES.get(base, "other")
    raw = info.get("type") if isinstance(info, dict) else None
    if isinstance(raw, str) and raw:
        raw = raw.lower()
        futures = exchange_id.startswith("binance") and "avgPrice" in info
        if futures and raw in _BINANCE_FUTURES_TYPES:
            return _BINANCE_FUTURES_TYPES[raw]
        if raw in _TYPES:
            return _TYPES[raw]
    mapped = _TYPES.get(ccxt_type, "other")
    if order.get("triggerPrice") and mapped in ("market", "limit"):
        return "stop" if mapped == "market" else "stop_limit"
    return mapped


def _millis_to_datetime(ms) -> datetime | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


class _RedactingLogger:
    """Stands in for ccxt's logger: ccxt logs request headers (the API key) at DEBUG."""

    def __init__(self, target: logging.Logger, redact: Callable[[str], str]):
        self._target = target
        self._redact = redact

    def _log(self, level: int, msg, *args, **kwargs) -> None:
        if self._target.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            self._target.log(level, "%s", self._redact(text))

    def debug(self, msg, *args, **kwargs):
        self._log(logging.DEBUG, msg, *args)

    def info(self, msg, *args, **kwargs):
        self._log(logging.INFO, msg, *args)

    def warning(self, msg, *args, **kwargs):
        self._log(logging.WARNING, msg, *args)

    def error(self, msg, *args, **kwargs):
        self._log(logging.ERROR, msg, *args)

    def isEnabledFor(self, level: int) -> bool:
        return self._target.isEnabledFor(level)


class CcxtExchange(ExchangeAdapter):
    """One account on one ccxt exchange. Markets are loaded once per instance."""

    def __init__(self, account, *, max_pages: int = DEFAULT_MAX_PAGES):
        self.account = account
        self.max_pages = max_pages
        exchange_id = (account.exchange or "").strip()
        exchange_class = getattr(ccxt, exchange_id, None) if exchange_id in ccxt.exchanges else None
        if exchange_class is None:
            raise ConfigurationError(UNKNOWN_EXCHANGE.format(exchange=exchange_id, account=account))
        self.exchange_id = exchange_id
        self._secrets: list[str] = []
        credentials = self._read_credentials()
        options = account.ccxt_options or {}
        if not isinstance(options, dict):
            raise ConfigurationError(f"ccxt_options of account {account} must be an object")
        config = deep_merge(self._default_config(), options)
        config.update(credentials)
        config["logger"] = _RedactingLogger(logging.getLogger("ccxt.wire"), self.redact)
        try:
            self._exchange = exchange_class(config)
            if account.sandbox:
                self._exchange.set_sandbox_mode(True)
                # the test URLs replace urls.api; explicit overrides still win
                api_override = (options.get("urls") or {}).get("api")
                if isinstance(api_override, dict) and isinstance(self._exchange.urls["api"], dict):
                    self._exchange.urls["api"] = deep_merge(
                        self._exchange.urls["api"], api_override
                    )
                elif api_override:
                    self._exchange.urls["api"] = copy.deepcopy(api_override)
        except ccxt.BaseError as exc:
            raise ConfigurationError(self.redact(f"{exchange_id}: {exc}")) from None
        self._markets: dict | None = None

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
        }
        # load only the account's kind of markets (Binance and Bybit load every kind)
        if market_type == "spot":
            types = ["spot"]
        elif self.exchange_id == "bybit":
            types = ["linear", "inverse"]  # the adapter queries both categories
        else:
            user_options = (self.account.ccxt_options or {}).get("options") or {}
            types = [user_options.get("defaultSubType") or "linear"]
        if self.exchange_id in ("binance", "bybit"):
            options["fetchMarkets"] = {"types": types}
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
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return _SIGNATURE.sub(r"\1=***", text)

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

    def _call(self, method: str, *args, check=None, **kwargs):
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
        if self._is_bybit() and not (isinstance(raw, dict) and "retCode" in raw):
            return "response lacks Bybit's retCode"
        return None

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

    def _ensure_markets(self) -> dict:
        if self._markets is None:
            markets = self._call("load_markets", check=self._check_markets)
            if not markets:
                raise BadExchangeResponse(f"{self.exchange_id}: no markets in the response")
            self._markets = markets
        return self._markets

    # --- shape checks on raw responses ----------------------------------------------------
    def _is_bybit(self) -> bool:
        return self.exchange_id == "bybit"

    def _is_binance(self) -> bool:
        return self.exchange_id.startswith("binance")

    def _check_markets(self, raw) -> str | None:
        if self._is_bybit():
            return _bybit_list_problem(raw)
        if self._is_binance() and not (isinstance(raw, dict) and "symbols" in raw):
            return "exchangeInfo lacks 'symbols'"
        return None

    def _check_order_list(self, raw) -> str | None:
        if self._is_bybit():
            return _bybit_list_problem(raw)
        if self._is_binance() and not isinstance(raw, list):
            return "expected a list of orders"
        return None

    def _check_order(self, raw) -> str | None:
        if self._is_bybit():
            return _bybit_list_problem(raw)
        if self._is_binance() and not (
            isinstance(raw, dict) and "orderId" in raw and "status" in raw
        ):
            return "expected an order object with orderId and status"
        return None

    def _check_positions(self, raw) -> str | None:
        if self._is_bybit():
            return _bybit_list_problem(raw)
        if self._is_binance() and not isinstance(raw, list):
            return "expected a list of positions"
        return None

    def _check_balances(self, raw) -> str | None:
        if self._is_bybit():
            problem = _bybit_list_problem(raw)
            if problem is None and not all(
                isinstance(entry, dict) and isinstance(entry.get("coin"), list)
                for entry in raw["result"]["list"]
            ):
                problem = "wallet entries lack 'coin'"
            return problem
        if self._is_binance() and not (
            isinstance(raw, dict)
            and (isinstance(raw.get("balances"), list) or isinstance(raw.get("assets"), list))
        ):
            return "account response lacks 'balances'/'assets'"
        return None

    def _type_params(self) -> dict:
        # Binance defaults fetchOpenOrders() without a symbol to spot: say the type
        return {"type": self.account.market_type or "spot"}

    # --- the interface --------------------------------------------------------------------
    def fetch_open_orders(self) -> FetchResult[ExchangeOrder]:
        self._ensure_markets()
        if self._is_bybit():
            raw_orders, complete, note = self._bybit_paged("fetch_open_orders", "open orders")
        else:
            raw_orders = self._call(
                "fetch_open_orders",
                None,
                None,
                None,
                self._type_params(),
                check=self._check_order_list,
            )
            complete, note = True, ""
        orders = [self._order(o) for o in raw_orders]
        return FetchResult(orders, complete=complete, note=note, fetched_at=_now())

    def fetch_positions(self) -> FetchResult[ExchangePosition]:
        if not self.account.is_derivative:
            return FetchResult([], complete=True, note="spot account", fetched_at=_now())
        self._ensure_markets()
        if self._is_bybit():
            raw_positions, complete, note = self._bybit_paged("fetch_positions", "positions")
        else:
            raw_positions = self._call(
                "fetch_positions", None, self._type_params(), check=self._check_positions
            )
            complete, note = True, ""
        positions = []
        for raw in raw_positions:
            position = self._position(raw)
            if position is not None:
                positions.append(position)
        return FetchResult(positions, complete=complete, note=note, fetched_at=_now())

    def fetch_balances(self) -> FetchResult[ExchangeBalance]:
        self._ensure_markets()
        balance = self._call("fetch_balance", self._type_params(), check=self._check_balances)
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
        if self._is_bybit():
            raw = self._bybit_fetch_order(client_order_id, exchange_order_id, symbol)
        else:
            params = {} if exchange_order_id else {"clientOrderId": client_order_id}
            if self._is_binance() and not exchange_order_id:
                params = {"origClientOrderId": client_order_id}
            raw = self._call(
                "fetch_order", exchange_order_id or None, symbol, params, check=self._check_order
            )
        return self._order(raw)

    def cancel_order(self, client_order_id: str, exchange_order_id: str, symbol: str) -> None:
        self._ensure_markets()
        params: dict = {}
        if not exchange_order_id:
            if not client_order_id:
                raise OrderNotFound("cancel_order needs a client or an exchange order id")
            params = {"clientOrderId": client_order_id}
            if self._is_binance():
                params = {"origClientOrderId": client_order_id}
            elif self._is_bybit():
                params = {"orderLinkId": client_order_id}
        self._call("cancel_order", exchange_order_id or None, symbol, params)

    def load_instruments(self) -> list[InstrumentInfo]:
        markets = self._ensure_markets()
        wanted = self.account.market_type or "spot"
        mode = self._exchange.precisionMode
        instruments = []
        for symbol in sorted(markets):
            market = markets[symbol]
            if market.get("type") != wanted:
                continue
            precision = market.get("precision") or {}
            instruments.append(
                InstrumentInfo(
                    symbol=symbol,
                    base=market.get("base") or "",
                    quote=market.get("quote") or "",
                    settle=market.get("settle") or "",
                    market_type=wanted,
                    amount_step=step_from_precision(precision.get("amount"), mode),
                    price_step=step_from_precision(precision.get("price"), mode),
                    contract_size=to_decimal(market.get("contractSize")) or Decimal(1),
                    active=market.get("active") is not False,
                )
            )
        return instruments

    def close(self) -> None:
        session = getattr(self._exchange, "session", None)
        if session is not None:
            session.close()

    # --- Bybit v5 ---------------------------------------------------------------------------
    def _bybit_scopes(self) -> list[dict]:
        """One params dict per (category, settle coin) the account's markets span."""
        if not self.account.is_derivative:
            return [{}]
        markets = self._markets or {}
        linear_settles = sorted(
            {
                m.get("settle")
                for m in markets.values()
                if m.get("type") == self.account.market_type and m.get("linear") and m.get("settle")
            }
        )
        has_inverse = any(
            m.get("type") == self.account.market_type and m.get("inverse") for m in markets.values()
        )
        scopes = [{"subType": "linear", "settleCoin": settle} for settle in linear_settles]
        if has_inverse:
            scopes.append({"subType": "inverse"})
        return scopes or [{"subType": "linear"}]

    def _bybit_paged(self, method: str, what: str) -> tuple[list, bool, str]:
        check = self._check_positions if method == "fetch_positions" else self._check_order_list
        items: list = []
        for scope in self._bybit_scopes():
            cursor = None
            seen: set[str] = set()
            for _page in range(self.max_pages):
                params = dict(scope)
                params["limit"] = BYBIT_PAGE_LIMIT if method == "fetch_open_orders" else 200
                if cursor:
                    params["cursor"] = cursor
                if method == "fetch_positions":
                    page = self._call(method, None, params, check=check)
                else:
                    page = self._call(method, None, None, None, params, check=check)
                items.extend(page)
                cursor = self._exchange.last_json_response["result"].get("nextPageCursor") or None
                if not cursor:
                    break
                if cursor in seen:
                    note = f"{what}: the exchange repeated page cursor {cursor!r}"
                    return items, False, note
                seen.add(cursor)
            else:
                note = PAGE_CAP_HIT.format(what=what, pages=self.max_pages)
                logger.warning("%s %s: %s", self.exchange_id, self.account.name, note)
                return items, False, note
        return items, True, ""

    def _bybit_fetch_order(self, client_order_id, exchange_order_id, symbol) -> dict:
        params = {"orderId": exchange_order_id} if exchange_order_id else {}
        if not exchange_order_id:
            params["orderLinkId"] = client_order_id
        check = self._check_order_list
        for method in ("fetch_open_orders", "fetch_canceled_and_closed_orders"):
            found = self._call(method, symbol, None, None, dict(params), check=check)
            for order in found:
                if (exchange_order_id and str(order.get("id")) == str(exchange_order_id)) or (
                    not exchange_order_id and order.get("clientOrderId") == client_order_id
                ):
                    return order
        raise OrderNotFound(
            f"bybit: order {exchange_order_id or client_order_id} ({symbol}) not found"
        )

    # --- parsing ----------------------------------------------------------------------------
    def _order(self, order: dict) -> ExchangeOrder:
        if not isinstance(order, dict) or order.get("id") is None:
            raise BadExchangeResponse(f"{self.exchange_id}: an order without an id")
        amount = to_decimal(order.get("amount"))
        filled = to_decimal(order.get("filled")) or Decimal(0)
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
        remaining = to_decimal(order.get("remaining"))
        return ExchangeOrder(
            symbol=order.get("symbol") or "",
            side=str(order.get("side") or "").lower(),
            type=local_order_type(order, self.exchange_id),
            amount=amount,
            filled=filled,
            status=status,
            exchange_order_id=str(order["id"]),
            client_order_id=order.get("clientOrderId") or "",
            price=to_decimal(order.get("price")),
            average=to_decimal(order.get("average")),
            remaining=remaining,
            timestamp=_millis_to_datetime(order.get("timestamp")),
            raw=order.get("info") or {},
        )

    def _position(self, position: dict) -> ExchangePosition | None:
        contracts = to_decimal(position.get("contracts")) or Decimal(0)
        if contracts == 0:
            return None
        size = to_decimal(position.get("contractSize")) or Decimal(1)
        qty = abs(contracts) * size
        side = str(position.get("side") or "").lower()
        if side not in ("long", "short"):
            side = _raw_position_side(position.get("info") or {})
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
        if total is None:
            total = (free or Decimal(0)) + (used or Decimal(0))
        if free is None:
            free = total - (used or Decimal(0))
        if used is None:
            used = total - free
        return ExchangeBalance(currency=currency, free=free, used=used, total=total)


def _raw_position_side(info: dict) -> str:
    """The side from the raw position when ccxt could not tell (e.g. Binance notional 0)."""
    amount = info.get("positionAmt")
    if isinstance(amount, str) and amount:
        return "short" if amount.strip().startswith("-") else "long"
    side = str(info.get("side") or "").lower()
    return {"buy": "long", "sell": "short"}.get(side, "")


def _bybit_list_problem(raw) -> str | None:
    if not isinstance(raw, dict):
        return "expected a Bybit v5 envelope object"
    if str(raw.get("retCode")) != "0":
        return f"retCode {raw.get('retCode')!r}"
    result = raw.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("list"), list):
        return "result.list is missing"
    return None


def _now() -> datetime:
    return datetime.now(tz=UTC)
