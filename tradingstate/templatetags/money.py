"""``{% load money %}``: amounts in templates as the API writes them."""

from __future__ import annotations

from django import template

from tradingstate.amounts import amount_str

register = template.Library()

MISSING = "n/a"


@register.filter
def amount(value):
    """``amount_str`` (the API's string), or ``n/a`` for a figure with no price (never 0)."""
    return MISSING if value is None else amount_str(value)
