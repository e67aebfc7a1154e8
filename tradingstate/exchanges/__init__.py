"""Exchange adapters: ``adapter_for(account)`` returns the account's ExchangeAdapter."""

from __future__ import annotations

from tradingstate.exchanges.base import ConfigurationError, ExchangeAdapter

PAPER = "paper"


def adapter_for(account) -> ExchangeAdapter:
    """``paper`` -> PaperExchange; any ccxt id -> CcxtExchange; else ConfigurationError."""
    exchange_id = (account.exchange or "").strip()
    if exchange_id == PAPER:
        from tradingstate.exchanges.paper import PaperExchange

        return PaperExchange(account)
    import ccxt

    if exchange_id not in ccxt.exchanges:
        raise ConfigurationError(
            f"unknown exchange {exchange_id!r} for account {account.name}: "
            "use 'paper' or a ccxt exchange id"
        )
    from tradingstate.exchanges.ccxt import CcxtExchange

    return CcxtExchange(account)
