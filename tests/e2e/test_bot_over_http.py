"""A bot script over real HTTP against a running server (issue 6's done-when).

The server is gunicorn on a loopback port with a throwaway SQLite database; the bot speaks
plain HTTP with its token, as a trading bot would.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bot:
    def __init__(self, base: str, token: str):
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")


@pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn not installed (make install)")
def test_bot_script_against_a_running_server(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "TRADINGSTATE_LOG_DIR": str(tmp_path / "logs"),
        "DEBUG": "0",
        "SECRET_KEY": "x" * 64,
        "SECURE_SSL_REDIRECT": "0",
    }

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    manage("migrate", "-v", "0")
    manage("createcachetable")
    manage("demo")
    manage("reconcile", "--account", "paper-demo")  # converge first, so trading is normal
    out = manage("create_bot", "alpha", "--accounts", "paper-demo").stdout
    token = next(w for line in out.splitlines() for w in line.split() if len(w) >= 40)
    manage("create_bot", "beta", "--accounts", "paper-demo")
    other = subprocess.run(  # an account alpha is not granted
        [sys.executable, "manage.py", "shell", "-c",
         "from tradingstate.models import ExchangeAccount as A;"
         "A.objects.create(name='other', exchange='paper')"],
        cwd=ROOT, env=env, check=True, timeout=60,
    )  # fmt: skip
    assert other.returncode == 0

    port = free_port()
    server = subprocess.Popen(
        [str(GUNICORN), "tradingstate.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}",
         "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/api/v1/health/", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        bot = Bot(base, token)
        orders = "/api/v1/accounts/paper-demo/orders/"
        order = {"client_order_id": "bot-1", "symbol": "BTC/USDT", "side": "buy",
                 "type": "limit", "quantity": "0.01", "price": "60000"}  # fmt: skip
        # register, retry (same body), conflict
        status, first = bot.call("POST", orders, order)
        assert status == 201, first
        status, again = bot.call("POST", orders, order)
        assert status == 200 and again == first
        status, conflict = bot.call("POST", orders, {**order, "quantity": "0.02"})
        assert status == 409 and conflict["error"] == "conflict"
        assert "quantity" in conflict["fields"]
        # transition legally, then illegally
        status, body = bot.call("POST", orders + "bot-1/transition/",
                                {"status": "submitted", "exchange_order_id": "X-1"})  # fmt: skip
        assert status == 200 and body["status"] == "submitted", body
        status, body = bot.call("POST", orders + "bot-1/transition/", {"status": "pending"})
        assert status == 409 and body["error"] == "transition_not_allowed"
        # a fill, twice: one effect
        fill = {"client_order_id": "bot-1", "trade_id": "T-1", "quantity": "0.004",
                "price": "60010"}  # fmt: skip
        assert bot.call("POST", "/api/v1/accounts/paper-demo/fills/", fill)[0] == 201
        assert bot.call("POST", "/api/v1/accounts/paper-demo/fills/", fill)[0] == 200
        status, body = bot.call("GET", orders + "bot-1/")
        assert body["filled_qty"] == "0.004" and body["status"] == "partially_filled"
        status, body = bot.call("GET", "/api/v1/accounts/paper-demo/positions/")
        btc = next(p for p in body["results"] if p["symbol"] == "BTC/USDT")
        assert btc["qty"] == "0.084"  # the venue's 0.08 after reconciliation, plus the fill
        # another account is invisible
        assert bot.call("GET", "/api/v1/accounts/other/orders/")[0] == 404
        # the kill switch
        status, body = bot.call("POST", "/api/v1/killswitch/activate/", {"reason": "bot drill"})
        assert status == 200 and body["active"] is True, body
        status, body = bot.call("POST", orders, {**order, "client_order_id": "bot-2"})
        assert status == 423 and body == {**body, "error": "kill_switch_active",
                                          "reason": "bot drill"}  # fmt: skip
        assert bot.call("POST", "/api/v1/killswitch/deactivate/", {"reason": "x"})[0] == 403
    finally:
        server.terminate()
        server.wait(20)
