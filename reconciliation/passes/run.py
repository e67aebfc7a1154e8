"""The pass: lease, fetch, diff, persist, log.

``run_reconciliation(account, trigger, dry_run=False)`` takes the account's lease (one pass
per account at a time, across processes and hosts; held with no transaction open), fetches
the exchange's truth and reads the local state (no transaction: bots are never blocked by a
slow exchange), diffs (pure), then persists in one short transaction that re-checks every
row's version, and finally writes its log lines in one batch.
"""

from __future__ import annotations

import gc
import logging
import threading
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from reconciliation import diff as d
from reconciliation.locks import LeaseLost, account_pass_lease
from reconciliation.models import ReconciliationRun
from reconciliation.passes.context import PassContext, PassOutcome
from reconciliation.passes.fetch import (
    PASS_SESSIONS,
    Sessions,
    fetch_lookups,
    fetch_snapshot,
    fetch_trades,
    marks_wanted,
)
from reconciliation.passes.log import emit_pass_logs
from reconciliation.passes.persist import persist_pass, record_auth_failure, record_run_end
from reconciliation.selectors import (
    account_for_pass,
    instrument_terms,
    local_books,
    local_fill_orders,
    local_fills,
    local_snapshot,
    previous_run_findings,
    stale_not_found_counts,
)
from tradingstate.exchanges import adapter_for
from tradingstate.exchanges import base as ex
from tradingstate.models import ExchangeAccount

log = logging.getLogger("reconciliation")

LEASE_HELD = "another pass of this account holds the lock"
LEASE_LOST = "the account's lease was lost before the pass could persist (another pass took it)"


def run_reconciliation(
    account: ExchangeAccount | int,
    trigger: str = ReconciliationRun.Trigger.MANUAL,
    dry_run: bool = False,
    *,
    run_id: int | None = None,
    adapter: ex.ExchangeAdapter | None = None,
    requested_by: str = "",
) -> ReconciliationRun:
    """One reconciliation pass for one account. Never raises for exchange trouble: the run
    records it (``incomplete`` for transient errors, ``failed`` for authentication)."""
    # an id is read once, under the lease (the pass reads its account there anyway)
    given = account if isinstance(account, ExchangeAccount) else None
    account_id = given.pk if given is not None else int(account)
    ctx = PassContext(
        account=given,
        trigger=trigger,
        dry_run=dry_run,
        run_id=run_id,
        requested_by=requested_by,
    )
    outcome: PassOutcome | None = None
    error: Exception | None = None
    with account_pass_lease(account_id) as acquired:
        if acquired:
            try:
                outcome = _leased_pass(ctx, account_id, adapter)
            except Exception as exc:  # recorded below; the persist transaction rolled back
                error = exc
    if ctx.account is None:  # not read under the lease: a missing one raises DoesNotExist
        ctx.account = ExchangeAccount.objects.get(pk=account_id)
    account = ctx.account
    if not acquired or isinstance(error, LeaseLost):
        run = record_run_end(ctx, ReconciliationRun.Status.SKIPPED, LEASE_HELD)
        log.info("Reconciliation skipped for %s: another pass holds the lock", account.name)
        return run
    if error is not None:
        run = record_run_end(
            ctx, ReconciliationRun.Status.FAILED, f"{type(error).__name__}: {error}"
        )
        log.exception("Reconciliation failed for %s", account.name, exc_info=error)
        return run
    assert outcome is not None
    emit_pass_logs(ctx.account, outcome)
    heap_freeze_once()
    return outcome.run


_heap = {"frozen": False}
_heap_lock = threading.Lock()


def heap_freeze_once() -> None:
    """After a process's first pass, move everything it has built to stay (Django, the
    models, ccxt and its clients' API descriptions: some 120,000 objects) out of the
    collector's sight (``gc.freeze``). A pass allocates enough to set off a full collection
    every few passes, and a full collection walked all of them each time (50 to 110 ms in a
    1,000-order pass); what a pass leaves behind is still collected as before."""
    if _heap["frozen"]:
        return
    with _heap_lock:
        if not _heap["frozen"]:
            _heap["frozen"] = True
            gc.freeze()


