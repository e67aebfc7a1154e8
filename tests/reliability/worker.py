"""A reconciliation worker process for the reliability suite (run as a subprocess).

    python tests/reliability/worker.py --accounts 1,2,3 --passes 100 [--slow 0.05]

Runs ``run_reconciliation`` over the accounts (shuffled each round) against their paper
venue, prints ``READY`` once Django is up and one JSON summary line at the end. ``--slow``
adds latency to every venue read and to every repair batch, so a SIGKILL from the test lands
in the middle of passes (latency only: the code under test is unchanged).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingstate.settings")

import django

django.setup()

from reconciliation import services as recon  # noqa: E402
from tradingstate.exchanges.paper import PaperExchange  # noqa: E402
from tradingstate.models import ExchangeAccount  # noqa: E402
from tradingstate.services import sync  # noqa: E402


class SlowPaper(PaperExchange):
    delay = 0.0

    def _nap(self):
        time.sleep(random.uniform(0, self.delay))

    def fetch_open_orders(self):
        self._nap()
        return super().fetch_open_orders()

    def fetch_positions(self):
        self._nap()
        return super().fetch_positions()

    def fetch_balances(self):
        self._nap()
        return super().fetch_balances()

    def fetch_order(self, *args):
        self._nap()
        return super().fetch_order(*args)


def _slow_sync(delay: float) -> None:
    def slowed(fn):
        def wrapper(**kwargs):
            time.sleep(random.uniform(0, delay))
            result = fn(**kwargs)
            time.sleep(random.uniform(0, delay))
            return result

        return wrapper

    for kind, fn in list(sync.SYNC_BY_KIND.items()):
        sync.SYNC_BY_KIND[kind] = slowed(fn)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", required=True)
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--slow", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    random.seed(args.seed or None)
    ids = [int(x) for x in args.accounts.split(",")]
    SlowPaper.delay = args.slow
    if args.slow:
        _slow_sync(args.slow)
    statuses: Counter = Counter()
    repairs = 0
    print("READY", flush=True)
    for _ in range(args.passes):
        random.shuffle(ids)
        for account_id in ids:
            account = ExchangeAccount.objects.get(pk=account_id)
            run = recon.run_reconciliation(
                account, "schedule", adapter=SlowPaper(account), requested_by="worker"
            )
            statuses[run.status] += 1
            repairs += run.repairs_applied
    print(json.dumps({"pid": os.getpid(), "statuses": statuses, "repairs": repairs}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
