"""The bots' HTTP API (``/api/v1/``): thin views over ``tradingstate.services``.

One error shape everywhere: ``{"error": code, "detail": text, "fields": {name: [messages]}}``.
"""
