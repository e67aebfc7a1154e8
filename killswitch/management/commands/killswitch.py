"""``manage.py killswitch --activate --reason "..." | --deactivate | --status`` (contract)."""

from __future__ import annotations

import getpass
import uuid

from django.core.management.base import BaseCommand, CommandError

from killswitch.selectors import KillSwitchStatus, killswitch_state, killswitch_status
from killswitch.services import killswitch_activate, killswitch_deactivate
from tradingstate.actors import Actor
from tradingstate.errors import ApplicationError
from tradingstate.models import ExchangeAccount

REASON_REQUIRED = 'A reason is required: --activate --reason "why trading must stop".'
UNKNOWN_ACCOUNT = "Unknown account '{name}'."


def cli_actor() -> Actor:
    try:
        user = getpass.getuser()
    except Exception:  # no login name (containers without a passwd entry)
        user = "unknown"
    return Actor(type="user", name=f"cli:{user}", correlation_id=f"cli-{uuid.uuid4().hex}")


def status_lines(status: KillSwitchStatus) -> list[str]:
    if status.active:
        lines = [f"Kill switch: ACTIVE (reason: {status.reason})"]
        if status.activated_by:
            lines.append(f"  activated by {status.activated_by} at {status.activated_at:%c}")
    else:
        lines = ["Kill switch: INACTIVE"]
    lines += [f"Account {h.account}: HALTED (reason: {h.reason})" for h in status.halted_accounts]
    return lines


class Command(BaseCommand):
    help = "Activate, deactivate or show the kill switch (global, or one account with --account)."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--activate", action="store_true", help="Refuse new orders.")
        group.add_argument("--deactivate", action="store_true", help="Accept orders again.")
        group.add_argument("--status", action="store_true", help="Show the current state.")
        parser.add_argument("--reason", default="", help="Why (required with --activate).")
        parser.add_argument("--account", metavar="NAME", help="Only this account.")
        parser.add_argument(
            "--cancel-open-orders",
            action="store_true",
            help="With --activate: cancel the open orders on the exchange too.",
        )

    def handle(self, *args, activate, deactivate, status, reason, account, **options):
        acct = self._account(account)
        if status:
            result = killswitch_status(acct) if acct else killswitch_state()
            if acct:
                state = "HALTED" if result.active else "not halted"
                suffix = f" (reason: {result.reason})" if result.active else ""
                self.stdout.write(f"Account {acct.name}: {state}{suffix}")
                result = killswitch_state()
            self.stdout.write("\n".join(status_lines(result)))
            return
        if options["cancel_open_orders"] and not activate:
            raise CommandError("--cancel-open-orders goes with --activate.")
        if activate and not reason.strip():
            raise CommandError(REASON_REQUIRED)
        try:
            if activate:
                result = killswitch_activate(
                    reason=reason,
                    actor=cli_actor(),
                    account=acct,
                    cancel_open_orders=options["cancel_open_orders"],
                )
            else:
                result = killswitch_deactivate(actor=cli_actor(), reason=reason, account=acct)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(result.message)
        if result.cancel_summary is not None:
            summary = result.cancel_summary
            self.stdout.write(
                f"Cancelled {summary['cancelled']} open order(s); "
                f"{summary['remaining']} still open; complete={summary['complete']}"
            )
            for name, acct_summary in summary["accounts"].items():
                for order in acct_summary["remaining"]:
                    self.stdout.write(
                        f"  still open on {name}: {order['exchange_order_id']} "
                        f"{order['symbol']} (known locally: {order['known_locally']})"
                    )
                if acct_summary["error"]:
                    self.stdout.write(f"  {name}: {acct_summary['error']}")

    def _account(self, name):
        if not name:
            return None
        try:
            return ExchangeAccount.objects.get(name=name)
        except ExchangeAccount.DoesNotExist:
            raise CommandError(UNKNOWN_ACCOUNT.format(name=name)) from None
