"""Counters the tests of fixed costs share: what a step compiles, what it constructs."""

from __future__ import annotations


def compiles(monkeypatch) -> list[str]:
    """The model of every query the ORM compiles from now on (``Query.get_compiler``)."""
    from django.db.models.sql.query import Query

    compiled: list[str] = []
    get_compiler = Query.get_compiler

    def counting(self, *args, **kwargs):
        compiled.append(self.model.__name__ if self.model else "?")
        return get_compiler(self, *args, **kwargs)

    monkeypatch.setattr(Query, "get_compiler", counting)
    return compiled


def ccxt_constructions(monkeypatch) -> list[str]:
    """The class of every ccxt client constructed from now on (``Exchange.__init__``)."""
    import ccxt

    built: list[str] = []
    original = ccxt.Exchange.__init__

    def counting(self, *args, **kwargs):
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ccxt.Exchange, "__init__", counting)
    return built
