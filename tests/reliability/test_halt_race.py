"""The halt race (issue 13, D1): a halt against concurrent registrations, 1,000 trials over
every scope (an account's first halt, a repeat halt, the global switch's first and repeat
halts), on PostgreSQL with real transactions; then a smaller sample over HTTP (gunicorn).

The invariant: no order whose creation commits after the halt commits. An order is
accepted only if its guard share-locked the switch rows before the halt's FOR UPDATE, and
the halt then waits for it: so every accepted order was created before the halt's
``activated_at`` (set once the halt holds the lock), and one created later is a violation.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from itertools import count

import pytest
from django.db import connections, transaction

from killswitch.models import KillSwitch
from killswitch.services import killswitch_activate, killswitch_deactivate, order_register_guarded
from tests.pg import requires_postgres
from tests.reliability.servers import serving
from tradingstate.actors import Actor
from tradingstate.errors import TradingHalted
from tradingstate.models import ExchangeAccount, Order
from tradingstate.services import bot_create

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

TRIALS = int(os.environ.get("RELIABILITY_HALT_TRIALS", "1000"))
HTTP_TRIALS = int(os.environ.get("RELIABILITY_HALT_HTTP_TRIALS", "40"))
REGISTRANTS = 3
HOLD = float(os.environ.get("RELIABILITY_HALT_HOLD_MS", "3")) / 1000  # decided, not committed
SCOPES = tuple(
    os.environ.get(
        "RELIABILITY_HALT_SCOPES", "account-first,account-repeat,global-first,global-repeat"
    ).split(",")
)
STAFF = Actor.system("race-halter")
BOT = Actor(type="bot", name="race-bot")
_ids = count()
SCOPES_SEEN: dict = {}


def _order(account, coid) -> dict:
    return {
        "account": account,
        "client_order_id": coid,
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "quantity": "0.01",
        "price": "100",
        "actor": BOT,
    }


def _register_until_refused(
    account, prefix: str, halted: threading.Event, going: threading.Event
) -> tuple[int, int]:
    """Register as fast as possible until one refusal after the halt has returned."""
    accepted = refused = 0
    for n in range(500):
        try:
            order_register_guarded(**_order(account, f"{prefix}-{n}"))
            accepted += 1
        except TradingHalted as exc:
            refused += 1
            scope = exc.extra.get("scope", "")
            SCOPES_SEEN[scope] = SCOPES_SEEN.get(scope, 0) + 1
            if halted.is_set():
                break
        finally:
            going.set()
    return accepted, refused


def _halt(account, hold: float, delay: float, going: threading.Event | None = None) -> None:
    if going is not None:
        going.wait(5)  # the registrations are flowing: the halt lands among them
    time.sleep(delay)
    with transaction.atomic():
        killswitch_activate(reason="race", actor=STAFF, account=account)
        time.sleep(hold)  # the halt is decided, not yet committed


def _fresh_global_row() -> None:
    KillSwitch.objects.filter(account__isnull=True).delete()
    KillSwitch.objects.create(account=None)


def _close_connections(pool: ThreadPoolExecutor, workers: int) -> None:
    barrier = threading.Barrier(workers)

    def close():
        barrier.wait(10)
        connections.close_all()

    for future in [pool.submit(close) for _ in range(workers)]:
        future.result(20)


@pytest.mark.bound(300)
def test_halt_race_1000_trials_every_scope(figure, seed):
    # given: a shared account for the global scope, one for repeat halts (halted once)
    rng = random.Random(seed)
    shared = ExchangeAccount.objects.create(name="race-global", exchange="paper")
    repeat = ExchangeAccount.objects.create(name="race-repeat", exchange="paper")
    killswitch_activate(reason="first", actor=STAFF, account=repeat)
    killswitch_deactivate(actor=STAFF, account=repeat, reason="again")
    killswitch_activate(reason="first", actor=STAFF)
    killswitch_deactivate(actor=STAFF, reason="again")
    totals = {
        scope: {"trials": 0, "accepted": 0, "refused": 0, "after_halt": 0} for scope in SCOPES
    }
    started = time.monotonic()
    workers = REGISTRANTS + 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for trial in range(TRIALS):
                scope = SCOPES[trial % len(SCOPES)]
                # given the scope's state before this halt
                if scope == "account-first":
                    account = ExchangeAccount.objects.create(name=f"race-{trial}", exchange="paper")
                    halted_scope = account
                elif scope == "account-repeat":
                    account = halted_scope = repeat
                    killswitch_deactivate(actor=STAFF, account=repeat, reason="next trial")
                else:
                    account, halted_scope = shared, None
                    if scope == "global-first":
                        _fresh_global_row()  # never activated
                # when registrations race the halt
                halted, going = threading.Event(), threading.Event()
                prefix = f"t{trial}"
                futures = [
                    pool.submit(_register_until_refused, account, f"{prefix}-r{i}", halted, going)
                    for i in range(REGISTRANTS)
                ]
                pool.submit(
                    _halt, halted_scope, rng.uniform(0, HOLD), rng.uniform(0, 0.004), going
                ).result(30)
                halted.set()
                results = [f.result(30) for f in futures]
                # then no order of this trial was created after the halt took its lock
                switch = KillSwitch.objects.get(
                    **({"account": halted_scope} if halted_scope else {"account__isnull": True})
                )
                after = Order.objects.filter(
                    account=account,
                    client_order_id__startswith=f"{prefix}-",
                    created_at__gt=switch.activated_at,
                ).count()
                t = totals[scope]
                t["trials"] += 1
                t["accepted"] += sum(r[0] for r in results)
                t["refused"] += sum(r[1] for r in results)
                t["after_halt"] += after
                if halted_scope is None:  # the other scopes' trials run with it off
                    killswitch_deactivate(actor=STAFF, reason="trial over")
        finally:
            _close_connections(pool, workers)
    seconds = round(time.monotonic() - started, 1)
    violations = sum(t["after_halt"] for t in totals.values())
    figure(
        ops=sum(t["accepted"] + t["refused"] for t in totals.values()),
        trials=TRIALS,
        scopes=totals,
        orders_after_halt=violations,
        refusals=SCOPES_SEEN,
        seconds=seconds,
        repairs=0,
        lost=0,
        duplicates=0,
    )
    assert violations == 0, totals
    assert all(t["refused"] >= t["trials"] for t in totals.values()), totals  # halts seen
    assert sum(t["accepted"] for t in totals.values()) > 0, totals  # real races


def _post(base: str, token: str, path: str, body: dict) -> int:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.mark.bound(240)
def test_halt_race_over_http_sample(figure, seed):
    # given: gunicorn with 2 workers; per trial a fresh account (first halts), a bot on it
    rng = random.Random(seed)
    shared = ExchangeAccount.objects.create(name="http-global", exchange="paper")
    answers: dict[int, int] = {}
    after_total = 0
    with serving("gunicorn", workers=2) as base:
        for trial in range(HTTP_TRIALS):
            scope = SCOPES[trial % len(SCOPES)]
            if scope.startswith("account"):
                account = ExchangeAccount.objects.create(name=f"http-{trial}", exchange="paper")
                if scope == "account-repeat":
                    killswitch_activate(reason="first", actor=STAFF, account=account)
                    killswitch_deactivate(actor=STAFF, account=account, reason="again")
                halted_scope = account
            else:
                account, halted_scope = shared, None
                if scope == "global-first":
                    _fresh_global_row()
            token = bot_create(
                name=f"http-bot-{trial}", account_names=[account.name], actor=STAFF
            ).token
            halted = threading.Event()
            path = f"/api/v1/accounts/{account.name}/orders/"

            def bot(i, account=account, token=token, halted=halted, path=path, trial=trial):
                for n in range(100):
                    status = _post(base, token, path, {
                        "client_order_id": f"h{trial}-{i}-{n}", "symbol": "BTC/USDT",
                        "side": "buy", "type": "limit", "quantity": "0.01", "price": "100",
                    })  # fmt: skip
                    answers[status] = answers.get(status, 0) + 1
                    if status == 423 and halted.is_set():
                        return

            threads = [threading.Thread(target=bot, args=(i,)) for i in range(REGISTRANTS)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.005, 0.03))
            _halt(halted_scope, rng.uniform(0, 0.01), 0)
            halted.set()
            for t in threads:
                t.join(60)
            switch = KillSwitch.objects.get(
                **({"account": halted_scope} if halted_scope else {"account__isnull": True})
            )
            after_total += Order.objects.filter(
                account=account,
                client_order_id__startswith=f"h{trial}-",
                created_at__gt=switch.activated_at,
            ).count()
            if halted_scope is None:
                killswitch_deactivate(actor=STAFF, reason="trial over")
    connections.close_all()
    figure(
        ops=sum(answers.values()),
        trials=HTTP_TRIALS,
        answers=answers,
        orders_after_halt=after_total,
        repairs=0,
        lost=0,
        duplicates=0,
    )
    assert after_total == 0
    assert set(answers) <= {201, 423}, answers
    assert answers.get(201, 0) > 0 and answers.get(423, 0) >= HTTP_TRIALS
