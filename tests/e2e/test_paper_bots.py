"""Bots trading the paper venue over real HTTP while the worker runs (issue 14, "Tests").

gunicorn serves the API on a free port; ``scripts/run_paper.py --no-web`` runs recovery, the
ticker and the django-q2 cluster (a pass every 2 s); a market process swings each mark
+/-0.3 % every second (staff moving the venue, through the same service as the admin).
Three bot threads (one per symbol) register, submit, read their executions from the venue
(``GET .../paper/trades/``) and post them as fills, for 200 orders: market orders,
marketable limits and resting limits. Then, after 3 more passes: no order was cancelled,
every request succeeded, every pass completed, the last pass found 0 discrepancies of any
type and none is left open, and the local fills, positions and balances equal the venue's.

SQLite by default; PostgreSQL when DATABASE_URL names one (a throwaway database
``<name>_e2e_paper`` beside it).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal as D
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
ACCOUNT = "paper-bots"
BASES = {"BTC/USDT:USDT": D("60000"), "ETH/USDT:USDT": D("3000"), "SOL/USDT:USDT": D("150")}
QTY = {"BTC/USDT:USDT": D("0.001"), "ETH/USDT:USDT": D("0.01"), "SOL/USDT:USDT": D("0.1")}
ORDERS = 200
SWING = D("0.003")
PASSES_AFTER = 3

SETUP = """
from decimal import Decimal as D
from tradingstate.actors import Actor
from tradingstate.models import ExchangeAccount, PaperBalance
from tradingstate.services import paper_mark_set
a = ExchangeAccount.objects.get(name={account!r})
for symbol, price in {bases!r}.items():
    paper_mark_set(account=a, symbol=symbol, price=price, actor=Actor.system("e2e"),
                   reason="e2e market opens", walk=False)
PaperBalance.objects.create(account=a, currency="USDT", free=D(1000000), total=D(1000000))
"""

MARKET = """
import time
from decimal import Decimal as D
from django.db import OperationalError
from pathlib import Path
from tradingstate.actors import Actor
from tradingstate.models import ExchangeAccount
from tradingstate.services import paper_mark_set
a = ExchangeAccount.objects.get(name={account!r})
actor, stop, k = Actor.system("e2e-market"), Path({stop!r}), 0
while not stop.exists():
    k += 1
    factor = 1 + D({swing!r}) * (1 if k % 2 else -1)
    for symbol, price in {bases!r}.items():
        for attempt in range(5):
            try:
                paper_mark_set(account=a, symbol=symbol, price=D(price) * factor, actor=actor,
                               reason="e2e market swing")
                break
            except OperationalError as exc:  # SQLite busy under load: try again
                print("swing retry", exc, flush=True)
                time.sleep(0.2)
    time.sleep(1)
"""

RUNS = """
import json
from reconciliation.models import ReconciliationRun
rows = ReconciliationRun.objects.filter(account__name={account!r}, started_at__gt={since!r})
print(json.dumps([r.status for r in rows.order_by("id")]))
"""

SUMMARY = """
import json
from collections import Counter
from reconciliation.models import Discrepancy, ReconciliationRun
from tradingstate.models import (AuditEntry, Balance, ExchangeAccount, Fill, Order,
                                 PaperBalance, PaperPosition, PaperTrade, Position)
a = ExchangeAccount.objects.get(name={account!r})
runs = list(ReconciliationRun.objects.filter(account=a, started_at__gt={since!r}).order_by("id"))
last = runs[{passes} - 1]
fills = {{f.trade_id: [str(f.quantity), str(f.price), str(f.fee), f.fee_currency,
                      f.order.client_order_id] for f in Fill.objects.filter(account=a)}}
trades = {{t.trade_id: [str(t.quantity), str(t.price), str(t.fee), t.fee_currency,
                       t.client_order_id] for t in PaperTrade.objects.filter(account=a)}}