def _leased_pass(
    ctx: PassContext, account_id: int, adapter: ex.ExchangeAdapter | None
) -> PassOutcome:
    account = ctx.account = account_for_pass(account_id)  # fresh, leased
    own_adapter = adapter is None
    if own_adapter:
        try:
            adapter = adapter_for(account)
        except ex.AuthenticationFailed as exc:  # e.g. a credential variable is not set
            return _auth_failed(ctx, exc)
    sessions = Sessions(adapter, PASS_SESSIONS)
    try:
        books = local_books(account=account)  # before the exchange's snapshot: see local_books
        snapshot, retry_after, auth_error = fetch_snapshot(account, sessions)
        if auth_error is not None:
            return _auth_failed(ctx, auth_error)
        local = local_snapshot(account=account, exchange_orders=snapshot.orders, books=books)
        previous = previous_run_findings(account=account)
        local.not_found = stale_not_found_counts(previous)
        terms = instrument_terms(account=account)
        cfg = diff_config(account, adapter, terms)
        # an order older than the venue's order-query retention is not asked about: "not
        # found" would prove nothing (its trades decide it, else staff)
        stale = d.stale_candidates(local, snapshot, cfg)
        candidates = [o for o in stale if d.venue_can_tell(o, cfg)]
        lookups, lookup_auth_error = fetch_lookups(sessions, candidates)
        if lookup_auth_error is not None:
            return _auth_failed(ctx, lookup_auth_error)
        # trades last: every fill the order snapshot and lookups reflect is in the list; the
        # marks (positions and balances only) are read at the same time
        trades_retry, trades_auth_error, marks = fetch_trades(
            account,
            sessions,
            snapshot,
            local,
            cfg.amount_steps,
            settings.TRADINGSTATE,
            marks=marks_wanted(account, local, snapshot, settings.TRADINGSTATE.valuation_currency),
        )
        if trades_auth_error is not None:
            return _auth_failed(ctx, trades_auth_error)
        if trades_retry:
            retry_after = max(retry_after or 0, trades_retry)
        known = {o.id for o in local.orders}
        extra = local_fill_orders(account=account, trades=snapshot.trades, known=known)
        if extra:  # the diff's stale candidates are those of every order it sees
            local.orders.extend(extra)
            stale = sorted(
                stale + d.stale_candidates(local, snapshot, cfg, orders=extra),
                key=lambda o: o.client_order_id,
            )
        local.fills = local_fills(account=account, trades=snapshot.trades)
    finally:
        sessions.close()
        if own_adapter:
            adapter.close()
    findings = d.diff(local, snapshot, cfg, lookups, stale)
    return persist_pass(
        ctx,
        snapshot=snapshot,
        local=local,
        findings=findings,
        retry_after=retry_after,
        marks=marks,
        previous={k: n for k, (n, _seen) in previous.items()},
    )


def diff_config(
    account: ExchangeAccount, adapter: ex.ExchangeAdapter | None = None, terms: dict | None = None
):
    retention = adapter.order_retention() if adapter is not None else None
    if terms is None:
        terms = instrument_terms(account=account)
    return d.DiffConfig(
        now=timezone.now(),
        grace_seconds=account.stale_order_grace_seconds,
        balance_tolerance=account.balance_tolerance,
        balance_tolerances={
            k: Decimal(str(v)) for k, v in (account.balance_tolerances or {}).items()
        },
        amount_steps={symbol: t[0] for symbol, t in terms.items()},
        instrument_terms={symbol: t[1:] for symbol, t in terms.items()},
        check_positions=account.is_derivative,
        entry_price_tolerance=settings.TRADINGSTATE.entry_price_tolerance,
        fills=True,
        stale_not_found_passes=settings.TRADINGSTATE.stale_not_found_passes,
        order_retention=retention,
    )


def _auth_failed(ctx: PassContext, exc: Exception) -> PassOutcome:
    outcome = record_auth_failure(ctx, exc)
    log.error(
        "ALERT reconciliation stopped for account %s: %s (re-enable the account to resume)",
        ctx.account.name,
        outcome.run.error,
    )
    return outcome
