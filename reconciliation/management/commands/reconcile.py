"""``manage.py reconcile [--account NAME | --all] [--dry-run] [--loop]``.

One pass per account, printing the run summary; exit 0 when every pass completed, 1 when
one failed, 2 when one was incomplete (a fetch failed), 3 when one was skipped (lock held).
No pass runs, and the exit status says why, when the command line is wrong: 64 (EX_USAGE:
unknown or conflicting options, no account named, no account by that name) or the account
is disabled: 69 (EX_UNAVAILABLE). argparse's own 2 would read as "incomplete".
``--loop`` runs the ticker that enqueues passes for the django-q2 cluster.
"""

from __future__ import annotations

import json
import signal
import sys
import threading

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reconciliation.models import ReconciliationRun
from reconciliation.services import run_reconciliation
from reconciliation.ticker import Ticker
from tradingstate.models import ExchangeAccount

EXIT_CODES = {
    ReconciliationRun.Status.COMPLETED: 0,
    ReconciliationRun.Status.FAILED: 1,
    ReconciliationRun.Status.INCOMPLETE: 2,
    ReconciliationRun.Status.SKIPPED: 3,
}
EX_USAGE = 64  # sysexits.h: the command was used incorrectly
EX_UNAVAILABLE = 69  # sysexits.h: the service (here: the account's passes) is unavailable


class UsageExitCommand(BaseCommand):
    """A command whose exit statuses are documented: a command-line error exits ``EX_USAGE``
    (64) instead of argparse's 2, which such a command may use for one of its outcomes. From
    ``call_command`` it raises ``CommandError`` with ``returncode`` 64."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def error(message: str):
            if parser.called_from_command_line:
                parser.print_usage(sys.stderr)
                parser.exit(EX_USAGE, f"{parser.prog}: error: {message}\n")
            raise CommandError(f"Error: {message}", returncode=EX_USAGE)

        parser.error = error  # type: ignore[method-assign]
        return parser


def account_by_name(name: str) -> ExchangeAccount:
    account = ExchangeAccount.objects.filter(name=name).first()
    if account is None:
        known = ", ".join(ExchangeAccount.objects.values_list("name", flat=True)) or "none"
        raise CommandError(
            f"--account: no account named {name!r} (known: {known})", returncode=EX_USAGE
        )
    return account


class Command(UsageExitCommand):
    help = "Reconcile accounts against their exchange now, or run the ticker with --loop."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--account", help="the account's name")
        which.add_argument("--all", action="store_true", help="every enabled account")
        parser.add_argument("--dry-run", action="store_true", help="find, but repair nothing")
        parser.add_argument("--loop", action="store_true", help="run the ticker (one leader)")
        parser.add_argument("--interval", type=int, help="override the interval (seconds)")

    def handle(
        self, *args, account=None, all=False, dry_run=False, loop=False, interval=None, **options
    ):
        if account and all:  # argparse refuses it on the command line; call_command does not
            raise CommandError(
                "argument --all: not allowed with argument --account", returncode=EX_USAGE
            )
        if loop:
            return self._loop(account, interval)
        if not account and not all:
            raise CommandError(
                "name an account with --account NAME, or use --all", returncode=EX_USAGE
            )
        accounts = (
            [account_by_name(account)]
            if account
            else list(ExchangeAccount.objects.filter(enabled=True))
        )
        if account and not accounts[0].enabled:
            reason = accounts[0].disabled_reason or "disabled"
            raise CommandError(
                f"account {account!r} is disabled: {reason}", returncode=EX_UNAVAILABLE
            )
        worst = 0
        for acct in accounts:
            run = run_reconciliation(acct, ReconciliationRun.Trigger.MANUAL, dry_run)
            self.stdout.write(summary(run))
            worst = max(worst, EXIT_CODES.get(run.status, 1))
        if worst:
            raise SystemExit(worst)

    def _loop(self, account: str | None, interval: int | None) -> None:
        if account:
            account_by_name(account)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, stop_handler(stop))
        Ticker(interval_override=interval, accounts=[account] if account else None).run(stop)
        self.stdout.write("ReconciliationLoop stopped")


def stop_handler(stop: threading.Event):
    """A signal handler that sets ``stop`` without waiting on it in the signalled thread.

    ``Event.set()`` takes the event's lock. The handler runs in the main thread between two
    of its instructions, so it can run while that very thread holds the lock (inside the
    loop's ``stop.wait()``, before it blocks): ``set()`` would then wait on its own thread
    forever, and SIGTERM would hang the loop. A short-lived thread sets it instead; it gets
    the lock as soon as the main thread lets go of it."""

    def handler(signum, frame) -> None:
        threading.Thread(target=stop.set, name="stop-on-signal", daemon=True).start()

    return handler


def summary(run: ReconciliationRun) -> str:
    head = (
        f"{run.account.name}: run {run.pk} {run.status}"
        f"{' (dry run)' if run.dry_run else ''} in {run.duration_ms or 0} ms — "
        f"{run.discrepancies_found} discrepancies (orders={run.order_discrepancies} "
        f"positions={run.position_discrepancies} balances={run.balance_discrepancies} "
        f"fills={run.fill_discrepancies}), "
        f"{run.repairs_applied} repairs applied"
    )
    lines = [head]
    if run.repairs_deferred:
        lines.append(f"  {run.repairs_deferred} repairs deferred (rows changed meanwhile)")
    if run.error:
        lines.append(f"  error: {run.error}")
    for row in run.discrepancies.all().order_by("id"):
        lines.append(f"  [{row.status}] {json.dumps(row.detail)}")
    return "\n".join(lines)