sums = Counter()  # in Python: amounts are text on SQLite, so no SQL SUM
for coid, qty in Fill.objects.filter(account=a).values_list("order__client_order_id",
                                                             "quantity"):
    sums[coid] += qty
orders = list(Order.objects.filter(account=a).values_list("client_order_id", "status",
                                                           "filled_qty"))
print(json.dumps({{
    "runs_after": [[r.status, r.discrepancies_found] for r in runs[:{passes}]],
    "last_pass": [last.status, last.discrepancies_found],
    "last_pass_types": sorted(set(last.discrepancies.values_list("type", flat=True))),
    "open_discrepancies": Discrepancy.objects.filter(account=a, status="open").count(),
    "all_runs": [r.status for r in ReconciliationRun.objects.filter(account=a)],
    "found_during_run": dict(Counter(Discrepancy.objects.filter(account=a)
                                     .values_list("type", flat=True))),
    "orders": Counter(s for _, s, _ in orders),
    "order_count": len(orders),
    "invariant_broken": [c for c, s, q in orders if sums.get(c, 0) != q],
    "cancelled_by_reconciler": AuditEntry.objects.filter(
        account=a, actor_name="system:reconciliation", after__status="cancelled").count(),
    "fills": fills, "trades": trades,
    "positions": sorted([p.symbol, str(p.qty)] for p in Position.objects.filter(account=a)
                        if p.qty != 0),
    "venue_positions": sorted([p.symbol, str(p.qty)] for p in
                              PaperPosition.objects.filter(account=a) if p.qty != 0),
    "balances": sorted([b.currency, str(b.total)] for b in Balance.objects.filter(account=a)),
    "venue_balances": sorted([b.currency, str(b.total)] for b in
                             PaperBalance.objects.filter(account=a)),
}}, default=str))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def database(tmp_path):
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp_path / 'db.sqlite3'}"
        return
    import psycopg

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'postgres'}_e2e_paper"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Bot:
    """A bot over plain HTTP: retries a request the server could not take (5xx, 429), as a
    trading bot would; every other non-2xx answer is recorded as a failure."""

    def __init__(self, base: str, token: str):
        self.base, self.token = base, token
        self.failures: list[str] = []
        self.requests = 0

    def call(self, method: str, path: str, body: dict | None = None, ok=(200, 201)):
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(8):
            req = urllib.request.Request(self.base + path, data=data, method=method)
            req.add_header("Authorization", f"Token {self.token}")
            if data is not None:
                req.add_header("Content-Type", "application/json")
            self.requests += 1
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return resp.status, json.loads(resp.read() or b"{}")
            except urllib.error.HTTPError as err:
                status, payload = err.code, json.loads(err.read() or b"{}")
            except OSError as err:
                status, payload = 599, {"error": str(err)}
            if status in (429, 500, 502, 503, 599) and attempt < 7:
                time.sleep(0.2 * (attempt + 1))
                continue
            if status not in ok:
                self.failures.append(f"{method} {path} -> {status} {payload}")
            return status, payload
        raise AssertionError("unreachable")


