"""API benchmark: gunicorn (2 workers, 127.0.0.1, a free port) under 32 concurrent
connections for 20 s per endpoint, on a dedicated bench database.

- ``GET /api/v1/killswitch/`` against a bare Django JSON view in the same process (ceiling)
- order registration (``POST /api/v1/accounts/bench/orders/``, a new order per request)
- bulk transitions (``POST .../orders/bulk-transition/``, 1,000 updates per call)

The load generator is ``wrk`` when installed (C, keep-alive, Lua for unique bodies), else a
Python one (threads, ``http.client`` keep-alive). Loopback only. Lines::

    api endpoint=killswitch rps=… p50_ms=… p99_ms=… baseline_rps=… ratio=…
    api endpoint=register rps=… p50_ms=… p99_ms=…
    api endpoint=bulk-transition updates_per_s=…

    python bench/api.py [--duration 20] [--connections 32]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
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
ACCOUNT = "bench"
BULK_SIZE = 1000
SETTINGS = "bench.settings_bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --- setup ----------------------------------------------------------------------------------
def make_bot() -> str:
    from django.core.management import call_command

    from tradingstate.models import ExchangeAccount

    ExchangeAccount.objects.create(name=ACCOUNT, exchange="paper", market_type="swap")
    out = io.StringIO()
    call_command("create_bot", "bench-bot", accounts=ACCOUNT, reason="bench", stdout=out)
    lines = out.getvalue().splitlines()
    return lines[lines.index("API token (shown only once; store it now):") + 1].strip()


def make_bulk_orders(connections: int) -> list[list[str]]:
    """One set of BULK_SIZE partially filled orders per connection (no lock contention)."""
    from tradingstate.models import ExchangeAccount, Order

    account = ExchangeAccount.objects.get(name=ACCOUNT)
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
def gunicorn(port: int) -> object:
    with tempfile.TemporaryFile() as log:
        yield from _gunicorn(port, log)


def _gunicorn(port: int, log):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS, "PYTHONPATH": str(ROOT)}
    env.pop("DEBUG", None)
    bin_dir = Path(sys.executable).parent
    proc = subprocess.Popen(
        [
            str(bin_dir / "gunicorn"),
            "--workers",
            "2",
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
local counter = 0
local tid = 0
local threads = {}
function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
  table.insert(threads, thread)
end
function init(args)
  mode = args[1]
  token = args[2]
  prefix = "w" .. tostring(tid) .. "-" .. tostring(os.time()) .. "-"
  hdrs = {["Authorization"] = "Token " .. token, ["Host"] = "127.0.0.1"}
  if mode == "register" then
    hdrs["Content-Type"] = "application/json"
  end
end
function request()
  if mode == "register" then
    counter = counter + 1
    local body = '{"client_order_id": "' .. prefix .. counter .. '", "symbol": "BTC/USDT", '
      .. '"side": "buy", "type": "limit", "quantity": "1", "price": "100"}'
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

    def make(w, n):
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


def bulk_load(port, token, sets, duration) -> dict:
    path = f"/api/v1/accounts/{ACCOUNT}/orders/bulk-transition/"

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    c, d = args.connections, args.duration
    with bench_database():
        os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
        django_setup(SETTINGS)
        token = make_bot()
        sets = make_bulk_orders(c)
        from django.db import connections

        connections.close_all()
        port = free_port()
        with gunicorn(port):
            status, body = request(port, "GET", "/api/v1/killswitch/", token=token)
            if status != 200 or json.loads(body).get("active") is not False:
                raise SystemExit(f"api bench: kill switch read failed: {status} {body[:200]}")
            base = load(port, "/bench/bare/", "get", token, c, d)
            check("baseline", base)
            ks = load(port, "/api/v1/killswitch/", "get", token, c, d)
            check("killswitch", ks)
            print(
                f"api endpoint=killswitch rps={ks['rps']:.0f} p50_ms={ks['p50_ms']:.1f} "
                f"p99_ms={ks['p99_ms']:.1f} baseline_rps={base['rps']:.0f} "
                f"ratio={ks['rps'] / base['rps']:.2f}",
                flush=True,
            )
            reg = load(port, f"/api/v1/accounts/{ACCOUNT}/orders/", "register", token, c, d)
            check("register", reg)
            print(
                f"api endpoint=register rps={reg['rps']:.0f} p50_ms={reg['p50_ms']:.1f} "
                f"p99_ms={reg['p99_ms']:.1f}",
                flush=True,
            )
            bulk = bulk_load(port, token, sets, d)
            check("bulk-transition", bulk)
            print(f"api endpoint=bulk-transition updates_per_s={bulk['updates_per_s']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
