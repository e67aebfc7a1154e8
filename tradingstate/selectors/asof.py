"""State as of a moment: what tradingstate held for an account at time T, rebuilt from the
audit trail (issue 18 item 7).

Every write to an order, a position or a balance records the row's snapshot after the change
(``AuditEntry.after``; ``fill.record`` entries carry the order and position they moved), so
the newest entry at or before T for each object is what we held at T. The audit trail is
append-only, so the answer for a past T never changes.

One statement for the books (the newest entry per object, grouped in the database, so it
reads one row per object however long the history), one for the P&L snapshot: a constant
number of statements whatever the history size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import Max, Min, Q
from django.db.models.fields.json import KeyTextTransform, KeyTransform

from tradingstate.models import AuditEntry, ExchangeAccount, PnlSnapshot

ORDER, POSITION, BALANCE, FILL = "order", "position", "balance", "fill"
KEYS = {ORDER: "client_order_id", POSITION: "symbol", BALANCE: "currency"}


@dataclass
class HeldState:
    """What tradingstate held for ``account`` at ``at``: each object's audited snapshot."""

    account: str
    at: datetime
    orders: list[dict] = field(default_factory=list)
    positions: list[dict] = field(default_factory=list)
    balances: list[dict] = field(default_factory=list)
    # the hourly P&L snapshot at or before ``at`` (None: none recorded yet)
    pnl: PnlSnapshot | None = None
    last_change_at: datetime | None = None  # the newest audited change at or before ``at``
    last_change_id: int | None = None

    def position(self, symbol: str) -> dict | None:
        return next((p for p in self.positions if p["symbol"] == symbol), None)

    def balance(self, currency: str) -> dict | None:
        return next((b for b in self.balances if b["currency"] == currency), None)

    def order(self, client_order_id: str) -> dict | None:
        return next((o for o in self.orders if o["client_order_id"] == client_order_id), None)


def _snapshots(entry_type: str, after: dict | None, before: dict | None):
    """(kind, snapshot) pairs an entry records the state of, after its change."""
    if entry_type in KEYS:
        snap = after if after is not None else before
        if isinstance(snap, dict) and KEYS[entry_type] in snap:
            yield entry_type, snap
    elif entry_type == FILL and isinstance(after, dict):
        for kind in (ORDER, POSITION):
            snap = after.get(kind)
            if isinstance(snap, dict) and KEYS[kind] in snap:
                yield kind, snap


def account_state_at(*, account: ExchangeAccount, at: datetime) -> HeldState:
    """The orders, positions and balances held for ``account`` at ``at`` (two statements)."""
    upto = AuditEntry.objects.filter(account=account, created_at__lte=at)
    direct = (
        upto.filter(target_type__in=list(KEYS))
        .order_by()
        .values("target_type", "target_id")
        .annotate(last=Max("id"))
        .values("last")
    )
    fills = (
        upto.filter(target_type=FILL)
        .order_by()
        .annotate(
            o=KeyTextTransform("client_order_id", KeyTransform(ORDER, "after")),
            p=KeyTextTransform("symbol", KeyTransform(POSITION, "after")),
        )
        .values("o", "p")
        .annotate(last=Max("id"))
        .values("last")
    )
    newest: dict[tuple[str, str], tuple[int, dict]] = {}
    state = HeldState(account=account.name, at=at)
    rows = (
        AuditEntry.objects.filter(Q(id__in=direct) | Q(id__in=fills))
        .order_by("id")
        .values_list("id", "created_at", "target_type", "before", "after")
    )
    for entry_id, created_at, target_type, before, after in rows:
        state.last_change_at, state.last_change_id = created_at, entry_id
        for kind, snap in _snapshots(target_type, after, before):
            newest[(kind, str(snap[KEYS[kind]]))] = (entry_id, snap)
    books = {ORDER: state.orders, POSITION: state.positions, BALANCE: state.balances}
    for (kind, _), (_, snap) in sorted(newest.items()):
        books[kind].append(snap)
    state.pnl = (
        PnlSnapshot.objects.filter(account=account, taken_at__lte=at).order_by("-taken_at").first()
    )
    return state


def account_history_span(*, account: ExchangeAccount) -> tuple[datetime | None, datetime | None]:
    """The first and the newest audited change of ``account`` (the scrubber's range)."""
    span = AuditEntry.objects.filter(account=account).aggregate(
        lo=Min("created_at"), hi=Max("created_at")
    )
    return span["lo"], span["hi"]


def snapshot_decimal(snap: dict | None, name: str) -> Decimal | None:
    value = None if snap is None else snap.get(name)
    return None if value in (None, "") else Decimal(str(value))
