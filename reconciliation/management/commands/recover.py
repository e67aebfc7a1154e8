"""``manage.py recover [--config PATH]``: restart recovery.

Loads the accounts from the configuration, closes the order gate of each (new orders get 503
"reconciliation in progress"), and reconciles each before trading resumes: the gate opens
when the account's first pass after this point completes (now, or on a later pass).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from reconciliation.management.commands.reconcile import summary
from reconciliation.models import ReconciliationRun
from reconciliation.services import run_reconciliation
from tradingstate.actors import Actor
from tradingstate.config import ConfigError, load_config, resolve_config_path
from tradingstate.services import account_sync_from_config
from tradingstate.services.accounts import account_recovery_begin

log = logging.getLogger("tradingstate")


class Command(BaseCommand):
    help = "Restart recovery: load accounts from the config and reconcile each before trading."

    def add_arguments(self, parser):
        parser.add_argument("--config", help="TOML file (default: TRADINGSTATE_CONFIG)")

    def handle(self, *args, config=None, **options):
        path = resolve_config_path(config) if config else None
        try:
            app = load_config(path) if path else settings.TRADINGSTATE
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        actor = Actor.system("recover")
        accounts = account_sync_from_config(app=app, actor=actor)
        enabled = [a for a in accounts if a.enabled]
        for account in enabled:
            account_recovery_begin(account=account, actor=actor)
        log.info(
            "Application started (mode=%s config=%s accounts=%d)",
            app.mode,
            path or "default",
            len(enabled),
            extra={
                "structured": {"mode": app.mode, "accounts": [a.name for a in enabled]},
                "with_message": True,
            },
        )
        for account in enabled:
            run = run_reconciliation(account, ReconciliationRun.Trigger.STARTUP)
            self.stdout.write(summary(run))
            if run.status != ReconciliationRun.Status.COMPLETED:
                self.stderr.write(
                    f"{account.name}: orders stay refused (503) until a pass completes"
                )
