"""The kinds of sync operation that bring local state to the exchange's truth. Pure: no ORM.

``RepairKind`` names the bulk writes of ``tradingstate.services.sync`` (its ``SYNC_BY_KIND``
is keyed by it); the reconciliation diff plans repairs of these kinds, and the Repair rows
record them. It lives apart from ``sync.py`` so the pure diff can name a kind without
importing the ORM.
"""

from __future__ import annotations

from enum import StrEnum


class RepairKind(StrEnum):
    ORDER_CREATE = "order_create"
    ORDER_STATE = "order_state"
    POSITION_SET = "position_set"
    BALANCE_SET = "balance_set"
    POSITION_ENTRY_PRICE = "position_entry_price"  # issue 15: adopt the venue's entry price
    FILL_RECORD = "fill_record"  # issue 14: missing_fill (and inferred fills)
    FILL_CORRECT = "fill_correct"  # issue 14: fill_mismatch


# the order a pass applies them in: creations before state moves, orders before fills (a
# fill then fills the gap between the order's filled quantity and its fills), fills before
# books (a position_mismatch sets what the pass's fills left: see reconciliation.diff_fills)
REPAIR_ORDER = (
    RepairKind.ORDER_CREATE,
    RepairKind.ORDER_STATE,
    RepairKind.FILL_RECORD,
    RepairKind.FILL_CORRECT,
    RepairKind.POSITION_SET,
    RepairKind.POSITION_ENTRY_PRICE,
    RepairKind.BALANCE_SET,
)
