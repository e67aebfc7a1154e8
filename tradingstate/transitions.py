"""The order status machine (a contract, from the platform's order manager). Pure: no ORM.

pending          -> submitted | rejected | cancelled
submitted        -> partially_filled | filled | cancelled | rejected | expired
partially_filled -> partially_filled | filled | cancelled
filled, cancelled, rejected, expired are terminal.
"""

from __future__ import annotations

from collections import deque
from functools import lru_cache

PENDING = "pending"
SUBMITTED = "submitted"
PARTIALLY_FILLED = "partially_filled"
FILLED = "filled"
CANCELLED = "cancelled"
REJECTED = "rejected"
EXPIRED = "expired"

STATUSES = (PENDING, SUBMITTED, PARTIALLY_FILLED, FILLED, CANCELLED, REJECTED, EXPIRED)
ACTIVE = frozenset({PENDING, SUBMITTED, PARTIALLY_FILLED})
TERMINAL = frozenset({FILLED, CANCELLED, REJECTED, EXPIRED})

TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({SUBMITTED, REJECTED, CANCELLED}),
    SUBMITTED: frozenset({PARTIALLY_FILLED, FILLED, CANCELLED, REJECTED, EXPIRED}),
    PARTIALLY_FILLED: frozenset({PARTIALLY_FILLED, FILLED, CANCELLED}),
    FILLED: frozenset(),
    CANCELLED: frozenset(),
    REJECTED: frozenset(),
    EXPIRED: frozenset(),
}

TRANSITION_NOT_ALLOWED = "Order status cannot change from '{frm}' to '{to}'."
UNKNOWN_STATUS = "Unknown order status '{status}'."


def can_transition(frm: str, to: str) -> bool:
    return to in TRANSITIONS.get(frm, frozenset())


def transition_path(frm: str, to: str) -> list[str] | None:
    """Shortest chain of legal moves from ``frm`` to ``to`` (excluding ``frm``).

    The reconciler uses it to advance a local order to the exchange's state, e.g.
    pending -> submitted -> filled. ``[]`` when already there; ``None`` when unreachable.
    """
    path = _shortest_path(frm, to)
    return None if path is None else list(path)


@lru_cache(maxsize=512)
def _shortest_path(frm: str, to: str) -> tuple[str, ...] | None:
    # the graph is a constant: a pass asks the same few pairs thousands of times (bounded:
    # statuses come from callers, and an unknown one must not grow the cache for ever)
    if frm == to:
        return ()
    queue: deque[tuple[str, tuple[str, ...]]] = deque([(frm, ())])
    seen = {frm}
    while queue:
        state, path = queue.popleft()
        for nxt in sorted(TRANSITIONS.get(state, ())):
            if nxt in seen:
                continue
            if nxt == to:
                return (*path, nxt)
            seen.add(nxt)
            queue.append((nxt, (*path, nxt)))
    return None
