"""Every write to the state of record. Keyword-only, atomic, audited, with a required actor."""

from tradingstate.services.accounts import (
    account_auto_repair_pause,
    account_set_enabled,
    account_sync_from_config,
    account_upsert,
)
from tradingstate.services.audit import require_reason
from tradingstate.services.books import (
    Overfill,
    balance_correct,
    balance_set,
    fill_record,
    position_correct,
    position_set,
)
from tradingstate.services.bots import BotCredentials, bot_create
from tradingstate.services.orders import (
    TransitionRequest,
    order_bulk_transition,
    order_register,
    order_transition,
)
from tradingstate.services.paper import paper_mark_set, paper_marks_walk

__all__ = [
    "BotCredentials",
    "Overfill",
    "TransitionRequest",
    "account_auto_repair_pause",
    "account_set_enabled",
    "account_sync_from_config",
    "account_upsert",
    "balance_correct",
    "balance_set",
    "bot_create",
    "fill_record",
    "order_bulk_transition",
    "order_register",
    "order_transition",
    "paper_mark_set",
    "paper_marks_walk",
    "position_correct",
    "position_set",
    "require_reason",
]