def trade_symbol(bot: Bot, symbol: str, count: int, prefix: str, deadline: float) -> dict:
    account = f"/api/v1/accounts/{ACCOUNT}"
    base, qty = BASES[symbol], QTY[symbol]
    waiting: dict[str, str] = {}  # client order id -> kind, submitted but not yet posted
    posted: set[str] = set()
    placed: list[str] = []

    def post_new_trades() -> None:
        query = urlencode({"symbol": symbol, "page_size": 1000})
        status, page = bot.call("GET", f"{account}/paper/trades/?{query}")
        assert status == 200, page
        for trade in page["results"]:
            if trade["trade_id"] in posted or trade["client_order_id"] not in waiting:
                continue
            fill = {key: trade[key] for key in ("trade_id", "quantity", "price", "fee",
                                                "fee_currency", "executed_at")}  # fmt: skip
            fill["client_order_id"] = trade["client_order_id"]
            bot.call("POST", f"{account}/fills/", fill)
            posted.add(trade["trade_id"])
            waiting.pop(trade["client_order_id"], None)

    for i in range(count):
        coid = f"{prefix}-{i}"
        kind = ("market", "market", "marketable", "resting")[i % 4]
        side = "buy" if (i // 4) % 2 == 0 else "sell"
        body = {"client_order_id": coid, "symbol": symbol, "side": side,
                "quantity": str(qty * (1 + i % 3)), "strategy_id": "e2e"}  # fmt: skip
        if kind == "market":
            body["type"] = "market"
        elif kind == "marketable":  # crosses the mark whatever the swing: taker at the mark
            body.update(type="limit", price=str(base * (D("1.01") if side == "buy" else D("0.99"))))
        else:  # inside the swing: rests until the market comes to it, then maker
            body.update(
                type="limit", price=str(base * (D("0.999") if side == "buy" else D("1.001")))
            )
        status, _ = bot.call("POST", f"{account}/orders/", body)
        status, order = bot.call(
            "POST", f"{account}/orders/{quote(coid, safe='')}/transition/",
            {"status": "submitted", "reason": "e2e bot"}, ok=(200, 409),
        )  # fmt: skip
        if status == 409:  # a retried submit that had gone through: check, don't resubmit
            status, order = bot.call("GET", f"{account}/orders/{quote(coid, safe='')}/")
            if order.get("status") != "submitted":
                bot.failures.append(f"{coid} not submitted: {order}")
        placed.append(coid)
        waiting[coid] = kind
        post_new_trades()
    while waiting and time.monotonic() < deadline:
        time.sleep(0.3)
        post_new_trades()
    return {"placed": placed, "unfilled": sorted(waiting), "posted": len(posted)}


@pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn not installed (make install)")
def test_paper_bots_over_http_end_with_zero_discrepancies(tmp_path, database):
    config = tmp_path / "paper-e2e.toml"
    config.write_text(
        'mode = "paper"\nreconciliation_interval_seconds = 2\n'
        f'[[exchanges]]\nname = "{ACCOUNT}"\nexchange = "paper"\nmarket_type = "swap"\n'
    )
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "TRADINGSTATE_CONFIG": str(config),
        "TRADINGSTATE_LOG_DIR": str(tmp_path / "logs"),
        "DEBUG": "0",
        "SECRET_KEY": "e2e-" + "x" * 60,
        "SECURE_SSL_REDIRECT": "0",
        "PYTHONUNBUFFERED": "1",
    }

    def manage(*args, timeout=180):
        proc = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)  # fmt: skip
        assert proc.returncode == 0, (args, proc.stdout[-3000:], proc.stderr[-3000:])
        return proc.stdout

    def shell(code: str, timeout=180) -> str:
        # the last line: the shell may print a banner first
        return manage("shell", "-c", code, timeout=timeout).strip().splitlines()[-1]

    manage("migrate", "-v", "0")
    manage("createcachetable")
    manage("recover", "--config", str(config))
    shell(SETUP.format(account=ACCOUNT, bases={s: str(p) for s, p in BASES.items()}))
    out = manage("create_bot", "e2e-bot", "--accounts", ACCOUNT)
    token = next(w for line in out.splitlines() for w in line.split() if len(w) >= 40)

    procs: list[subprocess.Popen] = []
    logs = tmp_path / "procs"
    logs.mkdir()

    def start(name, cmd):
        handle = (logs / f"{name}.log").open("w")
        procs.append(
            subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def tail(name):
        return (logs / f"{name}.log").read_text()[-4000:]

    port = free_port()
    stop_market = tmp_path / "stop-market"
    try:
        start("web", [str(GUNICORN), "tradingstate.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}",
                      "--log-level", "warning", "--timeout", "120"])  # fmt: skip
        # the supervisor serves gunicorn on 127.0.0.1:8000 by default: the web above is
        # this test's own (free port), so the worker host runs none
        start("worker", [sys.executable, "scripts/run_paper.py", "--config", str(config),
                         "--no-migrate", "--no-web"])  # fmt: skip
        start("market", [sys.executable, "manage.py", "shell", "-c", MARKET.format(
            account=ACCOUNT, stop=str(stop_market), swing=str(SWING),
            bases={s: str(p) for s, p in BASES.items()})])  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                urllib.request.urlopen(base + "/api/v1/health/", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        bot = Bot(base, token)
        # when three bots trade 200 orders across 3 symbols while the worker runs
        started = time.monotonic()
        deadline = started + 420
        results: dict[str, dict] = {}
        counts = {"BTC/USDT:USDT": 67, "ETH/USDT:USDT": 67, "SOL/USDT:USDT": 66}
        assert sum(counts.values()) == ORDERS

        def run(symbol):
            prefix = symbol.split("/")[0].lower()
            results[symbol] = trade_symbol(bot, symbol, counts[symbol], prefix, deadline)

        threads = [threading.Thread(target=run, args=(s,)) for s in BASES]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stop_market.touch()
        traded_for = time.monotonic() - started
        # then the worker runs 3 more passes
        from django.utils import timezone

        done_at = timezone.now().isoformat()
        statuses: list[str] = []
        wait_until = time.monotonic() + 120
        while time.monotonic() < wait_until:
            statuses = json.loads(shell(RUNS.format(account=ACCOUNT, since=done_at)))
            finished = [s for s in statuses if s not in ("queued", "running")]
            if len(finished) >= PASSES_AFTER and all(
                s not in ("queued", "running") for s in statuses[:PASSES_AFTER]
            ):
                break
            time.sleep(1)
    finally:
        stop_market.touch()
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    summary = json.loads(shell(SUMMARY.format(account=ACCOUNT, since=done_at,
                                              passes=PASSES_AFTER)))  # fmt: skip
    report = {
        "traded_seconds": round(traded_for, 1),
        "requests": bot.requests,
        "passes_during_run": len(summary["all_runs"]) - len(statuses),
        "found_during_run": summary["found_during_run"],
        "runs_after": summary["runs_after"],
        "orders": summary["orders"],
    }
    print("paper bots e2e:", json.dumps(report))

    # every order was placed, filled on the venue and posted; no request failed
    assert not bot.failures, bot.failures[:10]
    assert all(not r["unfilled"] for r in results.values()), {s: r["unfilled"] for s, r in
                                                              results.items()}  # fmt: skip
    assert summary["order_count"] == ORDERS
    assert summary["orders"] == {"filled": ORDERS}, (summary["orders"], tail("worker"))
    assert summary["cancelled_by_reconciler"] == 0
    # the three passes after the bots stopped completed; the last found nothing of any type
    assert [s for s, _ in summary["runs_after"]] == ["completed"] * PASSES_AFTER, (
        summary["runs_after"], tail("worker"),
    )  # fmt: skip
    assert summary["last_pass"] == ["completed", 0], summary["last_pass_types"]
    assert summary["open_discrepancies"] == 0
    # fills, positions and balances match the venue
    assert summary["fills"] == summary["trades"] and len(summary["trades"]) == ORDERS
    assert summary["invariant_broken"] == []
    assert summary["positions"] == summary["venue_positions"]
    # balances: within the account's tolerance (0.01), the reconciler's definition of a match
    local, venue = dict(summary["balances"]), dict(summary["venue_balances"])
    assert set(local) == set(venue) == {"USDT"}
    assert abs(D(local["USDT"]) - D(venue["USDT"])) <= D("0.01"), (local, venue)
    assert "failed" not in summary["all_runs"], summary["all_runs"]
