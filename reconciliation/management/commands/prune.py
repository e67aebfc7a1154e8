"""``manage.py prune [--dry-run] [--runs-days N] ...``: delete old bookkeeping.

Defaults from ``[retention]`` (see ``reconciliation.retention``); it runs daily from a
django-q2 schedule as well. Never touches the audit trail, fills, open or persistent
discrepancies.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from pydantic import ValidationError

from reconciliation.retention import prune, prune_plan

TABLES = ("runs", "discrepancies", "repairs", "heartbeats", "notifications")


class Command(BaseCommand):
    help = "Delete old runs, closed discrepancies, repairs, heartbeats and notifications."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
        for table in TABLES:
            parser.add_argument(f"--{table}-days", type=int, metavar="DAYS",
                                help=f"keep {table} this many days (0: forever)")  # fmt: skip
        parser.add_argument("--batch-size", type=int, metavar="N")

    def handle(self, *args, dry_run=False, **options):
        overrides = {f"{t}_days": options[f"{t}_days"] for t in TABLES}
        overrides["batch_size"] = options["batch_size"]
        overrides = {k: v for k, v in overrides.items() if v is not None}
        try:
            retention = settings.TRADINGSTATE.retention.model_validate(
                {**settings.TRADINGSTATE.retention.model_dump(), **overrides}
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            option = "--" + str(err["loc"][0]).replace("_", "-")
            raise CommandError(f"{option}: {err['msg']} (got {err.get('input')!r})") from None
        if dry_run:
            for name, _model, qs in prune_plan(retention=retention):
                self.stdout.write(f"{name}: {qs.count()} would be deleted")
            return
        self.stdout.write(prune(retention=retention).summary())
