from django.apps import AppConfig


class TradingstateConfig(AppConfig):
    name = "tradingstate"
    verbose_name = "State of record"

    def ready(self) -> None:
        from tradingstate import (
            checks,  # noqa: F401  (registers the deploy checks)
            lookups,  # noqa: F401  (registers field__any)
        )
