"""``{% load money %}``: amounts and times in templates, as traders read them.

- ``amount``: the API's string (``amount_str``), ``n/a`` for a figure with no price.
- ``qty``: ``amount_display`` (the instrument's precision when a step is given:
  ``{{ p.qty|qty:step }}``, else trailing zeros dropped), wrapped in a ``<span>`` whose
  title is the full stored value (one hover away).
- ``money``: a computed figure in the valuation currency (P&L, notional) to cents, the full
  value on hover.
- ``ts``: a moment with seconds and UTC offset (``2026-12-06 14:03:12 +0000``).
- ``ago``: a relative age (``12 s ago``, ``3 min ago``, ``2 h ago``, ``4 d ago``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from django import template
from django.utils import timezone
from django.utils.html import format_html

from tradingstate.amounts import CONTEXT, amount_display, amount_str

register = template.Library()

MISSING = "n/a"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"


@register.filter
def amount(value):
    """``amount_str`` (the API's string), or ``n/a`` for a figure with no price (never 0)."""
    return MISSING if value is None else amount_str(value)


@register.filter
def qty(value, step=None):
    """``amount_display`` in a span titled with the full stored value; ``n/a`` for None."""
    if value is None or value == "":
        return MISSING
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    step_value = None if step in (None, "") else Decimal(str(step))
    return format_html(
        '<span class="num" title="{}">{}</span>',
        amount_str(number),
        amount_display(number, step_value),
    )


@register.filter
def money(value, places=2):
    """A computed figure in the valuation currency (P&L, notional) to ``places`` decimals
    (half-even), in a span titled with the full value (the API's string); ``n/a`` for None."""
    if value is None or value == "":
        return MISSING
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    # a computed figure (a notional) can pass 28 digits, the ambient context's
    shown = number.quantize(
        Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_EVEN, context=CONTEXT
    )
    return format_html(
        '<span class="num" title="{}">{}</span>', amount_str(number), format(shown, "f")
    )


def moment_str(value: datetime | None) -> str:
    """A moment in the configured time zone with seconds and the UTC offset."""
    if value is None:
        return "—"
    return timezone.localtime(value).strftime(TIME_FORMAT)


def age_str(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


@register.filter
def ts(value):
    return moment_str(value)


@register.filter
def ago(value, now=None):
    """``value`` (a datetime) as an age relative to ``now`` (default: the current time)."""
    if value is None:
        return "never"
    now = now or timezone.now()
    return age_str((now - value).total_seconds())
