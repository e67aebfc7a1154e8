"""Helpers shared by the kill-switch race tests."""

import threading

from django.db import connections

from tradingstate.actors import Actor

BOT = Actor(type="bot", name="alpha-bot")


def order_kwargs(account, coid):
    return {
        "account": account,
        "client_order_id": coid,
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "quantity": "0.05",
        "price": "50000",
        "actor": BOT,
    }


def in_thread(fn, results, key):
    def run():
        try:
            results[key] = fn()
        except BaseException as exc:
            results[key] = exc
        finally:
            connections.close_all()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t
