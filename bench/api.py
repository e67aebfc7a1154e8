"""API benchmark: gunicorn (2 sync workers, or ``--workers``, ``--threads`` for gthread;
127.0.0.1, a free port) under 32 concurrent connections for 20 s per endpoint, on a
dedicated bench database.

Every line carries ``ratio=``: its requests/s over a bare Django JSON view's, measured in
the same run, same process, same middleware (``baseline_rps``).

- ``GET /api/v1/killswitch/`` (target ratio >= 0.7, p99 <= 20 ms)
- ``ceiling-one-statement``: the bare view plus the token's one prepared statement
  (``/bench/bare-token/``): the most a request that checks its token in the database can
  reach, whatever the framework around it
- order registration (``POST /api/v1/accounts/bench/orders/``, a new order per request;
  target ratio >= 0.25, p99 <= 50 ms)
- a transition (``POST .../orders/{id}/transition/``, pending -> submitted, a different
  order per request; target ratio >= 0.25)
- a fill (``POST .../fills/``, a new trade id per request, over 256 orders each on its own
  symbol; target ratio >= 0.25)
- bulk transitions (``POST .../orders/bulk-transition/``, 1,000 updates per call; target
  >= 5,000 updates/s; ``ratio`` there is updates/s over the bare view's requests/s)
- ``register-under-passes`` (with ``--passes``, the default): registrations while a
  10,000-order pass with 10 % desync runs on the same account every 2 s in another
  process (bench/passes_bg.py); ``ratio`` over the quiet registration figure (target
  >= 0.8, p99 <= 100 ms)

The accounts are venue accounts (binance, swap): the paper venue would also place orders on
its simulated book. Registrations (and the passes under them) go to ``bench``; the orders
the transition, fill and bulk lines consume (~113,000, all active) are on ``bench-pool``,
so a pass of ``bench`` is the 10,000-order pass the line names plus the bots' new orders,
not a pass over every pool of the run. The load generator is ``wrk`` when installed (C,
keep-alive, Lua for unique bodies), else a Python one (threads, ``http.client`` keep-alive).
Loopback only. Lines::

    api endpoint=killswitch rps=… p50_ms=… p99_ms=… baseline_rps=… ratio=…
    api endpoint=register rps=… p50_ms=… p99_ms=… baseline_rps=… ratio=…
    api endpoint=transition …   api endpoint=fill …
    api endpoint=bulk-transition updates_per_s=… baseline_rps=… ratio=…
    api endpoint=register-under-passes rps=… p50_ms=… p99_ms=… quiet_rps=… passes=… ratio=…

    python bench/api.py [--duration 20] [--connections 32] [--no-passes]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, bench_database, django_setup

HOST = "127.0.0.1"
ACCOUNT = "bench"  # registrations, and the passes of register-under-passes
POOL = "bench-pool"  # the orders the transition, fill and bulk lines consume
BULK_SIZE = 1000
SETTINGS = "bench.settings_bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --- setup ----------------------------------------------------------------------------------
TRANSITION_POOL = 40_000  # pending orders per wrk thread (a transition moves one each)
FILL_ORDERS = 256


def make_bot() -> str:
    from django.core.management import call_command

    from tradingstate.models import ExchangeAccount, Instrument

    # stale grace of an hour: the background passes leave the bots' new orders alone
    for name in (ACCOUNT, POOL):
        account = ExchangeAccount.objects.create(
            name=name, exchange="binance", market_type="swap", stale_order_grace_seconds=3600
        )
        Instrument.objects.create(account=account, symbol="BTC/USDT", base="BTC", quote="USDT")
    out = io.StringIO()
    call_command(
        "create_bot", "bench-bot", accounts=f"{ACCOUNT},{POOL}", reason="bench", stdout=out
    )
    lines = out.getvalue().splitlines()
    return lines[lines.index("API token (shown only once; store it now):") + 1].strip()


def make_transition_and_fill_orders() -> None:
    """Pending orders ``tr{t}-{k}`` (one transition each) and ``fo-{k}`` on symbol
    ``F{k}/USDT`` with an existing position (fills)."""
    from tradingstate.models import ExchangeAccount, Instrument, Order, Position

    account = ExchangeAccount.objects.get(name=POOL)
    big = Decimal(10**12)
    common = {"account": account, "side": "buy", "type": "limit", "price": Decimal(100)}
    rows = [
        Order(
            client_order_id=f"tr{t}-{k}",
            symbol="BTC/USDT",
            quantity=Decimal(1),
            remaining_qty=Decimal(1),
            status="pending",
            **common,
        )
        for t in (1, 2)
        for k in range(TRANSITION_POOL)
    ]
    rows += [
        Order(
            client_order_id=f"fo-{k}",
            symbol=f"F{k}/USDT",
            quantity=big,
            remaining_qty=big,
            status="submitted",
            **common,
        )
        for k in range(FILL_ORDERS)
    ]
    Order.objects.bulk_create(rows, batch_size=5000)
    Instrument.objects.bulk_create(
        [
            Instrument(account=account, symbol=f"F{k}/USDT", base=f"F{k}", quote="USDT")
            for k in range(FILL_ORDERS)
        ]
    )
    Position.objects.bulk_create(
        [Position(account=account, symbol=f"F{k}/USDT", qty=Decimal(0)) for k in range(FILL_ORDERS)]
    )


def make_bulk_orders(connections: int) -> list[list[str]]:
    """One set of BULK_SIZE partially filled orders per connection (no lock contention)."""
    from tradingstate.models import ExchangeAccount, Order

    account = ExchangeAccount.objects.get(name=POOL)
    sets = [[f"b{c}-{i}" for i in range(BULK_SIZE)] for c in range(connections)]
    big = Decimal(10**9)
    Order.objects.bulk_create(
        [
            Order(
                account=account,
                client_order_id=coid,
                symbol="BTC/USDT",
                side="buy",
                type="limit",
                quantity=big,
                price=Decimal(100),
                filled_qty=Decimal(1),
                remaining_qty=big - 1,
                status="partially_filled",
            )
            for coids in sets
            for coid in coids
        ],
        batch_size=5000,
    )
    return sets


@contextlib.contextmanager
def gunicorn(port: int, workers: int = 2, threads: int = 1) -> object:
    with tempfile.TemporaryFile() as log:
        yield from _gunicorn(port, log, workers, threads)


def _gunicorn(port: int, log, workers: int, threads: int = 1):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS, "PYTHONPATH": str(ROOT)}
    env.pop("DEBUG", None)
    bin_dir = Path(sys.executable).parent
    proc = subprocess.Popen(
        [
            str(bin_dir / "gunicorn"),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--bind",
            f"{HOST}:{port}",
            "--chdir",
            str(ROOT),
            "--log-level",
            "warning",
            "tradingstate.wsgi:application",
        ],
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = request(port, "GET", "/bench/bare/")
                if status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise SystemExit(f"gunicorn did not start:\n{log.read().decode()[-3000:]}")
            time.sleep(0.2)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # our own process group only
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def request(port, method, path, body=None, token=None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=_headers(token, body))
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _headers(token, body) -> dict:
    headers = {"Host": HOST}
    if token:
        headers["Authorization"] = f"Token {token}"
    if body is not None:
        headers["Content-Type"] = "application/json"
    return headers


# --- load generators ---------------------------------------------------------------------------
WRK_SCRIPT = r"""
-- tid is a global each thread gets from setup() (a chunk-level local would shadow it)
local counter = 0
local nthreads = 0
local threads = {}
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
  table.insert(threads, thread)
