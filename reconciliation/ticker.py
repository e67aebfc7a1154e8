"""The ticker: ``manage.py reconcile --loop``.

django-q2's scheduler wakes about every 30 s and counts whole minutes, so it cannot keep a
15 s cadence. The ticker does: one leader at a time across hosts (PostgreSQL session advisory
lock; a file lock on SQLite) enqueues each enabled account's pass every
``reconciliation_interval_seconds``; the qcluster workers execute them. Overlapping passes
of one account are still prevented by the account lock in the pass itself.

The passes due are handed over in batches, one task of up to ``[worker] passes_per_worker``
passes, which one worker runs at once (``reconciliation.passes.batch``). A batch waits for
company at most ``BATCH_WAIT_SECONDS``, and only while more passes fall due within that
time. The bookkeeping of a tick is set-based: one statement each to expire stale queued
runs, to find the accounts still queued, and to insert the new run rows. After its startup
pass an account's slot moves towards its place among the accounts, spread over the interval
(a thousand accounts do not all fall due in the same tick), by at most
``PHASE_STEP_SECONDS`` per interval, so no interval leaves the cadence's ±2 s budget.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from contextlib import ExitStack
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from reconciliation.alerts import alerts_check
from reconciliation.locks import file_lock, lock_key
from reconciliation.models import ReconciliationRun, WorkerHeartbeat
from reconciliation.passes.triggers import enqueue_pass, enqueue_passes
from reconciliation.schedules import schedules_ensure
from tradingstate.models import ExchangeAccount
from tradingstate.services.pnl import pnl_snapshot_schedule_ensure
from tradingstate.tasks import enqueue_paper_walk

log = logging.getLogger("reconciliation")

LEADER_LOCK = "ticker-leader"
TICK_SECONDS = 0.25
HEARTBEAT_SECONDS = 5
ALERTS_CHECK_SECONDS = 30
MAX_BACKOFF_FACTOR = 8
BATCH_WAIT_SECONDS = 1.0
PHASE_STEP_SECONDS = 0.75
ENQUEUED_KEPT = 10_000


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Leadership:
    """Hold the ticker leadership for as long as this object lives."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self.held = False

    def try_acquire(self) -> bool:
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                # Re-entrant within our session: True again while we still hold it, False if
                # our connection was lost and another host took over. release() unlocks all.
                cur.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(LEADER_LOCK)])
                self.held = bool(cur.fetchone()[0])
            return self.held
        if not self.held:
            self.held = self._stack.enter_context(file_lock(LEADER_LOCK))
            if not self.held:
                self._stack.close()
                self._stack = ExitStack()
        return self.held

    def release(self) -> None:
        if connection.vendor == "postgresql" and self.held:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock_all()")
        self._stack.close()
        self.held = False


