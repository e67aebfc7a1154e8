"""Aligned text tables for the management commands (``pnl``, ``exposure``,
``exchange_snapshot``), and the one way they write an amount."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from tradingstate.amounts import amount_str

MISSING = "n/a"  # a figure that needs a price nobody has: never shown as 0
STALE = "STALE"


def amount(value: Decimal | None) -> str:
    """An amount as the API writes it (``amount_str``), or ``n/a``."""
    return MISSING if value is None else amount_str(value)


def table_lines(
    header: Sequence[str], rows: Sequence[Sequence[object]], *, right: Sequence[int] = ()
) -> list[str]:
    """Columns padded to their widest cell; the columns in ``right`` (numbers) right-aligned."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        parts = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append(("  " + "  ".join(parts)).rstrip())
    return lines