end
function init(args)
  mode = args[1]
  token = args[2]
  prefix = "w" .. tostring(tid) .. "-" .. tostring(os.time()) .. "-"
  hdrs = {["Authorization"] = "Token " .. token, ["Host"] = "127.0.0.1"}
  if mode ~= "get" then
    hdrs["Content-Type"] = "application/json"
  end
end
function request()
  if mode == "register" then
    counter = counter + 1
    local body = '{"client_order_id": "' .. prefix .. counter .. '", "symbol": "BTC/USDT", '
      .. '"side": "buy", "type": "limit", "quantity": "1", "price": "100"}'
    return wrk.format("POST", wrk.path, hdrs, body)
  elseif mode == "transition" then
    local path = wrk.path .. "tr" .. tid .. "-" .. counter .. "/transition/"
    counter = counter + 1
    return wrk.format("POST", path, hdrs, '{"status": "submitted"}')
  elseif mode == "fill" then
    counter = counter + 1
    local body = '{"client_order_id": "fo-' .. ((counter * 2 + tid) % 256) .. '", '
      .. '"trade_id": "' .. prefix .. counter .. '", "quantity": "1", "price": "100"}'
    return wrk.format("POST", wrk.path, hdrs, body)
  end
  return wrk.format("GET", wrk.path, hdrs)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def run_wrk(port, path, mode, token, connections, duration) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT)
        script = f.name
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{duration}s",
                "--timeout",
                "10s",
                "-s",
                script,
                f"http://{HOST}:{port}{path}",
                "--",
                mode,
                token,
            ],
            capture_output=True,
            text=True,
            timeout=duration + 60,
            check=True,
        ).stdout
    finally:
        os.unlink(script)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    r = {k: int(v) for k, v in (p.split("=") for p in line.split()[1:])}
    return {
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "errors": r["errors"] + r["non2xx"],
        "requests": r["requests"],
    }


