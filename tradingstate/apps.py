from django.apps import AppConfig


class TradingstateConfig(AppConfig):
    name = "tradingstate"
    verbose_name = "State of record"