class Ticker:
    def __init__(
        self,
        *,
        enqueue=None,
        enqueue_batch=None,
        interval_override: int | None = None,
        clock=time.monotonic,
        accounts: list[str] | None = None,
        enqueue_walk=None,
        wall_clock=time.time,
    ) -> None:
        # a test's one-pass ``enqueue`` gets the batch's passes one by one
        if enqueue_batch is None and enqueue is not None:
            enqueue_batch = self._one_by_one
        self.enqueue = enqueue or enqueue_pass
        self.enqueue_batch = enqueue_batch or enqueue_passes
        self.batch_size = settings.TRADINGSTATE.worker.passes_per_worker
        self.pending: list[tuple[int, str, int]] = []  # queued runs not yet handed over
        self.pending_since = 0.0
        self.enqueue_walk = enqueue_walk or enqueue_paper_walk
        self.wall_clock = wall_clock
        self.walk_tick: int | None = None
        self.interval_override = interval_override
        self.clock = clock
        self.accounts = accounts
        self.next_due: dict[int, float] = {}
        self.phase_debt: dict[int, float] = {}  # seconds each slot still moves later
        self.backed_off: dict[int, int | None] = {}
        self.leadership = Leadership()
        self._last_beat = 0.0
        self._last_check = clock()  # the first check one period after taking the lead
        # the latest passes handed over (bounded: a leader runs for months)
        self.enqueued: deque[tuple[int, str, float]] = deque(maxlen=ENQUEUED_KEPT)

    def banner(self) -> None:
        cfg = settings.TRADINGSTATE
        interval = self.interval_override or cfg.reconciliation_interval_seconds
        log.info(
            "ReconciliationLoop started (interval=%ss, auto_repair=%s)",
            interval,
            cfg.auto_repair,
            extra={
                "structured": {"interval_seconds": interval, "auto_repair": cfg.auto_repair},
                "with_message": True,
            },
        )

    def run(self, stop: threading.Event) -> None:
        self.banner()
        schedules_ensure()  # the daily prune and the minute checks (idempotent)
        announced = False
        try:
            while not stop.is_set():
                self._refresh_connection()
                if not self.leadership.try_acquire():
                    self._flush()  # runs queued while leading still go to a worker
                    if not announced:
                        log.info("Ticker standing by: another host leads (%s)", holder_name())
                        announced = True
                    self.next_due.clear()  # on taking over, start with a pass for everyone
                    self.phase_debt.clear()
                    stop.wait(1.0)
                    continue
                if announced or not self.next_due:
                    log.info("Ticker leading on %s", holder_name())
                    announced = False
                    pnl_snapshot_schedule_ensure()  # the hourly P&L snapshot (issue 15)
                self.tick()
                stop.wait(TICK_SECONDS)
        finally:
            self._flush()
            self.leadership.release()

    def _flush(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            self._send(batch, self.clock())

    def _refresh_connection(self) -> None:
        """Django recycles connections older than CONN_MAX_AGE; on PostgreSQL the leader's
        lock lives in its session, so a leader only drops a connection that is broken
        (recycling it would hand leadership to another host every CONN_MAX_AGE seconds)."""
        if self.leadership.held and connection.vendor == "postgresql":
            if connection.connection is not None and not connection.is_usable():
                connection.close()
            return
        close_old_connections()

    def tick(self) -> None:
        now = self.clock()
        qs = ExchangeAccount.objects.filter(enabled=True)
        if self.accounts:
            qs = qs.filter(name__in=self.accounts)
        due: list[tuple[int, str]] = []
        first_seen: list[int] = []
        intervals: dict[int, int] = {}
        soon = False
        for account_id, interval in qs.values_list("id", "reconciliation_interval_seconds"):
            interval = intervals[account_id] = self.interval_override or interval
            slot = self.next_due.get(account_id)
            if slot is None:
                due.append((account_id, ReconciliationRun.Trigger.STARTUP))
                first_seen.append(account_id)
            elif now >= slot:
                last_run, delay = self._backoff(account_id, interval)
                if delay > interval and self.backed_off.get(account_id) != last_run:
                    # wait once per incomplete pass, then try again
                    self.backed_off[account_id] = last_run
                    self.next_due[account_id] = now + (delay - interval)
                    continue
                due.append((account_id, ReconciliationRun.Trigger.SCHEDULE))
                # keep the cadence: the next slot follows the planned one, not the late one
                self.next_due[account_id] = max(
                    slot + interval + self._phase_step(account_id), now + interval / 2
                )
            elif slot < now + BATCH_WAIT_SECONDS:
                soon = True
        for k, account_id in enumerate(first_seen):
            # after the startup pass the slots spread over one interval, a little at a time:
            # no interval grows by more than PHASE_STEP_SECONDS (the cadence budget is ±2 s)
            self.phase_debt[account_id] = intervals[account_id] * k / len(first_seen)
            self.next_due[account_id] = now + intervals[account_id] + self._phase_step(account_id)
        self._enqueue(due, now)
        self._hand_over(now, soon)
        if now - self._last_check >= ALERTS_CHECK_SECONDS:
            self._last_check = now
            try:  # overdue passes and due notifications; never stops the ticker
                alerts_check()
            except Exception:
                log.exception("Alert check failed; the next one is in %ss", ALERTS_CHECK_SECONDS)
        self._paper_walk()
        if now - self._last_beat >= HEARTBEAT_SECONDS:
            WorkerHeartbeat.objects.update_or_create(
                role="ticker", defaults={"holder": holder_name(), "beat_at": timezone.now()}
            )
            self._last_beat = now

    def _paper_walk(self) -> None:
        """Every ``paper_walk_interval_seconds`` (0: off), one step of the paper venue's
        seeded random walk on the cluster. Ticks count wall-clock intervals, so a new
        leader continues the sequence and a tick delivered twice is applied once."""
        interval = settings.TRADINGSTATE.paper_walk_interval_seconds
        if not interval:
            return
        tick = int(self.wall_clock() // interval)
        if tick != self.walk_tick:
            self.walk_tick = tick
            self.enqueue_walk(tick)

    def _phase_step(self, account_id: int) -> float:
        """The part of the account's remaining phase shift taken in this interval."""
        debt = self.phase_debt.get(account_id, 0.0)
        step = min(debt, PHASE_STEP_SECONDS)
        if debt - step > 0:
            self.phase_debt[account_id] = debt - step
        else:
            self.phase_debt.pop(account_id, None)
        return step

    def _backoff(self, account_id: int, interval: int) -> tuple[int | None, float]:
        """After incomplete passes (network trouble), wait longer: Retry-After or doubling."""
        recent = list(
            ReconciliationRun.objects.filter(account_id=account_id)
            .exclude(status__in=[ReconciliationRun.Status.SKIPPED, ReconciliationRun.Status.QUEUED])
            .order_by("-id")
            .values_list("id", "status", "retry_after_seconds")[:4]
        )
        streak = 0
        for _, status, _ in recent:
            if status != ReconciliationRun.Status.INCOMPLETE:
                break
            streak += 1
        if not streak:
            return None, 0
        retry_after = recent[0][2] or 0
        return recent[0][0], max(retry_after, interval * min(2**streak, MAX_BACKOFF_FACTOR))

    def _enqueue(self, due: list[tuple[int, str]], now: float) -> None:
        """Queue a run for each due account without one still queued (the queue may lag:
        don't pile more behind it). Three statements however many accounts are due."""
        if not due:
            return
        ids = [account_id for account_id, _ in due]
        horizon = timezone.now() - timedelta(seconds=settings.Q_CLUSTER["retry"])
        queued = ReconciliationRun.objects.filter(
            account_id__in=ids, status=ReconciliationRun.Status.QUEUED
        )
        queued.filter(created_at__lt=horizon).update(
            status=ReconciliationRun.Status.FAILED, error="never picked up by a worker"
        )
        busy = set(queued.values_list("account_id", flat=True))
        runs = ReconciliationRun.objects.bulk_create(
            ReconciliationRun(account_id=account_id, trigger=trigger, requested_by="system:ticker")
            for account_id, trigger in due
            if account_id not in busy
        )
        if runs and not self.pending:
            self.pending_since = now
        self.pending += [(r.account_id, r.trigger, r.pk) for r in runs]

    def _hand_over(self, now: float, more_due_soon: bool) -> None:
        """Enqueue the pending passes in batches of ``batch_size``: full batches at once,
        the rest unless more passes fall due soon and it has waited less than
        ``BATCH_WAIT_SECONDS``."""
        while len(self.pending) >= self.batch_size:
            batch, self.pending = self.pending[: self.batch_size], self.pending[self.batch_size :]
            self._send(batch, now)
            self.pending_since = now
        if self.pending and (not more_due_soon or now - self.pending_since >= BATCH_WAIT_SECONDS):
            batch, self.pending = self.pending, []
            self._send(batch, now)

    def _send(self, batch: list[tuple[int, str, int]], now: float) -> None:
        self.enqueue_batch(batch)
        self.enqueued += [(account_id, trigger, now) for account_id, trigger, _ in batch]

    def _one_by_one(self, batch: list[tuple[int, str, int]]) -> None:
        for account_id, trigger, run_id in batch:
            self.enqueue(account_id, trigger, run_id=run_id)
