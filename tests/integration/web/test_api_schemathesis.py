"""A bounded property-based run of schemathesis over the whole generated OpenAPI schema,
in-process through the WSGI application, as a bot: no 5xx, and status codes, content types
and bodies conform to the schema.

schemathesis' own pytest plugin (``from_fixture``/``parametrize``) does not run under
pytest 9 (it sets ``node._nodeid``), so the operations are driven here with hypothesis.
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

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.test import Client

from tests.api_support import (  # noqa: F401
    api_cache_table,
    make_bot,
    override_api_config,
    wsgi_app,
)
from tests.factories import AccountFactory, OrderFactory, PositionFactory

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 12


def load_schema():
    application = wsgi_app()
    # served as application/vnd.oai.openapi+json, which from_wsgi does not parse: load it here
    response = Client(application).get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = schemathesis.openapi.from_dict(json.loads(response.data))
    schema.app = application
    return schema


@pytest.mark.usefixtures("api_cache_table")
@pytest.mark.django_db
def test_every_operation_conforms_to_the_schema(settings, monkeypatch):
    # given: a bot granted one account with an order and a position; no worker, so a
    # ?wait=true trigger waits at most a second
    override_api_config(settings, reconcile_wait_seconds=1)
    monkeypatch.setattr("reconciliation.passes.triggers.enqueue_pass", lambda *args, **kwargs: None)
    account = AccountFactory(name="acct-a")
    OrderFactory(account=account, client_order_id="abc123")
    PositionFactory(account=account, symbol="BTC/USDT")
    client, _ = make_bot("fuzz-bot", account)
    token = client._credentials["HTTP_AUTHORIZATION"]
    schema = load_schema()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    failures = {}
    statuses: dict[str, set[int]] = {}

    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            if "account" in (case.path_parameters or {}):
                case.path_parameters["account"] = "acct-a"  # a granted account: views run
            response = case.call_and_validate(headers={"Authorization": token}, checks=CHECKS)
            statuses.setdefault(case.operation.label, set()).add(response.status_code)

        # when
        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures[operation.label] = f"{type(exc).__name__}: {str(exc)[:2000]}"
    # then
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in failures.items())
    assert set(statuses) == {op.label for op in operations}
    # the run reached the views, not only the authentication layer
    successes = {label for label, codes in statuses.items() if any(c < 300 for c in codes)}
    assert {
        "GET /api/v1/accounts/",
        "GET /api/v1/accounts/{account}/orders/",
        "GET /api/v1/accounts/{account}/positions/",
    } <= successes, statuses


ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
CLI_CONFIG = Path(__file__).with_name("schemathesis.toml")
CLI_MAX_EXAMPLES = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_schemathesis_cli_all_checks_stateful(tmp_path):
    """CI's schemathesis run (issue 13, D11): the CLI against a real gunicorn, every phase
    (examples, coverage, fuzzing, stateful through the schema's OpenAPI links), ``--checks
    all``, 0 failures. Its own SQLite database: a paper account (the demo) and a bot."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "TRADINGSTATE_LOG_DIR": str(tmp_path / "logs"),
        "DEBUG": "0",
        "SECRET_KEY": "schemathesis-" + "k" * 50,
        "TRADINGSTATE_API__RECONCILE_WAIT_SECONDS": "2",
    }
    env.pop("REDIS_URL", None)

    def manage(*args) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
            capture_output=True, text=True, timeout=180,
        ).stdout  # fmt: skip

    manage("migrate", "-v", "0")
    manage("createcachetable")
    manage("demo")
    out = manage("create_bot", "fuzz-bot", "--accounts", "paper-demo")
    token = next(w for line in out.splitlines() for w in line.split() if len(w) >= 40)
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "tradingstate.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2",
         "--log-level", "warning", "--limit-request-line", "8190"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(base + "/api/schema/?format=json", timeout=2).close()
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.2)
        # when
        run = subprocess.run(
            [str(BIN / "st"), "--config-file", str(CLI_CONFIG), "run",
             f"{base}/api/schema/?format=json", "-H", f"Authorization: Token {token}",
             "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
             "--max-examples", str(CLI_MAX_EXAMPLES), "--seed", "1", "--workers", "1",
             "--suppress-health-check", "filter_too_much"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(20)
    # then
    summary = run.stdout[-6000:]
    assert run.returncode == 0, summary
    assert "✅ Stateful" in summary and "generated" in summary, summary