def run_python(port, connections, duration, make_request) -> dict:
    """Threads with keep-alive connections; ``make_request(worker, n)`` -> (method, path,
    body, token). Returns rps, latency percentiles, errors and the raw bodies' statuses."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    stop = time.monotonic() + duration

    def worker(w: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        n = 0
        while time.monotonic() < stop:
            method, path, body, token = make_request(w, n)
            n += 1
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=_headers(token, body))
                resp = conn.getresponse()
                resp.read()
                ok = 200 <= resp.status < 300
            except (OSError, http.client.HTTPException):
                conn.close()
                ok = False
            latencies[w].append(time.perf_counter() - t0)
            if not ok:
                errors[w] += 1
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    flat = sorted(x for lat in latencies for x in lat)
    return {
        "rps": len(flat) / elapsed,
        "p50_ms": statistics.median(flat) * 1000 if flat else 0.0,
        "p99_ms": flat[min(len(flat) - 1, int(len(flat) * 0.99))] * 1000 if flat else 0.0,
        "errors": sum(errors),
        "requests": len(flat),
    }


def load(port, path, mode, token, connections, duration) -> dict:
    if shutil.which("wrk"):
        return run_wrk(port, path, mode, token, connections, duration)
    prefix = f"p{int(time.time())}-"
    counters = {1: itertools.count(), 2: itertools.count()}

    def make(w, n):
        if mode == "transition":
            t = w % 2 + 1
            return "POST", f"{path}tr{t}-{next(counters[t])}/transition/", _SUBMIT, token
        if mode == "fill":
            body = json.dumps(
                {
                    "client_order_id": f"fo-{(n * 32 + w) % FILL_ORDERS}",
                    "trade_id": f"{prefix}{w}-{n}",
                    "quantity": "1",
                    "price": "100",
                }
            )
            return "POST", path, body, token
        if mode == "register":
            body = json.dumps(
                {
                    "client_order_id": f"{prefix}{w}-{n}",
                    "symbol": "BTC/USDT",
                    "side": "buy",
                    "type": "limit",
                    "quantity": "1",
                    "price": "100",
                }
            )
            return "POST", path, body, token
        return "GET", path, None, token

    return run_python(port, connections, duration, make)


_SUBMIT = json.dumps({"status": "submitted"})


def bulk_load(port, token, sets, duration) -> dict:
    path = f"/api/v1/accounts/{POOL}/orders/bulk-transition/"

    def make(w, n):
        filled = str(n + 2)  # strictly growing: every update is a real, audited change
        updates = [
            {"client_order_id": coid, "status": "partially_filled", "filled_qty": filled}
            for coid in sets[w]
        ]
        return "POST", path, json.dumps({"updates": updates}), token

    result = run_python(port, len(sets), duration, make)
    result["updates_per_s"] = result["rps"] * BULK_SIZE
    return result


def check(name: str, result: dict) -> None:
    if result["errors"]:
        raise SystemExit(f"api bench: {name}: {result['errors']} failed requests")


WORKERS = {"n": 2}  # gunicorn workers of this run, printed on every line


def line(name: str, result: dict, base: float, **extra) -> str:
    extra = {**extra, "workers": WORKERS["n"]}
    fields = " ".join(f"{k}={v}" for k, v in extra.items())
    return (
        f"api endpoint={name} rps={result['rps']:.0f} p50_ms={result['p50_ms']:.1f} "
        f"p99_ms={result['p99_ms']:.1f} baseline_rps={base:.0f} "
        f"ratio={result['rps'] / base:.2f}" + (f" {fields}" if fields else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn workers (2: the issue's set-up)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per gunicorn worker (>1: gthread)"
    )
    parser.add_argument("--no-passes", action="store_true", help="skip register-under-passes")
    parser.add_argument("--only", action="append", help="endpoints to run (repeatable)")
    args = parser.parse_args(argv)
    c, d = args.connections, args.duration
    WORKERS["n"] = args.workers
    only = set(args.only or [])

    def wanted(name: str) -> bool:
        return not only or name in only

    with bench_database():
        os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
        django_setup(SETTINGS)
        token = make_bot()
        make_transition_and_fill_orders()
        sets = make_bulk_orders(c)
        from django.db import connections

        connections.close_all()
        port = free_port()
        orders = f"/api/v1/accounts/{ACCOUNT}/orders/"
        with gunicorn(port, args.workers, args.threads):
            status, body = request(port, "GET", "/api/v1/killswitch/", token=token)
            if status != 200 or json.loads(body).get("active") is not False:
                raise SystemExit(f"api bench: kill switch read failed: {status} {body[:200]}")
            base = load(port, "/bench/bare/", "get", token, c, d)
            check("baseline", base)
            b = base["rps"]
            if wanted("ceiling-one-statement"):
                one = load(port, "/bench/bare-token/", "get", token, c, d)
                check("ceiling-one-statement", one)
                print(line("ceiling-one-statement", one, b), flush=True)
            if wanted("killswitch"):
                ks = load(port, "/api/v1/killswitch/", "get", token, c, d)
                check("killswitch", ks)
                print(line("killswitch", ks, b), flush=True)
            reg = None
            if wanted("register") or wanted("register-under-passes"):
                reg = load(port, orders, "register", token, c, d)
                check("register", reg)
                print(line("register", reg, b), flush=True)
            if wanted("transition"):
                pool = f"/api/v1/accounts/{POOL}/orders/"
                tr = load(port, pool, "transition", token, c, d)
                check("transition", tr)
                print(line("transition", tr, b), flush=True)
            if wanted("fill"):
                fl = load(port, f"/api/v1/accounts/{POOL}/fills/", "fill", token, c, d)
                check("fill", fl)
                print(line("fill", fl, b), flush=True)
            if wanted("bulk-transition"):
                bulk = bulk_load(port, token, sets, d)
                check("bulk-transition", bulk)
                print(
                    f"api endpoint=bulk-transition updates_per_s={bulk['updates_per_s']:.0f} "
                    f"baseline_rps={b:.0f} ratio={bulk['updates_per_s'] / b:.2f} target=5000 "
                    f"workers={args.workers}",
                    flush=True,
                )
            if reg is not None and not args.no_passes and wanted("register-under-passes"):
                from passes_bg import passes_running

                with passes_running(ACCOUNT) as stats:
                    under = load(port, orders, "register", token, c, d)
                check("register-under-passes", under)
                print(
                    f"api endpoint=register-under-passes rps={under['rps']:.0f} "
                    f"p50_ms={under['p50_ms']:.1f} p99_ms={under['p99_ms']:.1f} "
                    f"quiet_rps={reg['rps']:.0f} ratio={under['rps'] / reg['rps']:.2f} "
                    f"passes={stats.get('passes', 0)} pass_ms_p50={stats.get('p50_ms', 0)} "
                    f"pass_ms_max={stats.get('max_ms', 0)} discrepancies_per_pass="
                    f"{stats.get('discrepancies', 0)} pass_nice={stats.get('nice', 0)} "
                    f"workers={args.workers}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
