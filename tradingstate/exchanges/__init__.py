"""Exchange adapters: ``adapter_for(account)`` returns the account's ExchangeAdapter."""
